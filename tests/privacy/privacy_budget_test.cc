// A site's privacy budget and its ledger: spends compose as the accountant says, survive a
// restart, and a round that would exceed the budget is never recorded.
#include "common/privacy/privacy_budget.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>

#include "common/privacy/rdp_accountant.h"
#include "common/util/error.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

using testing::ReadFile;
using testing::TempDir;

PrivacyMechanism DpSgd(double sigma, double q, int64_t steps) {
  return PrivacyMechanism{PrivacyMode::kDpSgd, sigma, 1.0, q, steps};
}

class PrivacyBudgetTest : public ::testing::Test {
 protected:
  TempDir dir_{"privacy_budget"};
  std::string ledger_ = dir_ / "privacy_ledger.json";
};

TEST_F(PrivacyBudgetTest, RoundsComposeAsTheAccountantSays) {
  PrivacyBudget budget(ledger_, 100, 1e-5);
  EXPECT_EQ(budget.spent(), 0);
  const PrivacyMechanism round = DpSgd(1.1, 0.02, 100);
  const double one_round = ComputeEpsilon(0.02, 1.1, 100, 1e-5);
  const double two_rounds = ComputeEpsilon(0.02, 1.1, 200, 1e-5);
  EXPECT_DOUBLE_EQ(budget.RoundEpsilon(round), one_round);
  EXPECT_DOUBLE_EQ(budget.TotalAfter(round), one_round);
  const RoundSpend first = budget.Commit(1, round);
  EXPECT_DOUBLE_EQ(first.epsilon_round, one_round);
  EXPECT_DOUBLE_EQ(first.epsilon_total, one_round);
  const RoundSpend second = budget.Commit(2, round);
  EXPECT_DOUBLE_EQ(second.epsilon_round, one_round);
  EXPECT_NEAR(second.epsilon_total, two_rounds, 1e-9 * two_rounds);
  EXPECT_NEAR(budget.spent(), two_rounds, 1e-9 * two_rounds);
  EXPECT_LT(second.epsilon_total, 2 * one_round);  // RDP composes tighter than adding epsilons
}

TEST_F(PrivacyBudgetTest, TheLedgerSurvivesARestart) {
  double spent = 0;
  {
    PrivacyBudget budget(ledger_, 10, 1e-5, RdpConversion::kClassic);
    budget.Commit(1, DpSgd(1.0, 0.05, 40));
    budget.Commit(3, PrivacyMechanism{PrivacyMode::kUpdate, 5.0, 0.5, 1.0, 1});
    spent = budget.spent();
  }
  PrivacyBudget restarted(ledger_, 12, 1e-5, RdpConversion::kClassic);
  EXPECT_DOUBLE_EQ(restarted.spent(), spent);
  ASSERT_EQ(restarted.history().size(), 2u);
  EXPECT_EQ(restarted.history()[1].round, 3);
  EXPECT_EQ(restarted.history()[1].mechanism.mode, PrivacyMode::kUpdate);
  EXPECT_EQ(restarted.history()[0].mechanism.steps, 40);
  EXPECT_EQ(restarted.previous_budget_epsilon(), 10);
  EXPECT_EQ(restarted.budget_epsilon(), 12);
}

TEST_F(PrivacyBudgetTest, ARoundAboveTheBudgetIsRefusedAndNotRecorded) {
  const PrivacyMechanism round = DpSgd(1.0, 0.05, 60);
  const double one = ComputeEpsilon(0.05, 1.0, 60, 1e-5);
  const double two = ComputeEpsilon(0.05, 1.0, 120, 1e-5);
  const double limit = std::round((one + two) / 2 * 100) / 100;  // room for one round, not two
  ASSERT_TRUE(one < limit && limit < two) << one << " " << limit << " " << two;
  PrivacyBudget budget(ledger_, limit, 1e-5);
  EXPECT_TRUE(budget.Allows(round));
  budget.Commit(1, round);
  const std::string on_disk = ReadFile(ledger_);
  EXPECT_FALSE(budget.Allows(round));
  try {
    budget.Commit(2, round);
    FAIL() << "no Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("round 2 would spend"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("above the budget of"), std::string::npos) << e.what();
  }
  EXPECT_EQ(ReadFile(ledger_), on_disk);
  EXPECT_DOUBLE_EQ(budget.spent(), one);
  EXPECT_EQ(budget.history().size(), 1u);
}

TEST_F(PrivacyBudgetTest, EpsilonsAreRecomputedNotReadFromTheLedger) {
  {
    PrivacyBudget budget(ledger_, 10, 1e-5);
    budget.Commit(1, DpSgd(1.0, 0.05, 60));
  }
  std::string text = ReadFile(ledger_);
  // Someone edits the recorded spend down to nothing.
  for (const std::string key : {"\"epsilon_round\": ", "\"epsilon_total\": "}) {
    const size_t at = text.find(key) + key.size();
    text.replace(at, text.find_first_of(",\n}", at) - at, "0.0");
  }
  std::ofstream(ledger_) << text;
  PrivacyBudget reopened(ledger_, 10, 1e-5);
  EXPECT_DOUBLE_EQ(reopened.spent(), ComputeEpsilon(0.05, 1.0, 60, 1e-5));
}

TEST_F(PrivacyBudgetTest, ADifferentDeltaOrConversionIsRefused) {
  {
    PrivacyBudget budget(ledger_, 10, 1e-5);
    budget.Commit(1, DpSgd(1.0, 0.05, 60));
  }
  try {
    PrivacyBudget other(ledger_, 10, 1e-6);
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(ledger_), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("delta = 1e-05"), std::string::npos) << e.what();
  }
  EXPECT_THROW(PrivacyBudget(ledger_, 10, 1e-5, RdpConversion::kClassic), ConfigError);
}

TEST_F(PrivacyBudgetTest, CorruptLedgersAndBadArgumentsAreNamed) {
  std::ofstream(ledger_) << "{\"version\": 1, \"delta\": 1e-5";
  try {
    PrivacyBudget budget(ledger_, 10, 1e-5);
    FAIL() << "no FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(ledger_), std::string::npos);
  }
  std::ofstream(ledger_) << R"({"version": 1, "delta": 1e-05, "conversion": "balle2020",
    "budget_epsilon": 8, "rounds": [{"round": 1, "mechanism": "dp-sgd", "noise_multiplier": 0,
    "clipping_norm": 1, "sampling_rate": 0.1, "steps": 10}]})";
  try {
    PrivacyBudget budget(ledger_, 10, 1e-5);
    FAIL() << "no FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("round 1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("noise_multiplier"), std::string::npos) << e.what();
  }
  std::ofstream(ledger_) << R"({"version": 1, "delta": 1e-05, "conversion": "balle2020",
    "budget_epsilon": 8, "rounds": [{"round": 2, "mechanism": "laplace", "noise_multiplier": 1,
    "clipping_norm": 1, "sampling_rate": 1, "steps": 1}]})";
  try {
    PrivacyBudget budget(ledger_, 10, 1e-5);
    FAIL() << "no FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("round 2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("\"laplace\""), std::string::npos) << e.what();
  }
  EXPECT_THROW(PrivacyBudget(dir_ / "x.json", 0, 1e-5), ConfigError);
  EXPECT_THROW(PrivacyBudget(dir_ / "x.json", 1, 0), ConfigError);
  PrivacyBudget budget(dir_ / "x.json", 1, 1e-5);
  EXPECT_THROW(budget.RoundEpsilon(DpSgd(1.0, 0.0, 10)), ConfigError);
  EXPECT_THROW(budget.RoundEpsilon(PrivacyMechanism{PrivacyMode::kUpdate, 1.0, 1.0, 0.5, 1}),
               ConfigError);
  EXPECT_THROW(budget.RoundEpsilon(PrivacyMechanism{PrivacyMode::kNone, 1.0, 1.0, 1.0, 1}),
               ConfigError);
}

}  // namespace
}  // namespace fedmed
