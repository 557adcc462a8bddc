// The round flow: the coordinator's domain core, where rounds start and end. It implements the
// SiteHandler interface (site_handler.h) with no gRPC and no clock of its own: the transport
// (transport/service.h) or a test calls it, and it runs its decisions, timers and compute work on an
// EventLoop (event_loop.h).
//
// Where things happen, for a reader of the headers:
//   a site is admitted          Register: RegistrationPolicy::Check (registration.h), then the
//                               round state machine opens a session (round/round_state_machine.h)
//   a round starts              StartRoundLocked (round_stages.cc): sites selected, the strategy's
//                               ConfigureFit / BeginRound (strategy/strategy.h), the deadline armed,
//                               with secure aggregation a SecureRound attempt (secure_round.h)
//   an update is accepted       CheckUpdate (header, before the data) and AcceptUpdate:
//                               update_acceptance.h, then the state machine; refused otherwise
//   training ends               every selected site answered or the deadline passed: quorum ->
//                               aggregation on the compute pool; no quorum -> another attempt
//   a round ends                CloseRoundLocked (round_end.cc): once aggregated and the sites'
//                               evaluations are in, the next round starts at once; the round's
//                               held-out evaluation and then its records (the checkpoint,
//                               checkpoint_store.h; metrics and audit entry, round_report.h)
//                               finish beside it, off the control thread, and the next round
//                               aggregates only after them (RecordedLocked). The last round's
//                               evaluation and records come before the federation finishes.
//   a resume happens            the constructor: CheckpointStore::Load, then the strategy state
//   a cut transfer is resumed   round_resume.cc: a site whose connection ends during its
//                               download or upload keeps its place for [transport]
//                               resume_seconds (SiteGone)
//   an operator acts            Pause / Resume / StopFederation / Exclude / Extend
//                               (admin_handler.h; round_admin.cc); a pause holds the next round
//                               back in StartRoundLocked
//
// Thread-safety: every method may be called from any thread; the state is guarded by mu_ (each
// member says so: clang's analysis checks it, scripts/thread_safety.sh), and methods named
// ...Locked require it held. The round report's files are written under report_mu_ (taken after
// mu_, or alone by the compute pool's recording work), so that a round's records never hold up
// the next round's handlers.
// Handlers never block on compute: they record, then post what follows to the control thread.
#ifndef FEDMED_COORDINATOR_ROUND_FLOW_H_
#define FEDMED_COORDINATOR_ROUND_FLOW_H_

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/audit/privacy_log.h"
#include "common/config/coordinator_config.h"
#include "common/util/mutex.h"
#include "coordinator/admin_handler.h"
#include "coordinator/checkpoint_store.h"
#include "coordinator/event_loop.h"
#include "coordinator/federation_model.h"
#include "coordinator/metrics_log.h"
#include "coordinator/registration.h"
#include "coordinator/round/round_state_machine.h"
#include "coordinator/round_report.h"
#include "coordinator/secure_round.h"
#include "coordinator/site_handler.h"
#include "coordinator/status/flow_snapshot.h"
#include "coordinator/strategy/strategy.h"
#include "coordinator/update_acceptance.h"

namespace spdlog {
class logger;
}

namespace fedmed {

class RoundFlow final : public SiteHandler, public AdminHandler {
 public:
  // Builds the strategy of [strategy], opens the round report (metrics, audit log) in
  // output_dir and, when output_dir holds a resume.json, resumes after its round: the global
  // model and the strategy's server state are restored. `ca_pem`: the federation CA (secure
  // aggregation checks the sites' audit certificates against it). `loop` must outlive this.
  // Throws ConfigError for an invalid [strategy], one that secure aggregation cannot run, or one
  // other than the strategy that wrote resume.json; Error / FormatError for a resume point or
  // strategy state that does not load or fit the model.
  RoundFlow(CoordinatorConfig config, FederationModel model, std::string ca_pem, EventLoop* loop,
            std::shared_ptr<spdlog::logger> log);
  ~RoundFlow() override;

  RoundFlow(const RoundFlow&) = delete;
  RoundFlow& operator=(const RoundFlow&) = delete;

  // Starts waiting for sites: arms [federation] registration_timeout_seconds, or shuts down at
  // once when every round was already done. `port`: the server's, for status.json.
  void Begin(int port);
  // Stops the federation (a signal, or Coordinator::Stop): exit status 1 unless it finished.
  void Stop();
  // 0 after the last round, 1 when stopped early, 2 after a fatal error (logged).
  int exit_code() const;
  // The current global model's encoding.
  std::string GlobalModelBytes() const;
  Phase phase() const;
  int round() const;
  // A consistent copy of the federation's state for the status server (status/flow_snapshot.h);
  // defined in round_flow_snapshot.cc. Never throws.
  FlowSnapshot Snapshot() const;

  // ---- SiteHandler ----
  Status Register(const std::string& site, const RegistrationInfo& request,
                  Registration* reply) override;
  Status Poll(const std::string& site, const std::string& session_id, int wait_ms,
              SiteTask* task) override;
  Status GetModel(const std::string& site, const std::string& session_id, int version,
                  std::shared_ptr<const EncodedModel>* model) override;
  Status CheckUpdate(const std::string& site, const UpdateHeader& header) override;
  Status AcceptUpdate(const std::string& site, const UpdateHeader& header, std::string bytes,
                      double transfer_seconds) override;
  Status AcceptEvaluation(const std::string& site, const EvaluationReport& report) override;
  Status DeclineTask(const std::string& site, const DeclineRequest& request) override;
  Status SecAggSend(const std::string& site, const SecAggMessage& message) override;
  Status SecAggReceive(const std::string& site, const SecAggPoll& poll,
                       SecAggStage* stage) override;
  void RecordDownload(const std::string& site, double seconds) override;
  void UploadFailed(const std::string& site, const Status& why) override;
  Status Attend(const std::string& site, const std::string& session_id) override;
  void SiteGone(const std::string& site, const std::string& session_id) override;
  // Defined in round_flow_snapshot.cc (it reads, changes nothing).
  Status Hello(const std::string& site, const std::string& software_version,
               HelloAnswer* answer) override;

  // ---- AdminHandler (round_admin.cc): fedmed-admin's actions ----
  Status Pause(const std::string& operator_name, std::string* outcome) override;
  Status Resume(const std::string& operator_name, std::string* outcome) override;
  Status StopFederation(const std::string& operator_name, std::string* outcome) override;
  Status Exclude(const std::string& operator_name, const std::string& site,
                 const std::string& reason, std::string* outcome) override;
  Status Extend(const std::string& operator_name, int rounds, std::string* outcome) override;

 private:
  using Clock = EventLoop::Clock;

  // round_flow.cc: requests
  // Runs `step` on the control thread, later, under mu_.
  void PostLocked(std::function<void()> step) REQUIRES(mu_);
  void ResumeLocked() REQUIRES(mu_, report_mu_);
  void InstallGlobalLocked(ModelState state, int version) REQUIRES(mu_);
  SiteAction ActionForLocked(const std::string& site) const REQUIRES(mu_);
  void FillTaskLocked(const std::string& site, SiteAction action, SiteTask* task) REQUIRES(mu_);
  Status CheckSessionLocked(const std::string& site, const std::string& session) const
      REQUIRES(mu_);
  UpdateExpectation ExpectationLocked(const std::string& site) const REQUIRES(mu_);
  // A refused update of `site` (INVALID_ARGUMENT: malformed, not finite, above the norm bound,
  // a bad header): after [federation] max_invalid_updates in a row, the site is excluded.
  void NoteInvalidUpdateLocked(const std::string& site, const Status& why) REQUIRES(mu_);
  void RecordContributionLocked(const std::string& site, const UpdateHeader& header,
                                double transfer_seconds) REQUIRES(mu_);
  void NotePrivacyLocked(const std::string& site, const PrivacySpend& p, bool declined)
      REQUIRES(mu_);
  // The phase as status.json and the status page name it: PhaseName; "paused" once a pause
  // holds the next round back and the round before is recorded; "stopped" when the coordinator
  // is shutting down before the federation finished.
  std::string PhaseLabelLocked() const REQUIRES(mu_);
  void WriteStatusLocked() REQUIRES(mu_);

  // round_resume.cc: a site whose connection ended during its download of the global model or
  // its plain upload in the round in training keeps its place (and session) for [transport]
  // resume_seconds, so that it can reconnect and resume the transfer (the service keeps the
  // bytes of an upload, partial_uploads.h; the site those of a download); then it is gone
  // like any other site. True when the place is kept.
  bool KeepPlaceForResumeLocked(const std::string& site, const std::string& session_id)
      REQUIRES(mu_);
  // `site` opened its presence stream again: a kept place no longer expires.
  void SiteBackLocked(const std::string& site) REQUIRES(mu_);

  // round_stages.cc: the round's stages, on the control thread
  void MaybeStartFirstRound();
  void StartRoundLocked(bool retry) REQUIRES(mu_);
  void ArmDeadlineLocked() REQUIRES(mu_);
  double SecondsLeftLocked() const REQUIRES(mu_);
  void MaybeEndTrainingLocked() REQUIRES(mu_);
  void RetryOrFailLocked() REQUIRES(mu_);
  void FinishAggregationLocked(int round, ModelState next, const std::string& error)
      REQUIRES(mu_);
  // Discards the attempt's aggregate (not finite, or its evaluation failed): the global model and
  // the strategy's state go back to what they were before aggregation, and the round is tried
  // again.
  void DiscardAggregateLocked(const std::string& why) REQUIRES(mu_);
  void StartSecureAttemptLocked() REQUIRES(mu_);
  void ArmSecAggTimerLocked(std::function<void()> on_timeout) REQUIRES(mu_);
  void CloseSecAggStageLocked(bool timeout) REQUIRES(mu_);
  void MaybeEndSecureTrainingLocked() REQUIRES(mu_);
  void StartUnmaskLocked() REQUIRES(mu_);
  void SecAggFailLocked(const std::string& why) REQUIRES(mu_);

  // round_end.cc: evaluation and the round's end
  void StartEvaluationLocked() REQUIRES(mu_);
  // The held-out evaluation of `round` / `attempt` is done (`error` set when it failed).
  void HeldOutEvaluatedLocked(int round, int attempt, ClassificationMetrics metrics,
                              const std::string& error) REQUIRES(mu_);
  void MaybeFinishRoundLocked() REQUIRES(mu_);
  // Ends the round's part on the critical path: its record is taken into closing_ and the next
  // round starts (unless it was the last: the federation finishes in RecordedLocked).
  void CloseRoundLocked() REQUIRES(mu_);
  // closing_ evaluated: its records are written by work posted to the compute pool, which then
  // calls RecordedLocked on the control thread.
  void MaybeRecordClosingLocked() REQUIRES(mu_);
  void RecordedLocked(RoundRecord record, const std::string& error) REQUIRES(mu_);
  // closing_'s held-out evaluation failed after the next round started on its model: once no
  // update of the current round is still being added, the current round is abandoned, the
  // global model goes back to before closing_'s aggregation and closing_'s round is tried again.
  void MaybeRepeatClosingLocked() REQUIRES(mu_);
  void FinishFederationLocked() REQUIRES(mu_);
  void ExportFinalModelLocked() REQUIRES(mu_);
  void FailLocked(const std::string& why) REQUIRES(mu_);
  void ShutdownLocked() REQUIRES(mu_);

  // The global model and strategy state before the attempt's aggregation (for
  // DiscardAggregateLocked); set while aggregating and evaluating.
  struct BeforeAggregation {
    ModelState global;
    int version = 0;
    std::string strategy_state;
  };

  const CoordinatorConfig config_;
  const FederationModel model_;
  const std::string preprocessing_;  // config_.preprocessing.Canonical()
  EventLoop* const loop_;
  std::shared_ptr<spdlog::logger> log_;
  const RegistrationPolicy registration_;
  const CheckpointStore checkpoints_;
  const bool secure_;
  std::unique_ptr<EventLoop::Timer> deadline_, registration_timer_, retry_timer_, secagg_timer_;

  // The round report's files (metrics, audit log) and resume.json are written under report_mu_
  // (set once in the constructor; the pointee is guarded). Taken after mu_, never before it.
  Mutex report_mu_;
  std::unique_ptr<RoundReport> report_ PT_GUARDED_BY(report_mu_);
  // Set by ShutdownLocked once the audit log's stop entry is written: a round's records still
  // queued then are not written (the round is repeated after a restart).
  bool report_closed_ GUARDED_BY(report_mu_) = false;

  mutable Mutex mu_;
  CondVar cv_{&mu_};  // signalled when a poll's answer may have changed
  // Everything below is guarded by mu_.
  RoundStateMachine rsm_ GUARDED_BY(mu_);
  ModelState global_state_ GUARDED_BY(mu_);
  std::shared_ptr<const EncodedModel> global_ GUARDED_BY(mu_);
  double global_norm_ GUARDED_BY(mu_) = 0;  // L2 norm of global_state_
  std::optional<BeforeAggregation> before_aggregation_ GUARDED_BY(mu_);
  std::map<std::string, int> invalid_streak_ GUARDED_BY(mu_);  // refused updates in a row
  // AddUpdate runs on the compute pool (thread-safe); AggregateFit there while aggregating_ (no
  // AddUpdate pending then); ConfigureFit, BeginRound, SaveState on the control thread.
  // Set once in the constructor (so not guarded); the strategy guards its own AddUpdate.
  std::unique_ptr<Strategy> strategy_;
  FitInstructions fit_ GUARDED_BY(mu_);  // this round's ConfigureFit: proximal_mu for the sites
  SecureRound secure_round_ GUARDED_BY(mu_);
  std::vector<std::string> secagg_contributors_ GUARDED_BY(mu_);
  RoundRecord record_ GUARDED_BY(mu_);
  std::optional<RoundRecord> last_record_ GUARDED_BY(mu_);
  // A round closed while its held-out evaluation or records are not done (round_end.cc).
  struct ClosingRound {
    RoundRecord record;
    std::vector<std::string> selected;
    std::map<std::string, LogAnchor> log_heads;
    ModelState model;  // its global model (digest: record.model_sha256) and strategy state,
    std::string strategy_state;  // for its checkpoint; moved out when recording starts
    BeforeAggregation before;  // to try the round again when its evaluation fails
    Clock::time_point round_start;
    Clock::time_point eval_start;
    bool last = false;       // the federation's last round: nothing overlaps it
    bool evaluated = false;  // its held-out evaluation is in record.global (or there is none)
    bool recording = false;  // RecordRound is writing its records
    std::string repeat_why;  // set when its held-out evaluation failed (MaybeRepeatClosingLocked)
  };
  std::optional<ClosingRound> closing_ GUARDED_BY(mu_);
  // The current round's per-site local training seconds (reported) and when the last update
  // was accepted.
  std::map<std::string, double> site_train_seconds_ GUARDED_BY(mu_);
  std::map<std::string, double> site_compute_wait_seconds_ GUARDED_BY(mu_);
  std::string last_update_site_ GUARDED_BY(mu_);
  Clock::time_point last_update_at_ GUARDED_BY(mu_);
  std::optional<Clock::time_point> deadline_passed_at_ GUARDED_BY(mu_);  // training's deadline
  // The latest privacy report of each site.
  std::map<std::string, SitePrivacyReport> site_privacy_ GUARDED_BY(mu_);
  // Site -> its privacy-log entry for its last update.
  std::map<std::string, LogAnchor> log_heads_ GUARDED_BY(mu_);
  std::map<std::string, double> transfer_seconds_ GUARDED_BY(mu_);
  double loss_weighted_sum_ GUARDED_BY(mu_) = 0;
  double site_train_seconds_sum_ GUARDED_BY(mu_) = 0;
  int pending_adds_ GUARDED_BY(mu_) = 0;
  bool aggregating_ GUARDED_BY(mu_) = false;
  bool training_closed_ GUARDED_BY(mu_) = false;
  bool eval_closed_ GUARDED_BY(mu_) = false;
  bool central_eval_done_ GUARDED_BY(mu_) = false;
  bool stopping_ GUARDED_BY(mu_) = false;
  bool shutting_down_ GUARDED_BY(mu_) = false;
  int exit_code_ GUARDED_BY(mu_) = 0;
  int port_ GUARDED_BY(mu_) = 0;
  std::set<std::string> told_finish_ GUARDED_BY(mu_);
  // After a restart that finds every round done: the sites to tell before stopping (all
  // allowed sites), within kResumedFinishGraceSeconds.
  size_t told_finish_needed_ GUARDED_BY(mu_) = 0;
  static constexpr int kResumedFinishGraceSeconds = 60;
  Clock::time_point round_start_ GUARDED_BY(mu_);
  Clock::time_point training_end_ GUARDED_BY(mu_);
  Clock::time_point eval_start_ GUARDED_BY(mu_);
  Clock::time_point phase_deadline_ GUARDED_BY(mu_);
  // Consecutive attempts in which every selected site declined; kMaxAllDeclinedAttempts stops.
  static constexpr int kMaxAllDeclinedAttempts = 5;
  int all_declined_attempts_ GUARDED_BY(mu_) = 0;
  // Sites with a transfer of the round in training in flight -> the round: a download of the
  // global model started and not finished, or an update header accepted and its data not all
  // here (round_resume.cc).
  std::map<std::string, int> in_transfer_ GUARDED_BY(mu_);
  // Sites gone during their upload whose place is kept (round_resume.cc): when it expires.
  std::map<std::string, std::unique_ptr<EventLoop::Timer>> resume_timers_ GUARDED_BY(mu_);
  // A round (or another attempt of it) waits for registrations: too few sites for a quorum.
  bool waiting_for_sites_ GUARDED_BY(mu_) = false;
  bool waiting_retry_ GUARDED_BY(mu_) = false;  // whether it is another attempt of the round
  // fedmed-admin pause (round_admin.cc): no new round starts while paused_; held_by_pause_ once
  // StartRoundLocked held one back (resume starts it).
  bool paused_ GUARDED_BY(mu_) = false;
  bool held_by_pause_ GUARDED_BY(mu_) = false;
  // Sites excluded by an operator -> "CN=<operator>: <reason>" (their registrations say so).
  std::map<std::string, std::string> excluded_by_operator_ GUARDED_BY(mu_);
  // For an operator's action that applies only while the federation runs: FAILED_PRECONDITION
  // naming `action` when it finished or is stopping; OK otherwise.
  Status CheckRunningLocked(const char* action) const REQUIRES(mu_);
  // Records the excluded sites and the (extended) rounds in resume.json now
  // (CheckpointStore::UpdateNotes); a failure is logged (the next checkpoint records them).
  void KeepNotesLocked() REQUIRES(mu_);
  // An operator's action in the audit log.
  void AppendAdminLocked(const std::string& operator_name, const std::string& action,
                         const nlohmann::json& arguments) REQUIRES(mu_);
  // KeepNotesLocked ran while a round's records (with the notes of before) were being written.
  bool notes_changed_while_recording_ GUARDED_BY(mu_) = false;
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_ROUND_FLOW_H_
