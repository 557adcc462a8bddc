// The round state machine of the coordinator (pure logic: no gRPC, no LibTorch, no clock).
//
//   kWaitingForSites --(min_sites registered)--> kTraining(round 1)
//   kTraining --(every selected site sent its update or declined, or the deadline passed)--> quorum?
//        yes: aggregate, then kEvaluating(round r)     no: kTraining(round r, next attempt)
//   kEvaluating --(every asked site reported, or the deadline passed)--> kTraining(round r+1)
//        or, after the last round, kFinished
//
// The Coordinator owns one instance, calls it under its own mutex, and turns its decisions into
// tasks for polling sites, timers and aggregation work. A site is identified by the CN of its
// certificate; a site that registers again (after a restart) keeps its place with a new session.
#ifndef FEDMED_COORDINATOR_ROUND_ROUND_STATE_MACHINE_H_
#define FEDMED_COORDINATOR_ROUND_ROUND_STATE_MACHINE_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/util/status.h"

namespace fedmed {

enum class Phase { kWaitingForSites, kTraining, kEvaluating, kFinished };
const char* PhaseName(Phase phase);

// What a polling site should do now.
enum class SiteAction { kWait, kTrain, kEvaluate, kFinish };

struct RegisteredSite {
  std::string name;        // certificate CN
  std::string session_id;  // changes when the site registers again
  int64_t num_train_samples = 0;
  int64_t num_test_samples = 0;
};

class RoundStateMachine {
 public:
  // total_rounds >= 1; min_sites >= 1 is the quorum of updates a round needs and, unless
  // min_available_sites > 0 says otherwise, the number of registered sites needed to start;
  // sites_per_round = 0 selects every registered site, otherwise that many, drawn with `seed`
  // and the round number.
  RoundStateMachine(int total_rounds, int min_sites, int sites_per_round, uint64_t seed,
                    int min_available_sites = 0);

  // Adds or re-registers a site (not an excluded one: the caller refuses those).
  void Register(const RegisteredSite& site);
  // Removes `site` until it registers again (it is gone: its process or connection ended): it
  // is not selected or asked to evaluate, its session ends, and a round that waits for its
  // answer or report stops waiting (it counts as declined).
  void Remove(const std::string& site);
  // Removes `site` for good (Remove, and Register ignores it from now on).
  void Exclude(const std::string& site);
  bool IsExcluded(const std::string& site) const { return excluded_.count(site) != 0; }
  const std::set<std::string>& excluded() const { return excluded_; }
  // True if `session_id` is the current session of `site`.
  bool IsCurrentSession(const std::string& site, const std::string& session_id) const;
  const std::map<std::string, RegisteredSite>& sites() const { return sites_; }

  Phase phase() const { return phase_; }
  int round() const { return round_; }            // 0 before the first round
  int attempt() const { return attempt_; }        // 1 for the first try of a round
  int total_rounds() const { return total_rounds_; }
  // Adds `rounds` (>= 1) to the federation (fedmed-admin extend; a resumed extension). Throws
  // Error once kFinished or for rounds < 1.
  void ExtendRounds(int rounds);

  // Marks rounds 1..completed_rounds as done (a coordinator resuming from its checkpoint). Only
  // before the first round starts; kFinished when no round is left.
  void ResumeAfter(int completed_rounds);

  // Registered sites the first round waits for: min_available_sites, or min_sites when it is 0.
  int sites_to_start() const { return min_available_sites_; }
  // True in kWaitingForSites once sites_to_start() sites have registered.
  bool ReadyToStart() const;

  // Starts the next round (or a new attempt of the current one after a failed quorum): selects
  // sites and enters kTraining. Throws Error once kFinished.
  void StartRound(bool retry);

  SiteAction ActionFor(const std::string& site) const;

  // Whether `site` may answer training round `round` now (AcceptUpdate's check, recording
  // nothing): for an update's header, before its data is read.
  Status CheckTrainingAnswer(const std::string& site, int round, const char* what) const;
  // Records that `site` delivered its update for `round`. OK when accepted, else
  // FAILED_PRECONDITION saying why it is refused (not in training, another round, not selected,
  // already delivered or declined).
  Status AcceptUpdate(const std::string& site, int round);
  // Records that `site` declined round `round` (its privacy budget would be exceeded): the round
  // no longer waits for it. OK when accepted, else FAILED_PRECONDITION saying why not.
  Status DeclineTask(const std::string& site, int round);
  // Every selected site answered (sent its update or declined).
  bool TrainingComplete() const;
  // At least min_sites updates arrived.
  bool HasQuorum() const;

  // Enters kEvaluating: the sites that registered are asked to evaluate (`ask_sites` false: none).
  void StartEvaluation(bool ask_sites);
  // Records `site`'s evaluation report of `round`. OK, or FAILED_PRECONDITION: no evaluation of
  // that round is collected, the site was not asked, or it already reported.
  Status AcceptEvaluation(const std::string& site, int round);
  bool EvaluationComplete() const;

  // Ends the current round after evaluation: kFinished after the last round; otherwise sites wait
  // until the next StartRound.
  void FinishRound();
  // Abandons the current round, which started on the global model of round `round` (= round()
  // - 1) before that model's held-out evaluation was done and that evaluation failed: `round`
  // becomes the current round again, after its `attempt`, so that the next StartRound(true)
  // starts attempt `attempt` + 1 of it. Throws Error when `round` is not the round before the
  // current one or the federation is kFinished.
  void RepeatRound(int round, int attempt);

  const std::vector<std::string>& selected() const { return selected_; }
  const std::set<std::string>& contributed() const { return contributed_; }
  const std::set<std::string>& declined() const { return declined_; }
  const std::set<std::string>& evaluated() const { return evaluated_; }

 private:
  int total_rounds_;
  int min_sites_;
  int min_available_sites_;
  int sites_per_round_;
  uint64_t seed_;
  Phase phase_ = Phase::kWaitingForSites;
  int round_ = 0;
  int attempt_ = 0;
  std::map<std::string, RegisteredSite> sites_;
  std::vector<std::string> selected_;
  std::set<std::string> contributed_;
  std::set<std::string> declined_;
  std::set<std::string> eval_asked_;
  std::set<std::string> evaluated_;
  std::set<std::string> excluded_;
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_ROUND_ROUND_STATE_MACHINE_H_
