#include "coordinator/round/round_state_machine.h"

#include <gtest/gtest.h>

#include "common/util/error.h"

namespace fedmed {
namespace {

RegisteredSite Site(const std::string& name, int64_t test = 10) {
  return RegisteredSite{name, "session-" + name, 100, test};
}

TEST(RoundStateMachineTest, WaitsForMinSitesThenRunsEveryRoundToFinish) {
  RoundStateMachine rsm(/*total_rounds=*/2, /*min_sites=*/2, /*sites_per_round=*/0, /*seed=*/0);
  EXPECT_EQ(rsm.phase(), Phase::kWaitingForSites);
  rsm.Register(Site("a"));
  EXPECT_FALSE(rsm.ReadyToStart());
  EXPECT_EQ(rsm.ActionFor("a"), SiteAction::kWait);
  rsm.Register(Site("b"));
  ASSERT_TRUE(rsm.ReadyToStart());

  for (int round = 1; round <= 2; ++round) {
    rsm.StartRound(/*retry=*/false);
    EXPECT_EQ(rsm.round(), round);
    EXPECT_EQ(rsm.ActionFor("a"), SiteAction::kTrain);
    EXPECT_TRUE(rsm.AcceptUpdate("a", round).ok());
    EXPECT_EQ(rsm.ActionFor("a"), SiteAction::kWait);  // delivered: nothing more to do
    EXPECT_FALSE(rsm.TrainingComplete());
    EXPECT_TRUE(rsm.AcceptUpdate("b", round).ok());
    EXPECT_TRUE(rsm.TrainingComplete());
    EXPECT_TRUE(rsm.HasQuorum());
    rsm.StartEvaluation(/*ask_sites=*/true);
    EXPECT_EQ(rsm.ActionFor("b"), SiteAction::kEvaluate);
    EXPECT_TRUE(rsm.AcceptEvaluation("a", round).ok());
    EXPECT_TRUE(rsm.AcceptEvaluation("b", round).ok());
    EXPECT_TRUE(rsm.EvaluationComplete());
    rsm.FinishRound();
  }
  EXPECT_EQ(rsm.phase(), Phase::kFinished);
  EXPECT_EQ(rsm.ActionFor("a"), SiteAction::kFinish);
  EXPECT_THROW(rsm.StartRound(false), Error);
}

TEST(RoundStateMachineTest, RefusesStaleDuplicateAndUnselectedUpdates) {
  RoundStateMachine rsm(3, 1, 1, /*seed=*/7);
  rsm.Register(Site("a"));
  rsm.Register(Site("b"));
  rsm.StartRound(false);
  ASSERT_EQ(rsm.selected().size(), 1u);
  const std::string chosen = rsm.selected()[0];
  const std::string other = chosen == "a" ? "b" : "a";
  EXPECT_EQ(rsm.ActionFor(other), SiteAction::kWait);
  EXPECT_NE(rsm.AcceptUpdate(other, 1).message().find("not selected"), std::string::npos);
  EXPECT_NE(rsm.AcceptUpdate(chosen, 2).message().find("current round is 1"), std::string::npos);
  EXPECT_TRUE(rsm.AcceptUpdate(chosen, 1).ok());
  EXPECT_NE(rsm.AcceptUpdate(chosen, 1).message().find("already sent"), std::string::npos);
}

TEST(RoundStateMachineTest, ADeclinedSiteNoLongerHoldsTheRoundUp) {
  RoundStateMachine rsm(/*total_rounds=*/2, /*min_sites=*/1, /*sites_per_round=*/0, /*seed=*/0);
  rsm.Register(Site("a"));
  rsm.Register(Site("b"));
  rsm.StartRound(false);
  EXPECT_TRUE(rsm.DeclineTask("b", 1).ok());
  EXPECT_EQ(rsm.ActionFor("b"), SiteAction::kWait);  // not asked to train again this round
  EXPECT_NE(rsm.DeclineTask("b", 1).message().find("already declined"), std::string::npos);
  EXPECT_NE(rsm.AcceptUpdate("b", 1).message().find("already declined"), std::string::npos);
  EXPECT_FALSE(rsm.TrainingComplete());  // a has not answered yet
  EXPECT_TRUE(rsm.AcceptUpdate("a", 1).ok());
  EXPECT_TRUE(rsm.TrainingComplete());
  EXPECT_TRUE(rsm.HasQuorum());  // the quorum counts updates: 1 >= min_sites 1
  EXPECT_EQ(rsm.contributed(), std::set<std::string>{"a"});
  EXPECT_EQ(rsm.declined(), std::set<std::string>{"b"});
  rsm.StartEvaluation(/*ask_sites=*/true);
  EXPECT_EQ(rsm.ActionFor("b"), SiteAction::kEvaluate);  // a declining site still evaluates
  EXPECT_NE(rsm.DeclineTask("a", 1).message().find("not collecting"), std::string::npos);
  EXPECT_TRUE(rsm.AcceptEvaluation("a", 1).ok());
  EXPECT_TRUE(rsm.AcceptEvaluation("b", 1).ok());
  rsm.FinishRound();
  rsm.StartRound(false);
  EXPECT_TRUE(rsm.declined().empty());  // each round asks again
  EXPECT_EQ(rsm.ActionFor("b"), SiteAction::kTrain);
}

TEST(RoundStateMachineTest, MinAvailableSitesDelaysTheStartNotTheQuorum) {
  RoundStateMachine rsm(1, /*min_sites=*/1, 0, 0, /*min_available_sites=*/3);
  EXPECT_EQ(rsm.sites_to_start(), 3);
  EXPECT_EQ(RoundStateMachine(1, 2, 0, 0).sites_to_start(), 2);  // 0: min_sites
  rsm.Register(Site("a"));
  rsm.Register(Site("b"));
  EXPECT_FALSE(rsm.ReadyToStart());
  rsm.Register(Site("c"));
  ASSERT_TRUE(rsm.ReadyToStart());
  rsm.StartRound(false);
  EXPECT_EQ(rsm.selected().size(), 3u);
  EXPECT_TRUE(rsm.AcceptUpdate("a", 1).ok());
  EXPECT_TRUE(rsm.HasQuorum());  // one update is the quorum
}

TEST(RoundStateMachineTest, DeclinesDoNotCountTowardsTheQuorum) {
  RoundStateMachine rsm(1, /*min_sites=*/2, 0, 0);
  rsm.Register(Site("a"));
  rsm.Register(Site("b"));
  rsm.StartRound(false);
  EXPECT_TRUE(rsm.AcceptUpdate("a", 1).ok());
  EXPECT_TRUE(rsm.DeclineTask("b", 1).ok());
  EXPECT_TRUE(rsm.TrainingComplete());
  EXPECT_FALSE(rsm.HasQuorum());
}

TEST(RoundStateMachineTest, RetryKeepsTheRoundNumberAndClearsUpdates) {
  RoundStateMachine rsm(2, 2, 0, 0);
  rsm.Register(Site("a"));
  rsm.Register(Site("b"));
  rsm.StartRound(false);
  EXPECT_TRUE(rsm.AcceptUpdate("a", 1).ok());
  EXPECT_FALSE(rsm.HasQuorum());  // b dropped out: 1 of 2
  rsm.StartRound(/*retry=*/true);
  EXPECT_EQ(rsm.round(), 1);
  EXPECT_EQ(rsm.attempt(), 2);
  EXPECT_TRUE(rsm.contributed().empty());
  EXPECT_EQ(rsm.ActionFor("a"), SiteAction::kTrain);
}

TEST(RoundStateMachineTest, SiteSamplingIsSeededAndSized) {
  auto selection = [](uint64_t seed, int round) {
    RoundStateMachine rsm(10, 1, 3, seed);
    for (const char* name : {"a", "b", "c", "d", "e", "f"}) rsm.Register(Site(name));
    for (int r = 1; r <= round; ++r) {
      rsm.StartRound(false);
      if (r < round) {
        for (const std::string& s : rsm.selected()) (void)rsm.AcceptUpdate(s, r);
        rsm.StartEvaluation(false);
        rsm.FinishRound();
      }
    }
    return rsm.selected();
  };
  EXPECT_EQ(selection(1, 1).size(), 3u);
  EXPECT_EQ(selection(1, 1), selection(1, 1));
  bool differs = false;
  for (int round = 2; round <= 5 && !differs; ++round) differs = selection(1, round) != selection(1, 1);
  EXPECT_TRUE(differs) << "the same three sites were drawn in every round";
}

TEST(RoundStateMachineTest, ReRegistrationReplacesTheSession) {
  RoundStateMachine rsm(1, 1, 0, 0);
  rsm.Register(Site("a"));
  EXPECT_TRUE(rsm.IsCurrentSession("a", "session-a"));
  RegisteredSite again = Site("a");
  again.session_id = "new";
  rsm.Register(again);
  EXPECT_FALSE(rsm.IsCurrentSession("a", "session-a"));
  EXPECT_TRUE(rsm.IsCurrentSession("a", "new"));
  EXPECT_EQ(rsm.sites().size(), 1u);
}

TEST(RoundStateMachineTest, ResumeAfterCompletedRoundsStartsTheNextOne) {
  RoundStateMachine rsm(5, 1, 0, 0);
  rsm.ResumeAfter(3);
  rsm.Register(Site("a"));
  rsm.StartRound(false);
  EXPECT_EQ(rsm.round(), 4);
  RoundStateMachine done(5, 1, 0, 0);
  done.ResumeAfter(5);
  EXPECT_EQ(done.phase(), Phase::kFinished);
}

}  // namespace
}  // namespace fedmed
