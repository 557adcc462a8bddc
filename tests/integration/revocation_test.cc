// Revocation mid-run, with the real binaries over mutual TLS: three sites train; after the first
// round the coordinator gets a SIGHUP (it re-reads the CRL and goes on), then `fedmed-pki revoke
// --name site-2` rewrites the CRL that the running coordinator names in [tls] crl. Without a
// restart, the coordinator refuses site-2 within 5 s and ends its session; site-2 is told its
// certificate was revoked and exits 2; the federation finishes its rounds with site-1 and site-3;
// both logs say "revoked". Then fedmed-audit refuses site-2's privacy-log entries signed after
// the revocation (and still accepts site-1's log), and `fedmed-pki add-site` reissues site-2
// under the same name with a new key.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/crypto/crl.h"
#include "common/util/data_path.h"
#include "common/util/process.h"
#include "tests/integration/refusal_util.h"
#include "tests/test_util.h"
#include "tools/pki/provision.h"
#include "tools/pki/revocation.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;
using ::fedmed::testing::BinDir;
using ::fedmed::testing::ReadFile;
using Clock = std::chrono::steady_clock;

int RunTool(const std::vector<std::string>& argv, const fs::path& out) {
  ChildProcess tool(argv, out.string());
  return tool.Wait(60).value_or(-1);
}

TEST(RevocationTest, ASiteRevokedMidRunIsRefusedWithoutARestartAndTheOthersFinish) {
  ::fedmed::testing::TempDir dir("fedmed-revocation");
  const fs::path pki_dir = dir.path() / "pki";
  ProvisionOptions options = ::fedmed::testing::TwoSiteFederationOptions(pki_dir);
  options.site_names = {"site-1", "site-2", "site-3"};
  options.site_template.data.num_shards = 8;  // small shards: quick rounds
  const ProvisionResult pki = ProvisionFederation(options);

  CoordinatorConfig coordinator = LoadCoordinatorConfig(pki.coordinator_config);
  ASSERT_EQ(coordinator.crl, (pki_dir / "coordinator" / "crl.pem").string());
  coordinator.rounds = 4;
  coordinator.min_sites = 2;
  coordinator.min_available_sites = 3;
  coordinator.round_deadline_seconds = 60;
  coordinator.output_dir = (dir.path() / "coordinator").string();
  const std::string coordinator_toml = (dir.path() / "coordinator.toml").string();
  std::ofstream(coordinator_toml) << RenderCoordinatorConfig(coordinator);
  ::fedmed::testing::CoordinatorProcess process(coordinator_toml, dir.path());
  const int port = process.WaitForPort();
  ASSERT_GT(port, 0);

  std::vector<std::unique_ptr<ChildProcess>> sites;
  for (const std::string name : {"site-1", "site-2", "site-3"}) {
    SiteConfig site = LoadSiteConfig(pki.site_configs.at(name));
    site.coordinator_address = "127.0.0.1:" + std::to_string(port);
    site.output_dir = (dir.path() / name).string();
    site.threads = 1;
    site.give_up_after_seconds = 60;
    const std::string path = (dir.path() / (name + ".toml")).string();
    std::ofstream(path) << RenderSiteConfig(site);
    sites.push_back(std::make_unique<ChildProcess>(
        std::vector<std::string>{BinDir() + "/fedmed-site", "--config", path},
        (dir.path() / (name + ".out")).string()));
  }
  const std::string coordinator_log = (dir.path() / "coordinator" / "coordinator.log").string();
  const std::string metrics = (dir.path() / "coordinator" / "metrics.jsonl").string();
  ASSERT_TRUE(::fedmed::testing::WaitForFileContaining(metrics, "\"round\":1", 90))
      << process.Log();

  // SIGHUP re-reads the CRL; it does not stop the coordinator (its default action would).
  process.Signal(SIGHUP);
  ASSERT_TRUE(::fedmed::testing::WaitForFileContaining(coordinator_log,
                                                       "received SIGHUP, re-reading the CRL", 10))
      << process.Log();

  const auto revoked_at = Clock::now();
  ASSERT_EQ(RunTool({BinDir() + "/fedmed-pki", "revoke", "--out", pki_dir.string(), "--name",
                     "site-2", "--reason", "keyCompromise"},
                    dir.path() / "revoke.out"),
            0)
      << ReadFile(dir.path() / "revoke.out");
  ASSERT_TRUE(::fedmed::testing::WaitForFileContaining(coordinator_log, "CN=site-2 (serial", 10))
      << process.Log();
  const double refusal_seconds =
      std::chrono::duration<double>(Clock::now() - revoked_at).count();
  EXPECT_LE(refusal_seconds, 5.0) << "the coordinator refused site-2 only after "
                                  << refusal_seconds << " s";
  std::cout << "site-2 refused " << refusal_seconds
            << " s after fedmed-pki revoke started (its run included)\n";

  // site-2 is told, and gives up; the others finish the federation.
  EXPECT_EQ(sites[1]->Wait(30), std::optional<int>(2)) << ReadFile(dir.path() / "site-2.out");
  const std::string site2_log = ReadFile(dir.path() / "site-2" / "site.log");
  EXPECT_NE(site2_log.find("revoked"), std::string::npos) << site2_log;
  for (int i : {0, 2}) {
    EXPECT_EQ(sites[i]->Wait(120), std::optional<int>(0))
        << ReadFile(dir.path() / ("site-" + std::to_string(i + 1) + ".out"));
  }
  EXPECT_TRUE(::fedmed::testing::WaitForFileContaining(metrics, "\"round\":4", 10));
  const std::string log = process.Log();
  EXPECT_NE(log.find("was revoked on"), std::string::npos) << log;
  EXPECT_NE(log.find("ended the session of site-2: its certificate was revoked"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("received signal"), std::string::npos) << "restarted or stopped? " << log;
  for (const std::string& text : {log, site2_log}) {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      if (line.find("revoked") != std::string::npos) std::cout << line << "\n";
    }
  }

  // fedmed-audit: site-2's entries after the revocation (its stop record) are refused; the CRL
  // is found beside --ca. site-1's log verifies.
  const std::string ca = (pki_dir / "ca" / "ca.pem").string();
  const fs::path verify2 = dir.path() / "verify-site-2.out";
  EXPECT_EQ(RunTool({BinDir() + "/fedmed-audit", "verify",
                     (dir.path() / "site-2" / "privacy_log.jsonl").string(), "--cert",
                     (pki_dir / "sites" / "site-2" / "audit.pem").string(), "--ca", ca},
                    verify2),
            1);
  EXPECT_NE(ReadFile(verify2).find("which was revoked on"), std::string::npos)
      << ReadFile(verify2);
  const fs::path verify1 = dir.path() / "verify-site-1.out";
  EXPECT_EQ(RunTool({BinDir() + "/fedmed-audit", "verify",
                     (dir.path() / "site-1" / "privacy_log.jsonl").string(), "--cert",
                     (pki_dir / "sites" / "site-1" / "audit.pem").string(), "--ca", ca},
                    verify1),
            0)
      << ReadFile(verify1);

  // Reissue under the same name: new keys, not on the CRL; the old directory is kept aside.
  const std::string old_cert = ReadFile(pki_dir / "sites" / "site-2" / "site-2.pem");
  ASSERT_EQ(RunTool({BinDir() + "/fedmed-pki", "add-site", "--out", pki_dir.string(), "--name",
                     "site-2"},
                    dir.path() / "reissue.out"),
            0)
      << ReadFile(dir.path() / "reissue.out");
  const std::string new_cert = ReadFile(pki_dir / "sites" / "site-2" / "site-2.pem");
  EXPECT_NE(CertificateSerial(new_cert), CertificateSerial(old_cert));
  EXPECT_FALSE(IsRevokedInFederation(pki_dir.string(), new_cert));
  EXPECT_TRUE(fs::exists(pki_dir / "revoked" / ("site-2-" + CertificateSerial(old_cert))));
}

}  // namespace
}  // namespace fedmed
