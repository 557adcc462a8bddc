// Mutual TLS refusals, with real processes: a coordinator accepts a site only if its certificate
// chains to the federation CA and its CN is on the allow-list, and it decides in the TLS
// handshake (common/transport/client_auth.h). A refused site sees its connection closed
// (UNAVAILABLE), logs "the coordinator refused our certificate during the TLS handshake", retries
// until [connection] give_up_after_seconds and exits with status 2; the coordinator logs the
// reason, naming the certificate.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/util/process.h"
#include "tests/integration/refusal_util.h"
#include "tests/test_util.h"
#include "tools/pki/provision.h"

namespace fedmed {
namespace {

using testing::ReadFile;
using testing::TempDir;

class TlsRefusalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The federation: CA, coordinator, and site-1 / site-2 on the allow-list.
    ProvisionOptions options = testing::TwoSiteFederationOptions(dir_ / "federation");
    options.coordinator_template.output_dir = dir_ / "coordinator";
    federation_ = ProvisionFederation(options);
    coordinator_ = std::make_unique<testing::CoordinatorProcess>(federation_.coordinator_config,
                                                                 dir_.path());
    port_ = coordinator_->WaitForPort();
    ASSERT_GT(port_, 0);
  }

  // Runs a site with `site_config` (pointed at our coordinator) to its end, giving up after 5 s
  // of refused handshakes; returns its status.
  int RunSite(const SiteConfig& site, const std::string& name) {
    return testing::RunSiteProcess(site, dir_.path(), name, port_, 5);
  }

  std::string CoordinatorLog() { return coordinator_->Log(); }

  TempDir dir_{"fedmed-tls"};
  ProvisionResult federation_;
  std::unique_ptr<testing::CoordinatorProcess> coordinator_;
  int port_ = 0;
};

TEST_F(TlsRefusalTest, SiteWithCertificateFromAnotherCaIsRefusedWithThatReason) {
  // A second, unrelated CA issues a certificate for an allowed name ("site-2").
  ProvisionOptions rogue;
  rogue.out_dir = dir_ / "rogue";
  rogue.federation = "rogue";
  rogue.site_names = {"site-2"};
  const ProvisionResult other = ProvisionFederation(rogue);
  SiteConfig site = LoadSiteConfig(other.site_configs.at("site-2"));
  site.data = LoadSiteConfig(federation_.site_configs.at("site-2")).data;
  // It trusts the real federation CA for the coordinator, so the site accepts the coordinator
  // and the refusal comes from the coordinator's check of the site certificate.
  site.tls.ca_cert = federation_.ca_cert;

  EXPECT_EQ(RunSite(site, "rogue-site"), 2);
  const std::string site_log = ReadFile(dir_ / "rogue-site/site.log");
  EXPECT_NE(site_log.find("the coordinator refused our certificate during the TLS handshake"),
            std::string::npos)
      << site_log;
  const std::string coordinator_log = CoordinatorLog();
  EXPECT_NE(coordinator_log.find(
                "refused a TLS handshake: certificate CN=site-2 is not issued by the federation CA"),
            std::string::npos)
      << coordinator_log;
  EXPECT_EQ(coordinator_log.find("site-2 registered"), std::string::npos);
}

TEST_F(TlsRefusalTest, SiteWhoseCnIsNotAllowedIsRefused) {
  // A valid certificate from the federation CA, for a name the coordinator does not allow.
  const ProvisionResult added =
      AddSite(dir_ / "federation", "site-9", LoadSiteConfig(federation_.site_configs.at("site-1")),
              30);
  SiteConfig site = LoadSiteConfig(added.site_configs.at("site-9"));
  site.data = LoadSiteConfig(federation_.site_configs.at("site-1")).data;

  EXPECT_EQ(RunSite(site, "site-9"), 2);
  const std::string site_log = ReadFile(dir_ / "site-9/site.log");
  EXPECT_NE(site_log.find("the coordinator refused our certificate during the TLS handshake"),
            std::string::npos)
      << site_log;
  const std::string coordinator_log = CoordinatorLog();
  EXPECT_NE(coordinator_log.find("refused a TLS handshake: certificate CN=site-9 is valid but not "
                                 "in the coordinator's allow-list"),
            std::string::npos)
      << coordinator_log;
  EXPECT_EQ(coordinator_log.find("site-9 registered"), std::string::npos);
}

TEST_F(TlsRefusalTest, AllowedSiteFromTheFederationCaIsAccepted) {
  // The control case: the same coordinator accepts a properly provisioned site.
  SiteConfig site = LoadSiteConfig(federation_.site_configs.at("site-1"));
  site.give_up_after_seconds = 30;
  site.coordinator_address = "127.0.0.1:" + std::to_string(port_);
  site.output_dir = dir_ / "site-1";
  const std::string path = dir_ / "site-1.toml";
  std::ofstream(path) << RenderSiteConfig(site);
  ChildProcess process({testing::BinDir() + "/fedmed-site", "--config", path},
                       dir_ / "site-1.out");
  EXPECT_TRUE(testing::WaitForFileContaining(dir_ / "coordinator/coordinator.log",
                                             "site-1 registered", 60))
      << ReadFile(dir_ / "site-1.out");
  process.Stop();
}

}  // namespace
}  // namespace fedmed
