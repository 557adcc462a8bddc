// RoundFlow, part 2: the stages of a round, on the control thread (each method runs under mu_,
// from a posted task or a timer): start, training's end, aggregation, the secure-aggregation
// stages. Evaluation, the round's end and shutdown: round_end.cc.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>

#include "common/model/evaluation.h"
#include "common/model/model_io.h"
#include "coordinator/round_flow.h"

namespace fedmed {

namespace {

}  // namespace

void RoundFlow::MaybeStartFirstRound() {
  MutexLock lock(&mu_);
  if (!rsm_.ReadyToStart() || stopping_) return;
  registration_timer_->Cancel();
  StartRoundLocked(/*retry=*/false);
}

void RoundFlow::StartRoundLocked(bool retry) {
  // fedmed-admin pause: the next round waits for resume (another attempt of the current one
  // does not: the pause comes after the current round).
  if (!retry && paused_) {
    if (!held_by_pause_) {
      log_->warn("paused by the operator: round {} waits for fedmed-admin resume",
                 rsm_.round() + 1);
    }
    held_by_pause_ = true;
    deadline_->Cancel();
    WriteStatusLocked();
    cv_.SignalAll();
    return;
  }
  held_by_pause_ = false;
  // Too few sites registered for a quorum (sites went away): no attempt starts, so none is
  // spent waiting for its deadline with nobody to train; the next registration starts it.
  const size_t needed = static_cast<size_t>(config_.min_sites);
  if (rsm_.sites().size() < needed) {
    if (!waiting_for_sites_) {
      log_->warn("round {}: {} site(s) registered, {} needed ([federation] min_sites): waiting "
                 "for sites before the next attempt",
                 rsm_.round() + (retry ? 0 : 1), rsm_.sites().size(), needed);
    }
    waiting_for_sites_ = true;
    waiting_retry_ = retry;
    deadline_->Cancel();
    WriteStatusLocked();
    return;
  }
  waiting_for_sites_ = false;
  if (retry && rsm_.attempt() >= config_.max_attempts) {
    FailLocked("round " + std::to_string(rsm_.round()) + ": " + std::to_string(rsm_.attempt()) +
               " attempts failed ([federation] max_attempts; their reasons are above)");
    return;
  }
  rsm_.StartRound(retry);
  fit_ = strategy_->ConfigureFit(rsm_.round(), rsm_.selected());
  try {
    strategy_->BeginRound(global_state_);  // forgets the updates of an earlier attempt
  } catch (const std::exception& e) {
    FailLocked("round " + std::to_string(rsm_.round()) + ": the " + strategy_->name() +
               " strategy cannot start it: " + e.what());
    return;
  }
  RoundRecord fresh;
  record_ = std::move(fresh);
  record_.secure = secure_;
  log_heads_.clear();
  record_.round = rsm_.round();
  record_.attempt = rsm_.attempt();
  record_.strategy = strategy_->name();
  record_.update_encoding = config_.update_encoding;
  transfer_seconds_.clear();
  site_train_seconds_.clear();
  site_compute_wait_seconds_.clear();
  last_update_site_.clear();
  deadline_passed_at_.reset();
  loss_weighted_sum_ = 0;
  site_train_seconds_sum_ = 0;
  training_closed_ = false;
  eval_closed_ = false;
  central_eval_done_ = false;
  round_start_ = loop_->Now();
  last_update_at_ = round_start_;
  std::string selected;
  for (const std::string& s : rsm_.selected()) selected += (selected.empty() ? "" : ", ") + s;
  log_->info("round {}/{}{} started: {} selected ({})", rsm_.round(), rsm_.total_rounds(),
             retry ? " (attempt " + std::to_string(rsm_.attempt()) + ")" : "",
             rsm_.selected().size(), selected);
  ArmDeadlineLocked();
  if (secure_) StartSecureAttemptLocked();
  WriteStatusLocked();
  cv_.SignalAll();
}

void RoundFlow::ArmDeadlineLocked() {
  phase_deadline_ = loop_->Now() + SecondsToDuration(config_.round_deadline_seconds);
  const Phase phase = rsm_.phase();
  const int round = rsm_.round(), attempt = rsm_.attempt();
  deadline_->Arm(phase_deadline_, [this, phase, round, attempt] {
    MutexLock lock(&mu_);
    if (rsm_.phase() != phase || rsm_.round() != round || rsm_.attempt() != attempt) return;
    if (phase == Phase::kTraining && !training_closed_) {
      log_->warn("round {}: deadline of {} s passed with {}/{} updates", round,
                 config_.round_deadline_seconds, rsm_.contributed().size(),
                 rsm_.selected().size());
      training_closed_ = true;
      deadline_passed_at_ = loop_->Now();
      MaybeEndTrainingLocked();
    } else if (phase == Phase::kEvaluating && !eval_closed_) {
      log_->warn("round {}: evaluation deadline passed with {} site report(s)", round,
                 rsm_.evaluated().size());
      eval_closed_ = true;
      MaybeFinishRoundLocked();
    }
  });
}

double RoundFlow::SecondsLeftLocked() const {
  return std::max(0.0, ToSeconds(phase_deadline_ - loop_->Now()));
}

void RoundFlow::MaybeEndTrainingLocked() {
  if (rsm_.phase() != Phase::kTraining || pending_adds_ > 0 || aggregating_) return;
  if (closing_) {
    // The previous round's evaluation or records are not done: this round aggregates after
    // them (RecordedLocked calls this again), or is abandoned when that evaluation failed.
    if (!closing_->repeat_why.empty()) MaybeRepeatClosingLocked();
    return;
  }
  if (secure_) {
    MaybeEndSecureTrainingLocked();
    return;
  }
  if (!training_closed_ && !rsm_.TrainingComplete()) return;
  training_closed_ = true;
  deadline_->Cancel();
  training_end_ = loop_->Now();
  if (!rsm_.HasQuorum()) {
    RetryOrFailLocked();
    return;
  }
  all_declined_attempts_ = 0;
  aggregating_ = true;
  before_aggregation_ = BeforeAggregation{global_state_, global_->version, strategy_->SaveState()};
  const int round = rsm_.round();
  loop_->PostWork([this, round, base = global_state_] {
    ModelState next;
    std::string error;
    try {
      next = strategy_->AggregateFit(base);
    } catch (const std::exception& e) {
      error = e.what();
    }
    loop_->Post([this, round, next = std::move(next), error = std::move(error)]() mutable {
      MutexLock lock(&mu_);
      FinishAggregationLocked(round, std::move(next), error);
    });
  });
}

// A plain round below its quorum: retried at once, or, when every selected site declined (spent
// privacy budgets, a model it cannot train), a second later, and after kMaxAllDeclinedAttempts
// such attempts the federation stops and says why.
void RoundFlow::RetryOrFailLocked() {
  const bool all_declined =
      rsm_.contributed().empty() && rsm_.declined().size() == rsm_.selected().size();
  all_declined_attempts_ = all_declined ? all_declined_attempts_ + 1 : 0;
  if (all_declined_attempts_ >= kMaxAllDeclinedAttempts) {
    FailLocked("round " + std::to_string(rsm_.round()) + ": every selected site declined " +
               std::to_string(all_declined_attempts_) +
               " attempts in a row (see their reasons above: a spent privacy budget, or a task "
               "they cannot run); the federation cannot go on");
    return;
  }
  log_->warn("round {}: {} update(s), below the quorum of {} ([federation] min_sites); "
             "retrying the round{}",
             rsm_.round(), rsm_.contributed().size(), config_.min_sites,
             all_declined ? " in 1 s (every selected site declined)" : "");
  if (!all_declined) {
    StartRoundLocked(/*retry=*/true);
    return;
  }
  const int round = rsm_.round(), attempt = rsm_.attempt();
  retry_timer_->Arm(loop_->Now() + std::chrono::seconds(1), [this, round, attempt] {
    MutexLock lock(&mu_);
    if (stopping_ || rsm_.round() != round || rsm_.attempt() != attempt) return;
    StartRoundLocked(/*retry=*/true);
  });
}

// Once AggregateFit has run on the pool: installs the new global model and starts the
// evaluation, or stops the federation on an aggregation error.
void RoundFlow::FinishAggregationLocked(int round, ModelState next, const std::string& error) {
  aggregating_ = false;
  if (!error.empty()) {
    FailLocked("round " + std::to_string(round) + ": aggregation failed: " + error);
    return;
  }
  if (!std::isfinite(L2Norm(next))) {
    DiscardAggregateLocked("the aggregate has values that are not finite");
    return;
  }
  record_.base_model_norm = global_norm_;
  InstallGlobalLocked(std::move(next), round);
  record_.aggregation_seconds = ToSeconds(loop_->Now() - training_end_);
  StartEvaluationLocked();
}

void RoundFlow::DiscardAggregateLocked(const std::string& why) {
  log_->error("round {} attempt {}: {}; the aggregate is not published and the round is tried "
              "again",
              rsm_.round(), rsm_.attempt(), why);
  if (before_aggregation_) {
    InstallGlobalLocked(std::move(before_aggregation_->global), before_aggregation_->version);
    try {
      strategy_->LoadState(before_aggregation_->strategy_state);
    } catch (const std::exception& e) {
      FailLocked("the " + strategy_->name() + " strategy cannot restore its state: " + e.what());
      return;
    }
    before_aggregation_.reset();
  }
  aggregating_ = false;
  StartRoundLocked(/*retry=*/true);
}

// ---- secure aggregation (secure_round.h) ----

void RoundFlow::StartSecureAttemptLocked() {
  int64_t n_ref = 1;
  for (const auto& [name, site] : rsm_.sites()) n_ref = std::max(n_ref, site.num_train_samples);
  secagg_contributors_.clear();
  const std::string cannot =
      secure_round_.Begin(rsm_.round(), rsm_.attempt(), fit_.sites, n_ref,
                          global_state_.NumValues(), std::time(nullptr));
  if (!cannot.empty()) {
    log_->error("round {}: secure aggregation cannot run with {}; retrying in {} s", rsm_.round(),
                cannot, config_.secure_aggregation.stage_timeout_seconds);
    ArmSecAggTimerLocked([this, cannot]() REQUIRES(mu_) { SecAggFailLocked(cannot); });
    return;
  }
  const SecAggRoundConfig& c = *secure_round_.config();
  log_->info("round {}: secure aggregation attempt {}: {} participants, threshold {}{}, n_ref {}",
             c.round, c.attempt, c.participants.size(), c.threshold,
             c.neighbours > 0 ? " of each site and its " + std::to_string(c.neighbours) +
                                    " neighbours (SecAgg+)"
                              : std::string(),
             c.weight_normalizer);
  ArmSecAggTimerLocked([this]() REQUIRES(mu_) { CloseSecAggStageLocked(/*timeout=*/true); });
}

// Runs `on_timeout` (under mu_) after the stage timeout, unless the attempt or stage changed.
void RoundFlow::ArmSecAggTimerLocked(std::function<void()> on_timeout) {
  const int round = rsm_.round(), attempt = rsm_.attempt();
  const auto stage = secure_round_.stage();
  const bool active = secure_round_.active();
  secagg_timer_->Arm(
      loop_->Now() + SecondsToDuration(config_.secure_aggregation.stage_timeout_seconds),
      [this, round, attempt, stage, active, on_timeout = std::move(on_timeout)] {
        MutexLock lock(&mu_);
        if (rsm_.phase() != Phase::kTraining || rsm_.round() != round ||
            rsm_.attempt() != attempt || secure_round_.active() != active ||
            secure_round_.stage() != stage) {
          return;
        }
        on_timeout();
      });
}

// Closes the current key stage (0 or 1) or the unmasking stage when it is complete, or with
// whatever has arrived when `timeout`.
void RoundFlow::CloseSecAggStageLocked(bool timeout) {
  const int round = rsm_.round();
  try {
    switch (secure_round_.Close(timeout)) {
      case SecureRound::Step::kNothing:
        return;
      case SecureRound::Step::kKeysClosed:
        log_->info("round {}: secure aggregation: keys of {} sites advertised{}", round,
                   secure_round_.config()->participants.size(), timeout ? " (timeout)" : "");
        ArmSecAggTimerLocked([this]() REQUIRES(mu_) { CloseSecAggStageLocked(true); });
        break;
      case SecureRound::Step::kSharesClosed:
        log_->info("round {}: secure aggregation: key shares exchanged{}", round,
                   timeout ? " (timeout)" : "");
        secagg_timer_->Cancel();  // masked inputs: until the round deadline
        break;
      case SecureRound::Step::kUnmask:
        StartUnmaskLocked();
        break;
    }
  } catch (const SecAggAborted& e) {
    SecAggFailLocked(e.what());
    return;
  }
  cv_.SignalAll();
}

// Stage 2 ends (every member of U2 sent its masked input, or the round deadline passed).
void RoundFlow::MaybeEndSecureTrainingLocked() {
  if (secure_round_.KeyExchangeOpen()) {
    if (training_closed_) SecAggFailLocked("the round deadline passed during the key exchange");
    return;
  }
  if (!secure_round_.CollectingMaskedInputs()) return;
  if (!training_closed_ && !secure_round_.MaskedInputComplete()) return;
  training_closed_ = true;
  deadline_->Cancel();
  training_end_ = loop_->Now();
  size_t survivors = 0;
  try {
    survivors = secure_round_.CloseMaskedInput().size();
  } catch (const SecAggAborted& e) {
    SecAggFailLocked(e.what());
    return;
  }
  if (static_cast<int>(survivors) < config_.min_sites) {
    SecAggFailLocked(std::to_string(survivors) + " masked input(s), below the quorum of " +
                     std::to_string(config_.min_sites) + " ([federation] min_sites)");
    return;
  }
  for (const auto& [site, why] : secure_round_.excluded()) record_.secagg_excluded[site] = why;
  for (const std::string& site : secure_round_.Dropped()) {
    record_.secagg_dropped.push_back(site);
    log_->warn("round {}: {} shared its keys but sent no masked input; its masks are removed "
               "from its peers' shares",
               rsm_.round(), site);
  }
  log_->info("round {}: secure aggregation: {} masked inputs; asking the survivors to unmask",
             rsm_.round(), survivors);
  ArmSecAggTimerLocked([this]() REQUIRES(mu_) { CloseSecAggStageLocked(true); });
  cv_.SignalAll();
}

// Unmasks on the pool (the PRG expansions are the costly part) and aggregates the sum.
void RoundFlow::StartUnmaskLocked() {
  secagg_timer_->Cancel();
  aggregating_ = true;
  before_aggregation_ = BeforeAggregation{global_state_, global_->version, strategy_->SaveState()};
  std::shared_ptr<SecAggServer> server = secure_round_.TakeServer();
  const int round = rsm_.round();
  loop_->PostWork([this, server, round, base = global_state_] {
    ModelState next;
    std::string error, aborted;
    std::vector<std::string> contributors;
    try {
      SecureRound::Result sum = SecureRound::Unmask(*server, base);
      contributors = sum.contributors;
      // The strategy sees one update: the exact weighted mean with weight N (strategy.h).
      strategy_->AddUpdate("secure aggregate of " + std::to_string(contributors.size()) + " sites",
                           sum.mean, sum.total_samples);
      next = strategy_->AggregateFit(base);
    } catch (const SecAggAborted& e) {
      aborted = e.what();
    } catch (const std::exception& e) {
      error = e.what();
    }
    loop_->Post([this, round, next = std::move(next), error = std::move(error),
                 aborted = std::move(aborted), contributors = std::move(contributors)]() mutable {
      MutexLock lock(&mu_);
      if (!aborted.empty()) {
        aggregating_ = false;
        SecAggFailLocked(aborted);
        return;
      }
      secagg_contributors_ = std::move(contributors);
      log_->info("round {}: secure aggregation: unmasked the sum of {} sites' updates", round,
                 secagg_contributors_.size());
      FinishAggregationLocked(round, std::move(next), error);
    });
  });
}

// The attempt cannot complete: log why and try the round again with fresh keys.
void RoundFlow::SecAggFailLocked(const std::string& why) {
  log_->error("round {} attempt {}: secure aggregation failed: {}; the round is tried again "
              "with fresh keys",
              rsm_.round(), rsm_.attempt(), why);
  secure_round_.Abort(why);
  secagg_timer_->Cancel();
  StartRoundLocked(/*retry=*/true);
}

}  // namespace fedmed
