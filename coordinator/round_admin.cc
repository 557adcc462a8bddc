// RoundFlow, part 4: the operator's actions (AdminHandler, admin_handler.h; fedmed-admin). Each
// runs under mu_, is logged with the operator's CN and lands in the audit log (RoundReport::
// AppendAdmin) before it takes effect.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "coordinator/round_flow.h"

namespace fedmed {

namespace {

constexpr int kMaxExtendRounds = 10000;

}  // namespace

Status RoundFlow::CheckRunningLocked(const char* action) const {
  if (shutting_down_) {
    return Status::FailedPrecondition(std::string("cannot ") + action +
                                      ": the coordinator is stopping");
  }
  if (rsm_.phase() == Phase::kFinished) {
    return Status::FailedPrecondition(std::string("cannot ") + action +
                                      ": the federation finished its " +
                                      std::to_string(rsm_.total_rounds()) + " rounds");
  }
  return Status::OK();
}

void RoundFlow::AppendAdminLocked(const std::string& operator_name, const std::string& action,
                                  const nlohmann::json& arguments) {
  MutexLock report_lock(&report_mu_);
  report_->AppendAdmin(operator_name, action, rsm_.round(), arguments);
}

void RoundFlow::KeepNotesLocked() {
  // A round being recorded writes the notes it was given: these are written again after it.
  if (closing_ && closing_->recording) notes_changed_while_recording_ = true;
  try {
    MutexLock report_lock(&report_mu_);
    checkpoints_.UpdateNotes(rsm_.excluded(), rsm_.total_rounds() != config_.rounds
                                                  ? rsm_.total_rounds()
                                                  : 0);
  } catch (const std::exception& e) {
    // The action stands for this run; the next round's checkpoint records it.
    log_->error("cannot record the operator's change in resume.json now: {}", e.what());
  }
}

Status RoundFlow::Pause(const std::string& operator_name, std::string* outcome) {
  MutexLock lock(&mu_);
  if (Status s = CheckRunningLocked("pause"); !s.ok()) return s;
  if (paused_) {
    *outcome = "already paused (round " + std::to_string(rsm_.round()) + " of " +
               std::to_string(rsm_.total_rounds()) + "); fedmed-admin resume lifts it";
    return Status::OK();
  }
  AppendAdminLocked(operator_name, "pause", nlohmann::json::object());
  paused_ = true;
  const bool between = rsm_.phase() == Phase::kWaitingForSites || held_by_pause_;
  *outcome = between ? "paused: the next round (" + std::to_string(rsm_.round() + 1) +
                           ") waits for fedmed-admin resume"
                     : "paused: round " + std::to_string(rsm_.round()) +
                           " runs to its end; round " + std::to_string(rsm_.round() + 1) +
                           " waits for fedmed-admin resume";
  log_->warn("operator CN={}: {}", operator_name, *outcome);
  WriteStatusLocked();
  return Status::OK();
}

Status RoundFlow::Resume(const std::string& operator_name, std::string* outcome) {
  MutexLock lock(&mu_);
  if (Status s = CheckRunningLocked("resume"); !s.ok()) return s;
  if (!paused_) {
    *outcome = "not paused; nothing to resume";
    return Status::OK();
  }
  AppendAdminLocked(operator_name, "resume", nlohmann::json::object());
  paused_ = false;
  if (held_by_pause_) {
    *outcome = "resumed: round " + std::to_string(rsm_.round() + 1) + " starts now";
    // Checked again when it runs: a pause in between holds it once more, and a second resume
    // finds nothing held.
    PostLocked([this]() REQUIRES(mu_) {
      if (held_by_pause_ && !paused_ && !stopping_) StartRoundLocked(/*retry=*/false);
    });
  } else {
    *outcome = "resumed: round " + std::to_string(rsm_.round()) + " was still running";
  }
  log_->warn("operator CN={}: {}", operator_name, *outcome);
  WriteStatusLocked();
  return Status::OK();
}

Status RoundFlow::StopFederation(const std::string& operator_name, std::string* outcome) {
  MutexLock lock(&mu_);
  if (shutting_down_) return Status::FailedPrecondition("the coordinator is already stopping");
  // Rounds completed: the current one too while waiting to start the next.
  const int completed = rsm_.phase() == Phase::kWaitingForSites || held_by_pause_ ||
                                (waiting_for_sites_ && !waiting_retry_)
                            ? rsm_.round()
                            : rsm_.round() - 1;
  AppendAdminLocked(operator_name, "stop", nlohmann::json::object());
  const std::string resume_point =
      completed > 0 ? "resume.json holds round " + std::to_string(completed) +
                          "'s checkpoint; a restart resumes after it"
                    : "no round completed yet; a restart starts from round 1";
  *outcome = "stopping (exit status 0): " + resume_point;
  log_->warn("operator CN={}: {}", operator_name, *outcome);
  ShutdownLocked();  // exit_code_ stays 0 unless the federation failed before
  return Status::OK();
}

Status RoundFlow::Exclude(const std::string& operator_name, const std::string& site,
                          const std::string& reason, std::string* outcome) {
  MutexLock lock(&mu_);
  if (Status s = CheckRunningLocked("exclude a site"); !s.ok()) return s;
  if (std::find(config_.allowed_sites.begin(), config_.allowed_sites.end(), site) ==
      config_.allowed_sites.end()) {
    return Status::NotFound("no site '" + site + "' in this federation ([tls] allowed_sites)");
  }
  if (reason.empty()) {
    return Status::InvalidArgument("excluding " + site + " needs a reason (--reason), for the "
                                   "audit log");
  }
  if (rsm_.IsExcluded(site)) {
    return Status::FailedPrecondition(site + " is already excluded");
  }
  AppendAdminLocked(operator_name, "exclude", {{"site", site}, {"reason", reason}});
  {
    MutexLock report_lock(&report_mu_);
    report_->AppendExcluded(site, rsm_.round(),
                            "by the operator CN=" + operator_name + ": " + reason);
  }
  excluded_by_operator_[site] = "CN=" + operator_name + ": " + reason;
  rsm_.Exclude(site);
  if (secure_) secure_round_.MarkGone(site);
  KeepNotesLocked();
  *outcome = site + " is excluded from every later round" +
             ((rsm_.phase() == Phase::kTraining || rsm_.phase() == Phase::kEvaluating) &&
                      !held_by_pause_ && !waiting_for_sites_
                  ? " (round " + std::to_string(rsm_.round()) + " no longer waits for it)"
                  : std::string()) +
             "; reason: " + reason;
  log_->warn("operator CN={}: {}", operator_name, *outcome);
  PostLocked([this]() REQUIRES(mu_) { CloseSecAggStageLocked(/*timeout=*/false); });
  PostLocked([this]() REQUIRES(mu_) { MaybeEndTrainingLocked(); });
  PostLocked([this]() REQUIRES(mu_) { MaybeFinishRoundLocked(); });
  WriteStatusLocked();
  cv_.SignalAll();
  return Status::OK();
}

Status RoundFlow::Extend(const std::string& operator_name, int rounds, std::string* outcome) {
  MutexLock lock(&mu_);
  if (rounds < 1 || rounds > kMaxExtendRounds) {
    return Status::InvalidArgument("extend by " + std::to_string(rounds) +
                                   " rounds: expected 1.." + std::to_string(kMaxExtendRounds));
  }
  if (Status s = CheckRunningLocked("extend the federation"); !s.ok()) return s;
  AppendAdminLocked(operator_name, "extend", {{"rounds", rounds}});
  const int before = rsm_.total_rounds();
  rsm_.ExtendRounds(rounds);  // not kFinished (checked above), rounds >= 1: does not throw
  KeepNotesLocked();
  *outcome = "extended from " + std::to_string(before) + " to " +
             std::to_string(rsm_.total_rounds()) + " rounds";
  log_->warn("operator CN={}: {}", operator_name, *outcome);
  WriteStatusLocked();
  return Status::OK();
}

}  // namespace fedmed
