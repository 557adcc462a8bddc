// fedmed-pki provisioning: the written layout, configs that load, certificates that verify.
#include "tools/pki/provision.h"
#include "tools/pki/revocation.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/crypto/crl.h"
#include "common/crypto/pki.h"
#include "common/util/error.h"
#include "common/util/file_io.h"
#include "tests/config/config_test_util.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;
using testing::Contains;

unsigned Mode(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 0777;
}

std::string Read(const fs::path& path) { return ReadFile(path.string(), "test file"); }


// What `f` throws as Error; "" when it throws nothing.
std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

class ProvisionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.out_dir = (dir_ / "federation").string();
    options_.federation = "demo";
    options_.site_names = {"site-1", "site-2", "site-3"};
    options_.coordinator_dns = {"localhost"};
    options_.coordinator_ips = {"127.0.0.1", "::1"};
    options_.coordinator_address = "fl.hospital.example:8443";
    options_.validity_days = 30;
    options_.coordinator_template.eval_data = "medmnist/pneumoniamnist.npz";
    options_.coordinator_template.rounds = 7;
    options_.site_template.data.path = "medmnist/pneumoniamnist.npz";
  }

  testing::TempDir tmp_{"fedmed_provision_test"};
  const fs::path dir_ = tmp_.path();
  ProvisionOptions options_;
};

TEST_F(ProvisionTest, WritesLoadableConfigsAndVerifyingCertificates) {
  const ProvisionResult result = ProvisionFederation(options_);
  const fs::path out(options_.out_dir);
  EXPECT_EQ(result.ca_cert, (out / "ca/ca.pem").string());
  EXPECT_EQ(result.ca_key, (out / "ca/ca.key").string());
  EXPECT_EQ(Mode(result.ca_key), 0600u);
  const std::string ca_pem = Read(result.ca_cert);
  const std::string ca_key = Read(result.ca_key);
  EXPECT_EQ(InspectCertificate(ca_pem).common_name, "demo-ca");
  const std::time_t now = std::time(nullptr);

  // Coordinator: config with the template's settings plus the filled-in ones.
  const fs::path coordinator_dir = out / "coordinator";
  EXPECT_EQ(result.coordinator_config, (coordinator_dir / "coordinator.toml").string());
  const CoordinatorConfig coordinator = LoadCoordinatorConfig(result.coordinator_config);
  EXPECT_EQ(coordinator.federation, "demo");
  EXPECT_EQ(coordinator.rounds, 7);
  EXPECT_EQ(coordinator.listen_address, "0.0.0.0:8443");
  EXPECT_EQ(coordinator.allowed_sites, options_.site_names);
  EXPECT_EQ(coordinator.tls.ca_cert, (coordinator_dir / "ca.pem").string());
  EXPECT_EQ(Read(coordinator.tls.ca_cert), ca_pem);
  EXPECT_EQ(Mode(coordinator.tls.key), 0600u);
  const std::string coordinator_cert = Read(coordinator.tls.cert);
  EXPECT_NO_THROW(CheckKeyMatchesCertificate(Read(coordinator.tls.key), coordinator_cert,
                                             "coordinator key"));
  const CertificateInfo info = InspectCertificate(coordinator_cert);
  EXPECT_EQ(info.dns_names, (std::vector<std::string>{"localhost", "fl.hospital.example"}))
      << "the host sites dial must be among the certificate's names";
  EXPECT_EQ(info.ip_addresses, (std::vector<std::string>{"127.0.0.1", "::1"}));
  EXPECT_TRUE(
      VerifyPeerCertificate(coordinator_cert, ca_pem, now, CertificatePurpose::kServerAuth).ok);
  EXPECT_FALSE(
      VerifyPeerCertificate(coordinator_cert, ca_pem, now, CertificatePurpose::kClientAuth).ok)
      << "the coordinator's certificate must not pass as a site";

  // Sites: one directory each, CN = name, clientAuth, config pointing at the coordinator.
  ASSERT_EQ(result.site_configs.size(), 3u);
  for (const std::string& name : options_.site_names) {
    SCOPED_TRACE(name);
    const fs::path site_dir = out / "sites" / name;
    ASSERT_EQ(result.site_configs.at(name), (site_dir / "site.toml").string());
    const SiteConfig site = LoadSiteConfig(result.site_configs.at(name));
    EXPECT_EQ(site.name, name);
    EXPECT_EQ(site.coordinator_address, "fl.hospital.example:8443");
    EXPECT_EQ(site.tls.cert, (site_dir / (name + ".pem")).string());
    EXPECT_EQ(site.data.path, "medmnist/pneumoniamnist.npz");
    EXPECT_EQ(site.data.partition, "none");
    EXPECT_EQ(Mode(site.tls.key), 0600u);
    const std::string cert = Read(site.tls.cert);
    EXPECT_NO_THROW(CheckKeyMatchesCertificate(Read(site.tls.key), cert, "site key"));
    const PeerCheck check =
        VerifyPeerCertificate(cert, Read(site.tls.ca_cert), now, CertificatePurpose::kClientAuth);
    EXPECT_TRUE(check.ok) << check.reason;
    EXPECT_EQ(check.common_name, name);
    EXPECT_FALSE(
        VerifyPeerCertificate(cert, ca_pem, now, CertificatePurpose::kServerAuth).ok);
    const CertificateInfo site_info = InspectCertificate(cert);
    EXPECT_EQ(site_info.not_after - site_info.not_before, 30 * 86400 + 300);
  }

  // The CA key is in ca/ only.
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(out)) {
    if (entry.is_regular_file() && entry.path() != fs::path(result.ca_key)) {
      EXPECT_EQ(Read(entry.path()).find(ca_key), std::string::npos) << entry.path();
    }
  }
}

TEST_F(ProvisionTest, NeverOverwritesAnExistingCa) {
  ProvisionFederation(options_);
  const std::string ca_pem = Read(fs::path(options_.out_dir) / "ca/ca.pem");
  try {
    ProvisionFederation(options_);
    FAIL() << "an existing CA was overwritten";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), (fs::path(options_.out_dir) / "ca/ca.pem").string()));
    EXPECT_TRUE(Contains(e.what(), "add-site"));
  }
  EXPECT_EQ(Read(fs::path(options_.out_dir) / "ca/ca.pem"), ca_pem);

  // A non-empty directory without a CA is refused as well; an empty one is fine.
  fs::create_directories(dir_ / "other");
  WriteFileAtomically((dir_ / "other/notes.txt").string(), "x");
  options_.out_dir = (dir_ / "other").string();
  EXPECT_THROW(ProvisionFederation(options_), Error);
  fs::create_directories(dir_ / "empty");
  options_.out_dir = (dir_ / "empty").string();
  EXPECT_NO_THROW(ProvisionFederation(options_));
}

TEST_F(ProvisionTest, InvalidOptionsWriteNothing) {
  ProvisionOptions bad = options_;
  bad.site_names = {"site-1", "site 2"};
  EXPECT_THROW(ProvisionFederation(bad), ConfigError);
  bad = options_;
  bad.site_names = {"site-1", "site-1"};
  EXPECT_THROW(ProvisionFederation(bad), ConfigError);
  bad = options_;
  bad.federation = std::string(53, 'f');
  EXPECT_THROW(ProvisionFederation(bad), ConfigError);
  bad = options_;
  bad.coordinator_address = "fl.hospital.example";
  EXPECT_THROW(ProvisionFederation(bad), ConfigError);
  bad = options_;
  bad.coordinator_template.training.optimizer = "rmsprop";
  try {
    ProvisionFederation(bad);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_TRUE(Contains(e.what(), "coordinator.toml: [training] optimizer"));
  }
  bad = options_;
  bad.site_template.data.path = "";
  EXPECT_THROW(ProvisionFederation(bad), ConfigError);
  EXPECT_FALSE(fs::exists(options_.out_dir));
}

TEST_F(ProvisionTest, DemonstrationPartitionGivesEachSiteItsShard) {
  options_.site_template.data.partition = "dirichlet";
  options_.site_template.data.alpha = 0.3;
  options_.site_template.data.num_shards = 1;
  options_.coordinator_template.min_sites = 5;  // more than there are sites: lowered to 3
  const ProvisionResult result = ProvisionFederation(options_);
  EXPECT_EQ(LoadCoordinatorConfig(result.coordinator_config).min_sites, 3);
  for (int i = 0; i < 3; ++i) {
    const SiteConfig site = LoadSiteConfig(result.site_configs.at(options_.site_names[i]));
    EXPECT_EQ(site.data.partition, "dirichlet");
    EXPECT_EQ(site.data.shard, i + 1);
    EXPECT_EQ(site.data.num_shards, 3);  // raised from the template's 1 to the number of sites
    EXPECT_EQ(site.data.alpha, 0.3);
  }
  // More shards than sites (each site trains on a smaller slice) are kept.
  options_.out_dir = (dir_ / "more-shards").string();
  options_.site_template.data.num_shards = 6;
  const ProvisionResult more = ProvisionFederation(options_);
  const SiteConfig third = LoadSiteConfig(more.site_configs.at("site-3"));
  EXPECT_EQ(third.data.shard, 3);
  EXPECT_EQ(third.data.num_shards, 6);
}

TEST_F(ProvisionTest, DefaultTemplatesGiveLoadableConfigs) {
  ProvisionOptions options;  // only the required settings
  options.out_dir = (dir_ / "defaults").string();
  options.site_names = {"site-1"};
  options.coordinator_address = "127.0.0.1:0";  // port filled in once the coordinator listens
  options.site_template.data.num_shards = 4;     // meaningless with partition "none"
  const ProvisionResult result = ProvisionFederation(options);
  const CoordinatorConfig coordinator = LoadCoordinatorConfig(result.coordinator_config);
  EXPECT_EQ(coordinator.eval_data, kDefaultDataFile);
  EXPECT_EQ(coordinator.min_sites, 1);
  EXPECT_EQ(coordinator.listen_address, "0.0.0.0:0");
  const SiteConfig site = LoadSiteConfig(result.site_configs.at("site-1"));
  EXPECT_EQ(site.data.path, kDefaultDataFile);
  EXPECT_EQ(site.data.num_shards, 1);
  EXPECT_EQ(site.coordinator_address, "127.0.0.1:0");
  EXPECT_EQ(InspectCertificate(Read(coordinator.tls.cert)).ip_addresses,
            (std::vector<std::string>{"127.0.0.1"}));
}

TEST_F(ProvisionTest, AddSiteIssuesFromTheExistingCa) {
  ProvisionFederation(options_);
  SiteConfig site_template;
  site_template.data.path = "/hospital/images.npz";
  const ProvisionResult added = AddSite(options_.out_dir, "site-4", site_template, 10);
  EXPECT_EQ(added.allowed_sites_line,
            "allowed_sites = [\"site-1\", \"site-2\", \"site-3\", \"site-4\"]");
  EXPECT_TRUE(LoadCoordinatorConfig(added.coordinator_config).allowed_sites ==
              options_.site_names)
      << "AddSite must not edit the coordinator's allow-list";

  const SiteConfig site = LoadSiteConfig(added.site_configs.at("site-4"));
  EXPECT_EQ(site.name, "site-4");
  EXPECT_EQ(site.coordinator_address, "fl.hospital.example:8443") << "taken from existing sites";
  EXPECT_EQ(site.data.path, "/hospital/images.npz");
  const std::string cert = Read(site.tls.cert);
  const PeerCheck check = VerifyPeerCertificate(cert, Read(added.ca_cert), std::time(nullptr));
  EXPECT_TRUE(check.ok) << check.reason;
  EXPECT_EQ(check.common_name, "site-4");
  EXPECT_EQ(Read(site.tls.ca_cert), Read(added.ca_cert));
  EXPECT_EQ(Mode(site.tls.key), 0600u);

  try {
    AddSite(options_.out_dir, "site-4", site_template, 10);
    FAIL() << "an existing site was overwritten";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), (fs::path(options_.out_dir) / "sites/site-4").string()));
  }
  EXPECT_THROW(AddSite(options_.out_dir, "../escape", site_template, 10), ConfigError);
  EXPECT_THROW(AddSite((dir_ / "no-such-federation").string(), "site-5", site_template, 10),
               Error);
}

// fedmed-pki revoke: init writes an empty CRL and names the coordinator's copy in [tls] crl;
// revoking a site lists its TLS and audit certificates in both copies with the next number; a
// second revoke, a bad reason or name are refused; add-site then reissues the name.
TEST_F(ProvisionTest, RevokeListsBothCertificatesAndAddSiteReissuesTheName) {
  const ProvisionResult pki = ProvisionFederation(options_);
  const fs::path out(options_.out_dir);
  const std::string ca = Read(pki.ca_cert);
  const CoordinatorConfig coordinator = LoadCoordinatorConfig(pki.coordinator_config);
  EXPECT_EQ(coordinator.crl, (out / "coordinator" / "crl.pem").string());
  const CrlContents empty = ReadCrl(Read(coordinator.crl), ca, coordinator.crl);
  EXPECT_EQ(empty.number, 1);
  EXPECT_TRUE(empty.revoked.empty());
  EXPECT_GT(empty.next_update, std::time(nullptr) + 29 * 86400);

  const std::string tls_cert = Read(out / "sites" / "site-2" / "site-2.pem");
  const std::string audit_cert = Read(out / "sites" / "site-2" / "audit.pem");
  const RevocationResult revoked = RevokeSite(options_.out_dir, "site-2", "keyCompromise", 7);
  ASSERT_EQ(revoked.added.size(), 2u);
  EXPECT_EQ(revoked.number, 2);
  for (const std::string& path : {revoked.crl, revoked.coordinator_crl}) {
    const CrlContents crl = ReadCrl(Read(path), ca, path);
    EXPECT_EQ(crl.number, 2);
    ASSERT_NE(crl.Find(CertificateSerial(tls_cert)), nullptr) << path;
    ASSERT_NE(crl.Find(CertificateSerial(audit_cert)), nullptr) << path;
    EXPECT_EQ(crl.Find(CertificateSerial(tls_cert))->reason, "keyCompromise");
    EXPECT_EQ(crl.Find(CertificateSerial(Read(out / "sites" / "site-1" / "site-1.pem"))), nullptr);
  }
  EXPECT_TRUE(IsRevokedInFederation(options_.out_dir, tls_cert));
  EXPECT_TRUE(Contains(
      ErrorOf([&] { RevokeSite(options_.out_dir, "site-2", "unspecified", 7); }),
      "already revoked"));
  EXPECT_THROW(RevokeSite(options_.out_dir, "site-1", "certificateHold", 7), ConfigError);
  EXPECT_THROW(RevokeSite(options_.out_dir, "../site-1", "unspecified", 7), ConfigError);
  EXPECT_THROW(RevokeSite(options_.out_dir, "site-9", "unspecified", 7), Error);
  EXPECT_EQ(RenewCrl(options_.out_dir, 3).contents.revoked.size(), 2u);
  const std::string operator_cert = Read(out / "operator" / "operator.pem");
  EXPECT_EQ(RevokeOperator(options_.out_dir, "superseded", 3).added.size(), 1u);
  EXPECT_TRUE(IsRevokedInFederation(options_.out_dir, operator_cert));
  EXPECT_THROW(RevokeOperator(options_.out_dir, "superseded", 3), Error);

  // site-1 is not revoked: add-site still refuses to overwrite it. site-2 is reissued.
  SiteConfig site_template;
  site_template.data.path = "/hospital/images.npz";
  EXPECT_THROW(AddSite(options_.out_dir, "site-1", site_template, 10), Error);
  const ProvisionResult reissued = AddSite(options_.out_dir, "site-2", site_template, 10);
  const std::string new_cert = Read(LoadSiteConfig(reissued.site_configs.at("site-2")).tls.cert);
  EXPECT_NE(CertificateSerial(new_cert), CertificateSerial(tls_cert));
  EXPECT_FALSE(IsRevokedInFederation(options_.out_dir, new_cert));
  EXPECT_EQ(Read(out / "revoked" / ("site-2-" + CertificateSerial(tls_cert)) / "site-2.pem"),
            tls_cert);
}

// fedmed-admin's directory: an operator certificate from the CA (valid as an operator, never as
// a site), its key (0600), the CA and the address the sites dial.
TEST_F(ProvisionTest, WritesTheOperatorDirectory) {
  const ProvisionResult result = ProvisionFederation(options_);
  const fs::path dir = fs::path(options_.out_dir) / "operator";
  EXPECT_EQ(result.operator_cert, (dir / "operator.pem").string());
  EXPECT_EQ(Mode(dir / "operator.key"), 0600u);
  EXPECT_EQ(Read(dir / "coordinator_address"), "fl.hospital.example:8443\n");
  const std::string ca_pem = Read(dir / "ca.pem");
  EXPECT_EQ(ca_pem, Read(result.ca_cert));
  const std::string cert = Read(dir / "operator.pem");
  EXPECT_NO_THROW(CheckKeyMatchesCertificate(Read(dir / "operator.key"), cert, "operator key"));
  const std::time_t now = std::time(nullptr);
  const PeerCheck as_operator =
      VerifyPeerCertificate(cert, ca_pem, now, CertificatePurpose::kOperator);
  EXPECT_TRUE(as_operator.ok) << as_operator.reason;
  EXPECT_EQ(as_operator.common_name, "demo-operator");
  EXPECT_FALSE(VerifyPeerCertificate(cert, ca_pem, now, CertificatePurpose::kClientAuth).ok);
  for (const std::string& name : options_.site_names) {
    const std::string site = Read(fs::path(options_.out_dir) / "sites" / name / (name + ".pem"));
    EXPECT_FALSE(VerifyPeerCertificate(site, ca_pem, now, CertificatePurpose::kOperator).ok);
  }
}

TEST_F(ProvisionTest, WritesAuditLogKeysIssuedByTheCa) {
  const ProvisionResult result = ProvisionFederation(options_);
  const fs::path out(options_.out_dir);
  const std::string ca_pem = Read(result.ca_cert);
  const std::time_t now = std::time(nullptr);
  std::map<std::string, fs::path> parties = {{"demo-coordinator", out / "coordinator"}};
  for (const std::string& name : options_.site_names) parties[name] = out / "sites" / name;
  EXPECT_EQ(result.coordinator_audit_cert, (out / "coordinator/audit.pem").string());
  for (const auto& [name, dir] : parties) {
    SCOPED_TRACE(name);
    const fs::path cert_path = dir / "audit.pem";
    const fs::path key_path = dir / "audit.key";
    if (name != "demo-coordinator") {
      EXPECT_EQ(result.site_audit_certs.at(name), cert_path.string());
    }
    EXPECT_EQ(Mode(key_path), 0600u);
    const std::string cert = Read(cert_path);
    const std::string key = Read(key_path);
    EXPECT_TRUE(Contains(key, "-----BEGIN PRIVATE KEY-----")) << "PKCS#8 PEM";
    EXPECT_NO_THROW(CheckKeyMatchesCertificate(key, cert, "audit key"));
    EXPECT_EQ(InspectCertificate(cert).common_name, name);
    const PeerCheck check =
        VerifyPeerCertificate(cert, ca_pem, now, CertificatePurpose::kAuditLog);
    EXPECT_TRUE(check.ok) << check.reason;
    EXPECT_EQ(check.common_name, name);
    // Never a TLS certificate, and the TLS certificates are not audit certificates.
    EXPECT_FALSE(VerifyPeerCertificate(cert, ca_pem, now, CertificatePurpose::kClientAuth).ok);
    EXPECT_FALSE(VerifyPeerCertificate(cert, ca_pem, now, CertificatePurpose::kServerAuth).ok);
    const std::string tls_cert =
        Read(dir / (name == "demo-coordinator" ? "coordinator.pem" : name + ".pem"));
    EXPECT_FALSE(VerifyPeerCertificate(tls_cert, ca_pem, now, CertificatePurpose::kAuditLog).ok);
  }

  SiteConfig site_template;
  site_template.data.path = "/hospital/images.npz";
  const ProvisionResult added = AddSite(options_.out_dir, "site-4", site_template, 10);
  const std::string cert = Read(added.site_audit_certs.at("site-4"));
  EXPECT_EQ(added.site_audit_certs.at("site-4"), (out / "sites/site-4/audit.pem").string());
  EXPECT_TRUE(VerifyPeerCertificate(cert, ca_pem, now, CertificatePurpose::kAuditLog).ok);
  EXPECT_NO_THROW(
      CheckKeyMatchesCertificate(Read(out / "sites/site-4/audit.key"), cert, "audit key"));
  EXPECT_EQ(Mode(out / "sites/site-4/audit.key"), 0600u);
}

}  // namespace
}  // namespace fedmed
