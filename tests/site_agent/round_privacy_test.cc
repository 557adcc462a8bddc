// The site's per-round privacy decisions: the mechanism matches the task's schedule, calibrated
// noise spends the target over the federation's rounds, and a round that would exceed the budget
// is declined rather than trained.
#include "site_agent/round_privacy.h"

#include <gtest/gtest.h>

#include "common/privacy/dp_sgd_schedule.h"
#include "common/privacy/rdp_accountant.h"
#include "common/util/error.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

using testing::TempDir;

SitePrivacyConfig DpSgd() {
  SitePrivacyConfig c;
  c.mode = "dp-sgd";
  c.clipping_norm = 1.0;
  c.noise_multiplier = 1.0;
  c.delta = 1e-5;
  c.budget_epsilon = 100;
  return c;
}

TrainSettings Settings(int batch, int epochs) {
  TrainSettings s;
  s.batch_size = batch;
  s.local_epochs = epochs;
  return s;
}

TEST(RoundPrivacyTest, TheMechanismFollowsTheTasksSchedule) {
  TempDir dir("round_privacy");
  RoundPrivacy privacy(DpSgd(), dir.path().string(), 1570);
  const RoundPrivacy::Plan plan = privacy.PlanRound(1, 5, Settings(32, 2));
  const DpSgdSchedule schedule = PlanDpSgd(1570, 32, 2);
  ASSERT_TRUE(plan.train) << plan.decline_reason;
  EXPECT_EQ(plan.report.mechanism.mode, PrivacyMode::kDpSgd);
  EXPECT_DOUBLE_EQ(plan.report.mechanism.sampling_rate, 32.0 / 1570);
  EXPECT_EQ(plan.report.mechanism.steps, schedule.steps);
  EXPECT_EQ(plan.report.mechanism.steps, 2 * 49);
  EXPECT_DOUBLE_EQ(plan.report.mechanism.noise_multiplier, 1.0);
  EXPECT_DOUBLE_EQ(plan.report.epsilon_round,
                   ComputeEpsilon(32.0 / 1570, 1.0, schedule.steps, 1e-5));
  EXPECT_EQ(plan.report.epsilon_total, 0);  // nothing committed yet
  const PrivacySpend sent = privacy.Commit(plan);
  EXPECT_DOUBLE_EQ(sent.epsilon_total, plan.report.epsilon_round);
  EXPECT_EQ(sent.budget_epsilon, 100);
  EXPECT_EQ(sent.delta, 1e-5);

  SitePrivacyConfig update = DpSgd();
  update.mode = "update";
  RoundPrivacy site_level(update, (dir / "u"), 1570);
  const RoundPrivacy::Plan u = site_level.PlanRound(1, 5, Settings(32, 2));
  EXPECT_EQ(u.report.mechanism.sampling_rate, 1.0);
  EXPECT_EQ(u.report.mechanism.steps, 1);
}

TEST(RoundPrivacyTest, CalibratedNoiseSpendsTheTargetOverTheRounds) {
  TempDir dir("round_privacy");
  SitePrivacyConfig c = DpSgd();
  c.noise_multiplier = 0;
  c.target_epsilon = 4.0;
  c.budget_epsilon = 4.0;
  RoundPrivacy privacy(c, dir.path().string(), 1570);
  double first_sigma = 0;
  for (int round = 1; round <= 5; ++round) {
    const RoundPrivacy::Plan plan = privacy.PlanRound(round, 5, Settings(32, 2));
    ASSERT_TRUE(plan.train) << "round " << round << ": " << plan.decline_reason;
    if (round == 1) first_sigma = plan.report.mechanism.noise_multiplier;
    privacy.Commit(plan);
  }
  EXPECT_GT(first_sigma, 0.5);
  EXPECT_LE(privacy.budget().spent(), 4.0);
  EXPECT_GT(privacy.budget().spent(), 4.0 - 0.1) << "calibration left budget unused";
  // The federation announced 5 rounds; a retried 6th still stays within the target, with far
  // more noise, or is declined.
  const RoundPrivacy::Plan extra = privacy.PlanRound(6, 5, Settings(32, 2));
  if (extra.train) {
    EXPECT_GT(extra.report.mechanism.noise_multiplier, 10 * first_sigma);
    EXPECT_LE(privacy.budget().TotalAfter(extra.report.mechanism), 4.0);
  } else {
    EXPECT_NE(extra.decline_reason.find("target_epsilon 4 is reached"), std::string::npos)
        << extra.decline_reason;
  }
  // Spent to the last hundredth: a target below what is spent cannot be met at all.
  SitePrivacyConfig lower = c;
  lower.target_epsilon = privacy.budget().spent() * 0.9;
  RoundPrivacy same_ledger(lower, dir.path().string(), 1570);
  const RoundPrivacy::Plan over = same_ledger.PlanRound(6, 5, Settings(32, 2));
  EXPECT_FALSE(over.train);
  EXPECT_NE(over.decline_reason.find("is reached"), std::string::npos) << over.decline_reason;
}

TEST(RoundPrivacyTest, ARoundThatWouldExceedTheBudgetIsDeclined) {
  TempDir dir("round_privacy");
  SitePrivacyConfig c = DpSgd();
  const double one = ComputeEpsilon(32.0 / 1570, 1.0, 98, 1e-5);
  const double two = ComputeEpsilon(32.0 / 1570, 1.0, 196, 1e-5);
  c.budget_epsilon = (one + two) / 2;
  RoundPrivacy privacy(c, dir.path().string(), 1570);
  const RoundPrivacy::Plan first = privacy.PlanRound(1, 3, Settings(32, 2));
  ASSERT_TRUE(first.train);
  privacy.Commit(first);
  const RoundPrivacy::Plan second = privacy.PlanRound(2, 3, Settings(32, 2));
  EXPECT_FALSE(second.train);
  EXPECT_NE(second.decline_reason.find("above budget_epsilon"), std::string::npos)
      << second.decline_reason;
  EXPECT_DOUBLE_EQ(second.report.epsilon_total, privacy.budget().spent());
  EXPECT_NEAR(second.report.epsilon_round, one, 1e-12);
  EXPECT_THROW(privacy.Commit(second), Error);  // no path spends past the budget
  EXPECT_EQ(privacy.budget().history().size(), 1u);
  // Whatever the round's size, the decision is the budget arithmetic.
  for (const int epochs : {1, 2, 3}) {
    const RoundPrivacy::Plan p = privacy.PlanRound(2, 3, Settings(32, epochs));
    EXPECT_EQ(p.train, privacy.budget().TotalAfter(p.report.mechanism) <= c.budget_epsilon) << epochs;
  }

  // The spend survives a restart of the site: the same round is still declined.
  RoundPrivacy restarted(c, dir.path().string(), 1570);
  EXPECT_FALSE(restarted.PlanRound(2, 3, Settings(32, 2)).train);
}

}  // namespace
}  // namespace fedmed
