// End to end: fedmed-simulate starts one coordinator and three site processes that train the cnn
// on real PneumoniaMNIST over mutual-TLS gRPC for two rounds; the global model must reach
// ACC >= 0.80 on the official test split.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "tests/integration/simulate_util.h"

namespace fedmed {
namespace {

using testing::TempDir;

TEST(FederationTest, ThreeSitesTwoRoundsOverMutualTlsReachAccuracy080) {
  TempDir dir("fedmed-federation");
  const std::optional<std::filesystem::path> ran =
      testing::RunFederation(dir, testing::FederationToml(/*sites=*/3, /*rounds=*/2,
                                                          /*federated=*/true));
  ASSERT_TRUE(ran.has_value());
  const std::filesystem::path run = *ran;
  const std::vector<nlohmann::json> rows =
      ReadJsonLines((run / "coordinator" / "metrics.jsonl").string());
  ASSERT_EQ(rows.size(), 2u) << testing::ReadFile(dir / "simulate.out");
  for (const nlohmann::json& row : rows) {
    EXPECT_EQ(row["contributors"].size(), 3u);
    EXPECT_EQ(row["num_samples"].get<int>(), 4708);  // the three shards cover the train split
    EXPECT_EQ(row["update_sha256"].size(), 3u);
    EXPECT_EQ(row["federated"]["num_samples"].get<int>(), 624);  // shards of the test split
  }
  const nlohmann::json& last = rows.back()["global"];
  EXPECT_EQ(last["num_samples"].get<int>(), 624);
  EXPECT_GE(last["accuracy"].get<double>(), 0.80) << rows.back().dump();
  // Every site connected over mutual TLS: the coordinator logged each one's registration by CN.
  const std::string log = testing::ReadFile((run / "coordinator" / "coordinator.log").string());
  for (const char* site : {"site-1", "site-2", "site-3"}) {
    EXPECT_NE(log.find(std::string(site) + " registered"), std::string::npos) << site;
  }
  // Checkpoints Python can load are written every round.
  EXPECT_TRUE(std::filesystem::exists(run / "coordinator" / "checkpoints" / "round-0002.pt"));
}

}  // namespace
}  // namespace fedmed
