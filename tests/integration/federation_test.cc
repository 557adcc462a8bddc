// End to end: fedmed-simulate starts one coordinator and three site processes that train the cnn
// on real PneumoniaMNIST over mutual-TLS gRPC for two rounds; the global model must reach
// ACC >= 0.80 on the official test split.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "common/util/data_path.h"
#include "common/util/process.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

using testing::TempDir;

std::vector<nlohmann::json> ReadMetrics(const std::filesystem::path& file) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

TEST(FederationTest, ThreeSitesTwoRoundsOverMutualTlsReachAccuracy080) {
  TempDir dir("fedmed-federation");
  const std::string data = ResolveDataPath("medmnist/pneumoniamnist.npz");
  const std::string config = dir / "federation.toml";
  std::ofstream(config) << R"(
[simulation]
name = "it"
sites = 3

[data]
path = ")" << data << R"("
partition = "iid"
seed = 0

[federation]
rounds = 2
seed = 0
round_deadline_seconds = 300

[model]
name = "cnn"

[training]
local_epochs = 1
batch_size = 32
optimizer = "adam"
learning_rate = 0.001

[evaluation]
split = "test"
federated = true
)";
  ChildProcess simulate({testing::BinDir() + "/fedmed-simulate", "--config", config, "--output",
                         dir / "runs"},
                        dir / "simulate.out");
  const std::optional<int> status = simulate.Wait(600);
  ASSERT_TRUE(status.has_value()) << "fedmed-simulate did not finish in 10 minutes";
  ASSERT_EQ(*status, 0) << testing::ReadFile(dir / "simulate.out");

  std::filesystem::path run;
  for (const auto& entry : std::filesystem::directory_iterator(dir / "runs")) run = entry.path();
  const std::vector<nlohmann::json> rows = ReadMetrics(run / "coordinator" / "metrics.jsonl");
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
