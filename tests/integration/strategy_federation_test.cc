// End to end with a server-side strategy other than FedAvg: fedmed-simulate starts one
// coordinator and three site processes that train the cnn on PneumoniaMNIST over mutual-TLS gRPC
// for two rounds of one local epoch, once with FedAdam and once with the coordinate-wise median.
// metrics.jsonl must name the strategy, the global model must change every round and end with a
// sane accuracy, and the strategy's server state must be checkpointed beside the model.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/util/data_path.h"
#include "common/util/process.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;

std::vector<nlohmann::json> ReadMetrics(const fs::path& file) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

struct StrategyCase {
  std::string name;
  std::string strategy_section;  // the [strategy] keys besides the name
  bool keeps_state = false;      // SaveState is non-empty after a round
};

void RunThreeSitesTwoRounds(const StrategyCase& c) {
  testing::TempDir dir(std::string("fedmed-strategy-") + c.name);
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

[strategy]
name = ")" << c.name << "\"\n"
                        << c.strategy_section << R"(

[evaluation]
split = "test"
federated = false
)";
  ChildProcess simulate({testing::BinDir() + "/fedmed-simulate", "--config", config, "--output",
                         dir / "runs"},
                        dir / "simulate.out");
  const std::optional<int> status = simulate.Wait(300);
  ASSERT_TRUE(status.has_value()) << "fedmed-simulate did not finish in 5 minutes";
  ASSERT_EQ(*status, 0) << testing::ReadFile(dir / "simulate.out");

  fs::path run;
  for (const auto& entry : fs::directory_iterator(dir / "runs")) run = entry.path();
  const fs::path out = run / "coordinator";
  const std::vector<nlohmann::json> rows = ReadMetrics(out / "metrics.jsonl");
  ASSERT_EQ(rows.size(), 2u) << testing::ReadFile(dir / "simulate.out");
  for (const nlohmann::json& row : rows) {
    EXPECT_EQ(row["strategy"], c.name);
    EXPECT_EQ(row["contributors"].size(), 3u);
    EXPECT_EQ(row["num_samples"].get<int>(), 4708);
  }
  EXPECT_NE(rows[0]["model_sha256"], rows[1]["model_sha256"]) << "round 2 changed nothing";
  const nlohmann::json& last = rows.back()["global"];
  EXPECT_EQ(last["num_samples"].get<int>(), 624);
  EXPECT_GE(last["accuracy"].get<double>(), 0.6) << rows.back().dump();

  const std::string log = testing::ReadFile((out / "coordinator.log").string());
  EXPECT_NE(log.find(std::string("strategy: ") + c.name), std::string::npos) << log;
  const nlohmann::json resume = nlohmann::json::parse(testing::ReadFile(out / "resume.json"));
  EXPECT_EQ(resume["strategy"], c.name);
  ASSERT_EQ(resume["strategy_state"], "checkpoints/round-0002.strategy");
  ASSERT_TRUE(fs::exists(out / "checkpoints" / "round-0002.strategy"));
  EXPECT_EQ(fs::file_size(out / "checkpoints" / "round-0002.strategy") > 0, c.keeps_state);
}

// FedAdam with η = 0.01: its first step moves every weight by about η (m / (sqrt(v) + τ) is
// about ±1 in the first round, whatever the size of the update), and the default η = 0.1 is a
// large step for this cnn.
TEST(StrategyFederationTest, FedAdamThreeSitesTwoRounds) {
  RunThreeSitesTwoRounds({"fedadam", "server_learning_rate = 0.01", true});
}

TEST(StrategyFederationTest, MedianThreeSitesTwoRounds) {
  RunThreeSitesTwoRounds({"median", "", false});
}

}  // namespace
}  // namespace fedmed
