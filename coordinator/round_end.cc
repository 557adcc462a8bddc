// RoundFlow, part 3: evaluation and the round's end, on the control thread (each method runs
// under mu_), and the round's records, written on the compute pool under report_mu_ only.
//
// A round that is not the federation's last ends its part on the critical path as soon as its
// aggregate is installed and the sites' evaluations (federated evaluation) are in: CloseRoundLocked
// keeps its record in closing_ and starts the next round, whose sites download the new model
// while the round's held-out evaluation runs on the compute pool and its checkpoint, metrics and
// audit entry are written after it (MaybeRecordClosingLocked). The next round aggregates only once they are
// written, so that metrics rows, checkpoints and audit entries stay in round order and a crash
// at any instruction still leaves resume.json naming the last round recorded whole. The last
// round closes after its held-out evaluation, and the federation finishes (sites are told to)
// only after its records.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "common/model/evaluation.h"
#include "common/model/model_io.h"
#include "coordinator/round_flow.h"

namespace fedmed {

void RoundFlow::StartEvaluationLocked() {
  const bool ask_sites = config_.federated_evaluation && !model_.custom;
  rsm_.StartEvaluation(ask_sites);
  eval_start_ = loop_->Now();
  central_eval_done_ = !model_.heldout.has_value();
  if (model_.heldout) {
    const int round = rsm_.round(), attempt = rsm_.attempt();
    loop_->PostWork([this, round, attempt, state = global_state_] {
      ClassificationMetrics m;
      std::string error;
      try {
        m = EvaluateModel(model_.spec, state, *model_.heldout, config_.eval_batch_size);
      } catch (const std::exception& e) {  // e.g. an output that is not finite
        error = e.what();
      }
      loop_->Post([this, round, attempt, m = std::move(m), error = std::move(error)] {
        MutexLock lock(&mu_);
        HeldOutEvaluatedLocked(round, attempt, std::move(m), error);
      });
    });
  }
  ArmDeadlineLocked();
  WriteStatusLocked();
  cv_.SignalAll();
  MaybeFinishRoundLocked();
}

void RoundFlow::HeldOutEvaluatedLocked(int round, int attempt, ClassificationMetrics metrics,
                                       const std::string& error) {
  if (closing_ && closing_->record.round == round && closing_->record.attempt == attempt) {
    // The next round is already running on this model.
    if (!error.empty()) {
      closing_->repeat_why = "the new global model cannot be evaluated: " + error;
      MaybeRepeatClosingLocked();
      return;
    }
    closing_->record.global = std::move(metrics);
    closing_->record.evaluation_seconds = ToSeconds(loop_->Now() - closing_->eval_start);
    closing_->evaluated = true;
    MaybeRecordClosingLocked();
    return;
  }
  if (rsm_.phase() != Phase::kEvaluating || rsm_.round() != round || rsm_.attempt() != attempt) {
    return;  // a round that was stopped or tried again meanwhile
  }
  if (!error.empty()) {
    DiscardAggregateLocked("the new global model cannot be evaluated: " + error);
    return;
  }
  record_.global = std::move(metrics);
  central_eval_done_ = true;
  MaybeFinishRoundLocked();
}

void RoundFlow::MaybeFinishRoundLocked() {
  if (rsm_.phase() != Phase::kEvaluating) return;
  // Closed already, the next round held back (a pause, or too few sites): the phase stays
  // kEvaluating until it starts, and the round must not be closed twice.
  if (held_by_pause_ || waiting_for_sites_) return;
  if (closing_ && closing_->record.round == rsm_.round()) return;
  if (!eval_closed_ && !rsm_.EvaluationComplete()) return;
  // The last round waits for its held-out evaluation: no round follows to overlap it.
  const bool last = rsm_.round() >= rsm_.total_rounds();
  if (last && !central_eval_done_) return;
  // The round before is still being recorded (possible only after a secure round aggregated
  // beside it): RecordedLocked calls this again.
  if (closing_) return;
  eval_closed_ = true;
  deadline_->Cancel();
  CloseRoundLocked();
}

void RoundFlow::CloseRoundLocked() {
  const Clock::time_point now = loop_->Now();
  RoundRecord& r = record_;
  r.training_seconds = ToSeconds(training_end_ - round_start_);
  double transfer = 0;
  r.site_transfer_seconds.clear();
  r.slowest_site_train_seconds = 0;
  for (const auto& [site, seconds] : transfer_seconds_) {
    if (!rsm_.contributed().count(site)) continue;
    transfer += seconds;
    r.site_transfer_seconds[site] = seconds;
  }
  for (const auto& [site, seconds] : site_train_seconds_) {
    if (rsm_.contributed().count(site)) {
      r.slowest_site_train_seconds = std::max(r.slowest_site_train_seconds, seconds);
    }
  }
  const auto contributors = static_cast<double>(rsm_.contributed().size());
  r.transfer_seconds = transfer / contributors;
  r.training_wait_seconds = std::max(0.0, r.training_seconds - r.transfer_seconds);
  r.evaluation_seconds = ToSeconds(now - eval_start_);
  r.contributors.assign(rsm_.contributed().begin(), rsm_.contributed().end());
  r.num_samples = strategy_->total_samples();
  r.mean_train_loss = loss_weighted_sum_ / static_cast<double>(r.num_samples);
  if (secure_) {  // only the survivors' sum counts; no site reports its own loss
    r.contributors = secagg_contributors_;
    r.mean_train_loss = std::nan("");
  }
  r.mean_site_train_seconds = site_train_seconds_sum_ / contributors;
  r.model_sha256 = global_->sha256;
  r.privacy = site_privacy_;
  if (!r.sites.empty()) {
    std::vector<ClassificationMetrics> parts;
    for (const auto& [site, m] : r.sites) parts.push_back(m);
    r.federated = CombineMetrics(parts);
  }
  // The critical path up to now (the last round's records are added in RecordRound).
  RoundRecord::CriticalPath& path = r.critical_path;
  path.seconds = ToSeconds(now - round_start_);
  path.site = last_update_site_;
  if (site_train_seconds_.count(path.site)) path.training = site_train_seconds_.at(path.site);
  if (transfer_seconds_.count(path.site)) path.transfers = transfer_seconds_.at(path.site);
  if (site_compute_wait_seconds_.count(path.site)) {
    path.queued = site_compute_wait_seconds_.at(path.site);
  }
  Clock::time_point answers_in = last_update_at_;
  if (deadline_passed_at_ && *deadline_passed_at_ > answers_in) {
    path.waiting = ToSeconds(*deadline_passed_at_ - answers_in);
    answers_in = *deadline_passed_at_;
  }
  path.coordinator = ToSeconds(eval_start_ - answers_in);
  path.evaluation = r.evaluation_seconds;
  path.overhead = path.seconds - path.training - path.queued - path.transfers - path.waiting -
                  path.coordinator - path.evaluation;
  r.evaluation_overlapped = !central_eval_done_;

  ClosingRound closing;
  closing.selected = rsm_.selected();
  closing.log_heads = log_heads_;
  closing.model = global_state_;
  closing.strategy_state = strategy_->SaveState();
  if (before_aggregation_) closing.before = std::move(*before_aggregation_);
  before_aggregation_.reset();
  closing.round_start = round_start_;
  closing.eval_start = eval_start_;
  closing.last = rsm_.round() >= rsm_.total_rounds();
  closing.evaluated = central_eval_done_;
  closing.record = std::move(r);
  const bool last = closing.last;
  closing_ = std::move(closing);
  // The last round ends (kFinished: sites are told to finish) only once it is recorded.
  if (!last) {
    rsm_.FinishRound();
    StartRoundLocked(/*retry=*/false);
  }
  MaybeRecordClosingLocked();
}

void RoundFlow::MaybeRecordClosingLocked() {
  if (!closing_ || !closing_->evaluated || closing_->recording || !closing_->repeat_why.empty()) {
    return;
  }
  closing_->recording = true;
  ClosingRound& c = *closing_;
  const RoundEvent event = RoundReport::RoundEventOf(c.record, c.selected, c.log_heads);
  FederationNotes notes;
  notes.excluded = rsm_.excluded();
  if (rsm_.total_rounds() != config_.rounds) notes.total_rounds = rsm_.total_rounds();
  notes.audit_round = ToJson(event).dump();
  const int total_rounds = rsm_.total_rounds();
  // The files are written outside mu_: the next round's sites poll, download and upload
  // meanwhile. The record is a copy; the model and strategy state move to the work (nothing
  // reads them once recording started); the checkpoint store is const.
  loop_->PostWork([this, record = c.record, event, notes = std::move(notes),
                   model = std::move(c.model), state = std::move(c.strategy_state),
                   start = c.round_start, last = c.last, total_rounds]() mutable {
    std::string error;
    {
      MutexLock report_lock(&report_mu_);
      if (report_closed_) return;  // stopped meanwhile: the round is repeated after a restart
      // The checkpoint's files, the metrics, then resume.json, then the audit entry: a crash
      // before resume.json repeats the round after the restart, which drops its rows
      // (KeepMetricsUpTo); a crash after it leaves the audit entry in resume.json, appended
      // after the restart.
      try {
        const Clock::time_point checkpoint_start = loop_->Now();
        const CheckpointStore::Pending pending = checkpoints_.Stage(
            record.round, model, record.model_sha256, strategy_->name(), state, notes);
        const Clock::time_point now = loop_->Now();
        record.checkpoint_seconds = ToSeconds(now - checkpoint_start);
        record.round_seconds = ToSeconds(now - start);
        if (last) {  // nothing overlaps the last round's records
          record.critical_path.seconds = record.round_seconds;
          record.critical_path.coordinator += record.checkpoint_seconds;
        }
        record.unix_time = std::chrono::duration<double>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
        report_->AppendMetrics(record);
        checkpoints_.Commit(pending);
        report_->AppendRound(record, total_rounds, event);
      } catch (const std::exception& e) {
        error = e.what();
      }
    }
    loop_->Post([this, record = std::move(record), error = std::move(error)]() mutable {
      MutexLock lock(&mu_);
      RecordedLocked(std::move(record), error);
    });
  });
}

void RoundFlow::RecordedLocked(RoundRecord record, const std::string& error) {
  if (!closing_ || closing_->record.round != record.round) return;
  const bool last = closing_->last;
  closing_.reset();
  if (!error.empty()) {
    FailLocked("round " + std::to_string(record.round) + ": cannot record the round: " + error +
               " (the federation resumes after the last round recorded once the problem is "
               "fixed)");
    return;
  }
  last_record_ = std::move(record);
  if (notes_changed_while_recording_) {
    notes_changed_while_recording_ = false;
    KeepNotesLocked();
  }
  if (last) {
    rsm_.FinishRound();
    if (rsm_.phase() == Phase::kFinished) {
      FinishFederationLocked();
      return;
    }
    StartRoundLocked(/*retry=*/false);  // the operator extended the federation meanwhile
  }
  WriteStatusLocked();
  // The current round may have been waiting for these records to aggregate or close.
  MaybeEndTrainingLocked();
  MaybeFinishRoundLocked();
}

void RoundFlow::MaybeRepeatClosingLocked() {
  if (!closing_ || closing_->repeat_why.empty()) return;
  // No update of the current round may still be on its way into the strategy, which is about to
  // get its state of before the closing round back (MaybeEndTrainingLocked calls this again).
  if (pending_adds_ > 0 || aggregating_) return;
  ClosingRound c = std::move(*closing_);
  closing_.reset();
  log_->error("round {} attempt {}: {}; the aggregate is not published, round {} (started on it) "
              "is abandoned and round {} is tried again",
              c.record.round, c.record.attempt, c.repeat_why, rsm_.round(), c.record.round);
  InstallGlobalLocked(std::move(c.before.global), c.before.version);
  try {
    strategy_->LoadState(c.before.strategy_state);
  } catch (const std::exception& e) {
    FailLocked("the " + strategy_->name() + " strategy cannot restore its state: " + e.what());
    return;
  }
  deadline_->Cancel();
  secagg_timer_->Cancel();
  rsm_.RepeatRound(c.record.round, c.record.attempt);
  StartRoundLocked(/*retry=*/true);
}

void RoundFlow::FinishFederationLocked() {
  log_->info("federation finished after {} rounds; telling sites to stop", rsm_.total_rounds());
  ExportFinalModelLocked();
  WriteStatusLocked();
  cv_.SignalAll();
  // Sites learn it at their next poll; stop at the latest after a grace period.
  deadline_->Arm(loop_->Now() + std::chrono::seconds(15), [this] {
    MutexLock lock(&mu_);
    ShutdownLocked();
  });
  if (told_finish_.size() >= rsm_.sites().size()) ShutdownLocked();
}

// The final global model for PyTorch users (docs/MODELS.md): global_model.pt, the state dict the
// checkpoint store wrote, and global.torchscript.pt (ExportTorchScript), which torch.jit.load
// runs without any model code. A failed export is logged and makes the exit status 2.
void RoundFlow::ExportFinalModelLocked() {
  if (model_.custom) return;  // no network to export
  const std::filesystem::path dir(config_.output_dir);
  const std::string script = (dir / "global.torchscript.pt").string();
  try {
    ExportTorchScript(model_.spec, global_state_, script);
  } catch (const std::exception& e) {
    log_->error("cannot export the global model as TorchScript: {}", e.what());
    exit_code_ = 2;
    return;
  }
  log_->info("global model: {} (state dict, torch.load) and {} (TorchScript, torch.jit.load)",
             (dir / "global_model.pt").string(), script);
}

// A fatal error of the round (logged): the exit status is 2.
void RoundFlow::FailLocked(const std::string& why) {
  log_->error("{}; stopping the federation", why);
  exit_code_ = 2;
  ShutdownLocked();
}

void RoundFlow::ShutdownLocked() {
  if (shutting_down_) return;
  shutting_down_ = true;
  {
    MutexLock report_lock(&report_mu_);
    report_->AppendStop(rsm_.phase() == Phase::kFinished, last_record_ ? last_record_->round : 0);
    report_closed_ = true;
  }
  stopping_ = true;
  cv_.SignalAll();
  deadline_->Cancel();
  registration_timer_->Cancel();
  retry_timer_->Cancel();
  secagg_timer_->Cancel();
  WriteStatusLocked();
  loop_->Stop();
}

}  // namespace fedmed
