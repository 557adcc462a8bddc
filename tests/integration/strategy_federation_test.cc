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

#include "tests/integration/simulate_util.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;

struct StrategyCase {
  std::string name;
  std::string strategy_section;  // the [strategy] keys besides the name
  bool keeps_state = false;      // SaveState is non-empty after a round
};

void RunThreeSitesTwoRounds(const StrategyCase& c) {
  testing::TempDir dir(std::string("fedmed-strategy-") + c.name);
  const std::optional<fs::path> ran = testing::RunFederation(
      dir, testing::FederationToml(/*sites=*/3, /*rounds=*/2, /*federated=*/false, "",
                                   "[strategy]\nname = \"" + c.name + "\"\n" +
                                       c.strategy_section + "\n"),
      /*timeout_seconds=*/300);
  ASSERT_TRUE(ran.has_value());
  const fs::path run = *ran;
  const fs::path out = run / "coordinator";
  const std::vector<nlohmann::json> rows = ReadJsonLines((out / "metrics.jsonl").string());
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
