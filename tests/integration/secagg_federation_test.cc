// Secure aggregation end to end: fedmed-simulate starts a coordinator and three site processes
// that train the cnn on PneumoniaMNIST over mutual-TLS gRPC, the coordinator seeing only the sum
// of each round's masked updates (common/secagg/protocol.h). The global model must match a plain
// FedAvg run of the same seeds up to quantisation (within 0.01 AUC), and a site SIGKILLed after
// sharing its keys (--kill-site) must not stop its round: the round completes with the two
// survivors, recovering the dead site's masks from its shares.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/audit/privacy_log.h"
#include "common/config/site_config.h"
#include "common/util/process.h"
#include "tests/integration/refusal_util.h"
#include "tests/integration/simulate_util.h"
#include "tools/pki/provision.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;

const char kSecure[] =
    "[secure_aggregation]\nenabled = true\nthreshold = 2\nclip_range = 1.0\n"
    "quantization_bits = 32\nstage_timeout_seconds = 10\n";

std::vector<nlohmann::json> Rows(const fs::path& run) {
  return ReadJsonLines((run / "coordinator" / "metrics.jsonl").string());
}

TEST(SecAggFederationTest, SameGlobalModelQualityAsPlainFedAvg) {
  testing::TempDir plain_dir("fedmed-secagg-plain"), secure_dir("fedmed-secagg-secure");
  const auto plain = testing::RunFederation(
      plain_dir, testing::FederationToml(3, 2, /*federated=*/false), 300);
  const auto secure = testing::RunFederation(
      secure_dir, testing::FederationToml(3, 2, /*federated=*/false, "", kSecure), 300);
  ASSERT_TRUE(plain && secure);
  const auto p = Rows(*plain), s = Rows(*secure);
  ASSERT_EQ(p.size(), 2u);
  ASSERT_EQ(s.size(), 2u) << testing::ReadFile(secure_dir / "simulate.out");
  for (const nlohmann::json& row : s) {
    EXPECT_EQ(row["contributors"].size(), 3u);
    EXPECT_EQ(row["num_samples"].get<int>(), 4708);  // the unmasked sum of the sample counts
    ASSERT_TRUE(row.contains("secure_aggregation")) << row.dump();
    EXPECT_TRUE(row["secure_aggregation"]["excluded"].empty());
  }
  const double auc_plain = p.back()["global"]["auc"].get<double>();
  const double auc_secure = s.back()["global"]["auc"].get<double>();
  EXPECT_NEAR(auc_secure, auc_plain, 0.01);
  EXPECT_GE(auc_secure, 0.85);
  // The sites sent masked inputs, never their updates: the coordinator's log says so, and no
  // site reported a training loss.
  const std::string log = testing::ReadFile(*secure / "coordinator" / "coordinator.log");
  EXPECT_NE(log.find("masked input from site-1 accepted"), std::string::npos);
  EXPECT_EQ(log.find("update from site-1 accepted"), std::string::npos);
  EXPECT_TRUE(s.back()["train_loss"].is_null()) << s.back().dump();
}

// SecAgg+ end to end: 4 sites, each exchanging keys and masks with its 2 neighbours only.
TEST(SecAggFederationTest, SecAggPlusNeighboursOnly) {
  testing::TempDir dir("fedmed-secagg-plus");
  const auto run = testing::RunFederation(
      dir,
      testing::FederationToml(4, 1, /*federated=*/false, "",
                              "[secure_aggregation]\nenabled = true\nneighbours = 2\n"
                              "stage_timeout_seconds = 10\n"),
      300);
  ASSERT_TRUE(run);
  const auto rows = Rows(*run);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["contributors"].size(), 4u);
  EXPECT_EQ(rows[0]["num_samples"].get<int>(), 4708);
  EXPECT_GE(rows[0]["global"]["accuracy"].get<double>(), 0.7) << rows[0].dump();
  const std::string log = testing::ReadFile(*run / "coordinator" / "coordinator.log");
  // t defaults to a majority of each site and its 2 neighbours: 2.
  EXPECT_NE(log.find("threshold 2 of each site and its 2 neighbours (SecAgg+)"), std::string::npos)
      << log;
}

TEST(SecAggFederationTest, SiteKilledAfterSharingKeysDoesNotStopTheRound) {
  testing::TempDir dir("fedmed-secagg-kill");
  // A short round deadline: the dead site's masked input is waited for that long.
  std::string config =
      testing::FederationToml(3, 2, /*federated=*/false, "min_sites = 2\n", kSecure);
  const std::string deadline = "round_deadline_seconds = 300";
  config.replace(config.find(deadline), deadline.size(), "round_deadline_seconds = 40");
  const auto run = testing::RunFederation(dir, config, 400, {"--kill-site", "2@2"});
  ASSERT_TRUE(run);
  const std::string out = testing::ReadFile(dir / "simulate.out");
  EXPECT_NE(out.find("killed site-2"), std::string::npos) << out;
  const auto rows = Rows(*run);
  ASSERT_EQ(rows.size(), 2u) << out;
  EXPECT_EQ(rows[0]["contributors"].size(), 3u);
  EXPECT_EQ(rows[1]["contributors"], nlohmann::json({"site-1", "site-3"})) << rows[1].dump();
  EXPECT_EQ(rows[1]["secure_aggregation"]["dropped"], nlohmann::json({"site-2"}));
  // N is the survivors' samples only (site-2 has 1569 of the 4708 training images).
  EXPECT_EQ(rows[1]["num_samples"].get<int>(), 4708 - 1569);
  EXPECT_NE(rows[0]["model_sha256"], rows[1]["model_sha256"]);
  EXPECT_GE(rows[1]["global"]["accuracy"].get<double>(), 0.7) << rows[1].dump();
}

}  // namespace
}  // namespace fedmed

namespace fedmed {
namespace {

// A coordinator with secure aggregation on refuses a site that cannot run it (here: its audit
// key, which signs its secure-aggregation keys, is missing), and both sides say why.
TEST(SecAggFederationTest, SiteWithoutSecAggSupportIsRefusedWithTheReason) {
  testing::TempDir dir("fedmed-secagg-refusal");
  ProvisionOptions options = testing::TwoSiteFederationOptions(dir / "federation");
  options.coordinator_template.output_dir = dir / "coordinator";
  options.coordinator_template.secure_aggregation.enabled = true;
  const ProvisionResult federation = ProvisionFederation(options);
  testing::CoordinatorProcess coordinator(federation.coordinator_config, dir.path());
  const int port = coordinator.WaitForPort();
  ASSERT_GT(port, 0);

  SiteConfig site = LoadSiteConfig(federation.site_configs.at("site-1"));
  fs::remove(fs::path(site.tls.key).parent_path() / kAuditKeyFile);
  EXPECT_EQ(testing::RunSiteProcess(site, dir.path(), "site-1", port), 2)
      << testing::ReadFile(dir / "site-1.out");
  const std::string why = "does not support secure aggregation";
  EXPECT_NE(testing::ReadFile(dir / "site-1.out").find(why), std::string::npos);
  EXPECT_NE(coordinator.Log().find(why), std::string::npos);
}

}  // namespace
}  // namespace fedmed
