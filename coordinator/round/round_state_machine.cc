#include "coordinator/round/round_state_machine.h"

#include <algorithm>

#include "common/util/error.h"
#include "common/util/seeded_shuffle.h"

namespace fedmed {

const char* PhaseName(Phase phase) {
  switch (phase) {
    case Phase::kWaitingForSites: return "waiting_for_sites";
    case Phase::kTraining: return "training";
    case Phase::kEvaluating: return "evaluating";
    case Phase::kFinished: return "finished";
  }
  return "unknown";
}

RoundStateMachine::RoundStateMachine(int total_rounds, int min_sites, int sites_per_round,
                                     uint64_t seed, int min_available_sites)
    : total_rounds_(total_rounds),
      min_sites_(min_sites),
      min_available_sites_(min_available_sites > 0 ? min_available_sites : min_sites),
      sites_per_round_(sites_per_round),
      seed_(seed) {
  if (total_rounds < 1 || min_sites < 1 || sites_per_round < 0) {
    throw ConfigError("round state machine: rounds and min_sites must be >= 1, sites_per_round >= 0");
  }
}

void RoundStateMachine::Register(const RegisteredSite& site) {
  if (excluded_.count(site.name) == 0) sites_[site.name] = site;
}

void RoundStateMachine::Exclude(const std::string& site) {
  excluded_.insert(site);
  Remove(site);
}

void RoundStateMachine::Remove(const std::string& site) {
  sites_.erase(site);
  if (phase_ == Phase::kTraining &&
      std::find(selected_.begin(), selected_.end(), site) != selected_.end() &&
      contributed_.count(site) == 0) {
    declined_.insert(site);
  }
  if (evaluated_.count(site) == 0) eval_asked_.erase(site);
}

bool RoundStateMachine::IsCurrentSession(const std::string& site,
                                         const std::string& session_id) const {
  const auto it = sites_.find(site);
  return it != sites_.end() && it->second.session_id == session_id;
}

void RoundStateMachine::ResumeAfter(int completed_rounds) {
  if (phase_ != Phase::kWaitingForSites || round_ != 0) throw Error("ResumeAfter once rounds ran");
  round_ = completed_rounds;
  if (round_ >= total_rounds_) phase_ = Phase::kFinished;
}

void RoundStateMachine::ExtendRounds(int rounds) {
  if (phase_ == Phase::kFinished) throw Error("ExtendRounds after the last round");
  if (rounds < 1) throw Error("ExtendRounds by " + std::to_string(rounds) + " (need >= 1)");
  total_rounds_ += rounds;
}

bool RoundStateMachine::ReadyToStart() const {
  return phase_ == Phase::kWaitingForSites && static_cast<int>(sites_.size()) >= min_available_sites_;
}

void RoundStateMachine::StartRound(bool retry) {
  if (phase_ == Phase::kFinished) throw Error("StartRound after the last round");
  if (retry) {
    ++attempt_;
  } else {
    ++round_;
    attempt_ = 1;
  }
  selected_.clear();
  for (const auto& [name, site] : sites_) selected_.push_back(name);
  if (sites_per_round_ > 0 && sites_per_round_ < static_cast<int>(selected_.size())) {
    // Portable: the same sites on every platform for a seed, round and attempt.
    SeededShuffle(&selected_, seed_ * 1000003ULL + static_cast<uint64_t>(round_) * 7919ULL +
                                  static_cast<uint64_t>(attempt_));
    selected_.resize(static_cast<std::size_t>(sites_per_round_));
    std::sort(selected_.begin(), selected_.end());
  }
  contributed_.clear();
  declined_.clear();
  eval_asked_.clear();
  evaluated_.clear();
  phase_ = Phase::kTraining;
}

SiteAction RoundStateMachine::ActionFor(const std::string& site) const {
  switch (phase_) {
    case Phase::kFinished:
      return SiteAction::kFinish;
    case Phase::kTraining:
      if (std::find(selected_.begin(), selected_.end(), site) != selected_.end() &&
          contributed_.count(site) == 0 && declined_.count(site) == 0) {
        return SiteAction::kTrain;
      }
      return SiteAction::kWait;
    case Phase::kEvaluating:
      if (eval_asked_.count(site) != 0 && evaluated_.count(site) == 0) return SiteAction::kEvaluate;
      return SiteAction::kWait;
    case Phase::kWaitingForSites:
      return SiteAction::kWait;
  }
  return SiteAction::kWait;
}

Status RoundStateMachine::CheckTrainingAnswer(const std::string& site, int round,
                                              const char* what) const {
  if (phase_ != Phase::kTraining) {
    return Status::FailedPrecondition(
        std::string("the coordinator is not collecting updates (phase ") + PhaseName(phase_) + ")");
  }
  if (round != round_) {
    return Status::FailedPrecondition(std::string(what) + " is for round " +
                                      std::to_string(round) + " but the current round is " +
                                      std::to_string(round_));
  }
  if (std::find(selected_.begin(), selected_.end(), site) == selected_.end()) {
    return Status::FailedPrecondition("site " + site + " was not selected for round " +
                                      std::to_string(round_));
  }
  if (contributed_.count(site) != 0) {
    return Status::FailedPrecondition("site " + site + " already sent its update for round " +
                                      std::to_string(round_));
  }
  if (declined_.count(site) != 0) {
    return Status::FailedPrecondition("site " + site + " already declined round " +
                                      std::to_string(round_));
  }
  return Status::OK();
}

Status RoundStateMachine::AcceptUpdate(const std::string& site, int round) {
  Status s = CheckTrainingAnswer(site, round, "update");
  if (s.ok()) contributed_.insert(site);
  return s;
}

Status RoundStateMachine::DeclineTask(const std::string& site, int round) {
  Status s = CheckTrainingAnswer(site, round, "decline");
  if (s.ok()) declined_.insert(site);
  return s;
}

bool RoundStateMachine::TrainingComplete() const {
  return phase_ == Phase::kTraining &&
         contributed_.size() + declined_.size() == selected_.size();
}

bool RoundStateMachine::HasQuorum() const {
  return static_cast<int>(contributed_.size()) >= min_sites_;
}

void RoundStateMachine::StartEvaluation(bool ask_sites) {
  if (phase_ != Phase::kTraining) throw Error("StartEvaluation outside training");
  phase_ = Phase::kEvaluating;
  eval_asked_.clear();
  evaluated_.clear();
  if (ask_sites) {
    for (const auto& [name, site] : sites_) {
      if (site.num_test_samples > 0) eval_asked_.insert(name);
    }
  }
}

Status RoundStateMachine::AcceptEvaluation(const std::string& site, int round) {
  if (phase_ != Phase::kEvaluating || round != round_) {
    return Status::FailedPrecondition("no evaluation of round " + std::to_string(round) +
                                      " is being collected");
  }
  if (eval_asked_.count(site) == 0) {
    return Status::FailedPrecondition("site " + site + " was not asked to evaluate");
  }
  if (!evaluated_.insert(site).second) {
    return Status::FailedPrecondition("site " + site + " already reported");
  }
  return Status::OK();
}

bool RoundStateMachine::EvaluationComplete() const {
  return phase_ == Phase::kEvaluating && evaluated_.size() == eval_asked_.size();
}

void RoundStateMachine::FinishRound() {
  // Until the next StartRound the phase stays kEvaluating with every report in: sites wait.
  if (round_ >= total_rounds_) phase_ = Phase::kFinished;
}

void RoundStateMachine::RepeatRound(int round, int attempt) {
  if (phase_ == Phase::kFinished || round != round_ - 1 || round < 1 || attempt < 1) {
    throw Error("RepeatRound(" + std::to_string(round) + ") in round " + std::to_string(round_));
  }
  round_ = round;
  attempt_ = attempt;
}

}  // namespace fedmed
