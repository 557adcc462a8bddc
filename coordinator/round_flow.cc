// RoundFlow, part 1: construction, resume, and the requests of the sites (SiteHandler).
// The round's stages are in round_stages.cc.
#include "coordinator/round_flow.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "common/crypto/sha256.h"
#include "common/util/error.h"

namespace fedmed {

namespace {

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

std::string RandomSessionId() {
  std::random_device rd;
  std::string id;
  static const char* kHex = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) id += kHex[rd() % 16];
  return id;
}

RegistrationPolicy::Requirements RequirementsOf(const CoordinatorConfig& config,
                                                const FederationModel& model) {
  RegistrationPolicy::Requirements r;
  r.preprocessing = config.preprocessing;
  r.spec = model.spec;
  r.architecture = model.architecture;
  r.check_data_shape = !model.custom;
  r.max_site_samples = config.max_site_samples;
  r.secure_aggregation = config.secure_aggregation.enabled;
  return r;
}

}  // namespace

RoundFlow::RoundFlow(CoordinatorConfig config, FederationModel model, std::string ca_pem,
                     EventLoop* loop, std::shared_ptr<spdlog::logger> log)
    : config_(std::move(config)),
      model_(std::move(model)),
      preprocessing_(config_.preprocessing.Canonical()),
      loop_(loop),
      log_(std::move(log)),
      registration_(RequirementsOf(config_, model_)),
      checkpoints_(config_.output_dir),
      secure_(config_.secure_aggregation.enabled),
      deadline_(loop_->MakeTimer()),
      registration_timer_(loop_->MakeTimer()),
      retry_timer_(loop_->MakeTimer()),
      secagg_timer_(loop_->MakeTimer()),
      rsm_(config_.rounds, config_.min_sites, config_.sites_per_round, config_.seed,
           config_.min_available_sites),
      secure_round_(config_.secure_aggregation, std::move(ca_pem)) {
  strategy_ = MakeStrategy(config_.strategy);
  log_->info("strategy: {}{}", DescribeStrategy(config_.strategy),
             strategy_->NeedsIndividualUpdates() ? "; needs each site's update on its own" : "");
  if (secure_) {
    if (strategy_->NeedsIndividualUpdates()) {
      throw ConfigError(config_.config_path + ": [strategy] " + strategy_->name() +
                        " needs each site's update, which secure aggregation hides");
    }
    const SecureAggregationConfig& a = config_.secure_aggregation;
    log_->info("secure aggregation (Bonawitz et al. 2017): threshold {}, clip range {}, {}-bit "
               "codes; the coordinator sees only the sum of each round's updates",
               a.threshold > 0 ? std::to_string(a.threshold) : std::string("a majority"),
               a.clip_range, a.quantization_bits);
  }
  report_ = std::make_unique<RoundReport>(
      config_.output_dir, std::filesystem::path(config_.tls.key).parent_path().string(),
      config_.federation, config_.rounds, config_.strategy.name, log_);
  MutexLock lock(&mu_);
  loop_->SetErrorHandler([this](const std::string& what) {
    MutexLock l(&mu_);
    FailLocked("internal error: " + what);
  });
  {
    MutexLock report_lock(&report_mu_);
    ResumeLocked();
  }
  if (!global_) InstallGlobalLocked(model_.initial_state, 0);
}

RoundFlow::~RoundFlow() = default;

void RoundFlow::ResumeLocked() {
  std::optional<ResumePoint> point = checkpoints_.Load(model_.initial_state);
  if (!point) return;
  const int round = point->completed_round;
  report_->KeepMetricsUpTo(round);
  report_->EnsureRoundAudited(round, point->notes.audit_round);
  if (point->notes.total_rounds > rsm_.total_rounds()) {
    log_->info("the federation was extended to {} rounds (resume.json)", point->notes.total_rounds);
    rsm_.ExtendRounds(point->notes.total_rounds - rsm_.total_rounds());
  }
  rsm_.ResumeAfter(round);
  for (const std::string& site : point->notes.excluded) {
    rsm_.Exclude(site);
    log_->warn("{} stays excluded from the federation (resume.json)", site);
  }
  InstallGlobalLocked(std::move(point->model), round);
  if (!point->strategy_state) {
    log_->warn("resume.json holds no strategy state; {} starts from its initial state",
               strategy_->name());
  } else {
    if (point->strategy != strategy_->name()) {
      throw ConfigError((config_.config_path.empty() ? "(configuration built in code)"
                                                     : config_.config_path) +
                        ": [strategy] name: \"" + strategy_->name() + "\", but the federation in " +
                        config_.output_dir + " ran \"" + point->strategy + "\" up to round " +
                        std::to_string(round) + " (resume.json); resume with the same strategy, " +
                        "or start afresh in another output_dir");
    }
    try {
      strategy_->LoadState(*point->strategy_state);
      strategy_->BeginRound(global_state_);  // checks the state's layout against the model now
    } catch (const FormatError& e) {
      throw FormatError(point->strategy_state_path + ": " + e.what());
    }
    log_->info("{} server state restored from {} ({} bytes)", strategy_->name(),
               point->strategy_state_path, point->strategy_state->size());
  }
  log_->info("resuming after round {} from {}", round, point->checkpoint);
}

void RoundFlow::InstallGlobalLocked(ModelState state, int version) {
  auto model = std::make_shared<EncodedModel>();
  model->version = version;
  model->bytes = EncodeModelState(state);
  model->sha256 = Sha256Hex(model->bytes);
  global_norm_ = L2Norm(state);
  global_state_ = std::move(state);
  global_ = std::move(model);
}

void RoundFlow::Begin(int port) {
  MutexLock lock(&mu_);
  port_ = port;
  log_->info("federation '{}' listening on {} (port {}), mutual TLS, {} sites allowed, "
             "waiting for {} to register",
             config_.federation, config_.listen_address, port_, config_.allowed_sites.size(),
             rsm_.sites_to_start());
  WriteStatusLocked();
  if (rsm_.phase() == Phase::kFinished) {
    // Sites that were not told before a crash come back and must hear that it is over.
    log_->info("all {} rounds were already completed in {}; telling returning sites so for up "
               "to {} s",
               rsm_.total_rounds(), config_.output_dir, kResumedFinishGraceSeconds);
    told_finish_needed_ = config_.allowed_sites.size();
    deadline_->Arm(loop_->Now() + std::chrono::seconds(kResumedFinishGraceSeconds), [this] {
      MutexLock l(&mu_);
      ShutdownLocked();
    });
    return;
  }
  if (config_.registration_timeout_seconds > 0) {
    registration_timer_->Arm(
        loop_->Now() + SecondsToDuration(config_.registration_timeout_seconds), [this] {
          MutexLock l(&mu_);
          if (rsm_.phase() != Phase::kWaitingForSites) return;
          log_->error("only {} of {} sites registered within {} s ([federation] "
                      "registration_timeout_seconds); giving up",
                      rsm_.sites().size(), rsm_.sites_to_start(),
                      config_.registration_timeout_seconds);
          exit_code_ = 2;
          ShutdownLocked();
        });
  }
}

void RoundFlow::Stop() {
  MutexLock lock(&mu_);
  if (rsm_.phase() != Phase::kFinished && exit_code_ == 0) exit_code_ = 1;
  ShutdownLocked();
}

int RoundFlow::exit_code() const {
  MutexLock lock(&mu_);
  return exit_code_;
}

std::string RoundFlow::GlobalModelBytes() const {
  MutexLock lock(&mu_);
  return global_->bytes;
}

Phase RoundFlow::phase() const {
  MutexLock lock(&mu_);
  return rsm_.phase();
}

int RoundFlow::round() const {
  MutexLock lock(&mu_);
  return rsm_.round();
}

// ---- SiteHandler ----

Status RoundFlow::Register(const std::string& site, const RegistrationInfo& request,
                           Registration* reply) {
  std::string note;
  if (Status s = registration_.Check(site, request, &note); !s.ok()) {
    log_->warn("registration refused: {}", s.message());
    return s;
  }
  if (!note.empty()) log_->info("{}", note);
  MutexLock lock(&mu_);
  if (rsm_.IsExcluded(site)) {
    const auto by_operator = excluded_by_operator_.find(site);
    const Status s = Status::FailedPrecondition(
        by_operator != excluded_by_operator_.end()
            ? site + " was excluded from this federation by its operator: " + by_operator->second
            : site + " was excluded from this federation after [federation] max_invalid_updates "
                     "refused updates in a row (see the coordinator's log)");
    log_->warn("registration refused: {}", s.message());
    return s;
  }
  RegisteredSite info;
  info.name = site;
  info.session_id = RandomSessionId();
  info.num_train_samples = request.num_train_samples;
  info.num_test_samples = request.num_test_samples;
  const bool again = rsm_.sites().count(site) != 0;
  rsm_.Register(info);
  log_->info("{} {} ({} training, {} test samples); {} of {} sites needed have registered", site,
             again ? "registered again" : "registered", info.num_train_samples,
             info.num_test_samples, rsm_.sites().size(), rsm_.sites_to_start());
  reply->session_id = info.session_id;
  reply->federation = config_.federation;
  reply->total_rounds = rsm_.total_rounds();
  if (rsm_.ReadyToStart()) loop_->Post([this] { MaybeStartFirstRound(); });
  if (waiting_for_sites_) {
    PostLocked([this]() REQUIRES(mu_) {
      if (waiting_for_sites_ && !stopping_) StartRoundLocked(waiting_retry_);
    });
  }
  WriteStatusLocked();
  cv_.SignalAll();
  return Status::OK();
}

Status RoundFlow::Poll(const std::string& site, const std::string& session_id, int wait_ms,
                       SiteTask* task) {
  MutexLock lock(&mu_);
  if (Status s = CheckSessionLocked(site, session_id); !s.ok()) return s;
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(std::clamp(wait_ms, 0, 30000));
  SiteAction action = ActionForLocked(site);
  while (action == SiteAction::kWait && !stopping_) {
    if (!cv_.WaitUntil(until)) break;
    action = ActionForLocked(site);
  }
  if (stopping_) return Status::Unavailable("the coordinator is shutting down");
  FillTaskLocked(site, action, task);
  return Status::OK();
}

// The round state machine's answer, except that a secure round takes a site only while its
// keys are being collected and it has not sent them yet (a site that polls later, or again
// after leaving the attempt, waits for the next round or attempt).
SiteAction RoundFlow::ActionForLocked(const std::string& site) const {
  const SiteAction action = rsm_.ActionFor(site);
  if (action != SiteAction::kTrain || !secure_) return action;
  return secure_round_.TakesTrainee(site) ? action : SiteAction::kWait;
}

void RoundFlow::FillTaskLocked(const std::string& site, SiteAction action, SiteTask* task) {
  const auto fill_model = [&]() REQUIRES(mu_) {
    task->round = rsm_.round();
    task->model = ModelRef{global_->version, global_->sha256,
                           static_cast<int64_t>(global_->bytes.size())};
    task->spec = model_.spec;
    task->spec.torchscript_path.clear();
    task->preprocessing = preprocessing_;
    task->seconds_left = SecondsLeftLocked();
  };
  switch (action) {
    case SiteAction::kWait:
      task->kind = SiteTask::Kind::kWait;
      break;
    case SiteAction::kTrain: {
      task->kind = SiteTask::Kind::kTrain;
      fill_model();
      TrainSettings& s = task->settings;
      s.local_epochs = config_.training.local_epochs;
      s.batch_size = config_.training.batch_size;
      s.optimizer = config_.training.optimizer;
      s.learning_rate = config_.training.learning_rate;
      s.momentum = config_.training.momentum;
      s.weight_decay = config_.training.weight_decay;
      s.seed = config_.seed * 1000003ULL + static_cast<uint64_t>(rsm_.round()) * 7919ULL +
               Fnv1a(site) % 100000ULL;
      s.proximal_mu = fit_.proximal_mu;
      s.frozen_layers = config_.training.frozen_layers;
      if (secure_) task->secure = secure_round_.config();
      task->update_encoding = config_.update_encoding;
      break;
    }
    case SiteAction::kEvaluate:
      task->kind = SiteTask::Kind::kEvaluate;
      fill_model();
      task->eval_batch_size = config_.eval_batch_size;
      break;
    case SiteAction::kFinish:
      task->kind = SiteTask::Kind::kFinish;
      task->finish_reason =
          "the federation completed its " + std::to_string(rsm_.total_rounds()) + " rounds";
      told_finish_.insert(site);
      if (told_finish_.size() >= std::max(told_finish_needed_, rsm_.sites().size())) {
        PostLocked([this]() REQUIRES(mu_) { ShutdownLocked(); });
      }
      break;
  }
}

Status RoundFlow::GetModel(const std::string& site, const std::string& session_id, int version,
                           std::shared_ptr<const EncodedModel>* model) {
  MutexLock lock(&mu_);
  if (Status s = CheckSessionLocked(site, session_id); !s.ok()) return s;
  if (version != global_->version) {
    return Status::FailedPrecondition("global model version " + std::to_string(version) +
                                      " is not available; the current version is " +
                                      std::to_string(global_->version) + " (poll for a new task)");
  }
  *model = global_;
  // A training download in flight: a cut keeps the site's place (round_resume.cc).
  if (rsm_.phase() == Phase::kTraining && rsm_.ActionFor(site) == SiteAction::kTrain) {
    in_transfer_[site] = rsm_.round();
  }
  record_.bytes_down += static_cast<int64_t>(global_->bytes.size());
  return Status::OK();
}

Status RoundFlow::CheckUpdate(const std::string& site, const UpdateHeader& header) {
  MutexLock lock(&mu_);
  if (Status s = CheckSessionLocked(site, header.session_id); !s.ok()) return s;
  Status s = CheckUpdateHeader(site, header, ExpectationLocked(site));
  if (s.code() == Status::Code::kInvalidArgument) NoteInvalidUpdateLocked(site, s);
  // Not selected, or already answered: refused before a byte of the update is read.
  if (s.ok()) s = rsm_.CheckTrainingAnswer(site, header.info.round, "update");
  if (s.ok() && !header.info.secure) in_transfer_[site] = header.info.round;  // round_resume.cc
  return s;
}

Status RoundFlow::AcceptUpdate(const std::string& site, const UpdateHeader& header,
                               std::string bytes, double transfer_seconds) {
  const std::string what = "update from " + site + " for round " + std::to_string(header.info.round);
  UpdateExpectation expected;
  {
    MutexLock lock(&mu_);
    if (Status s = CheckSessionLocked(site, header.session_id); !s.ok()) return s;
    expected = ExpectationLocked(site);
  }
  ModelState delta;
  double norm = 0;
  if (!header.info.secure) {
    // Decoded and checked outside the lock (the costly part). The layout never changes; the
    // norm bound is the one of model version expected.model_version, which the header is
    // checked against below.
    double bound = 0;
    Status s = NormBoundFor(site, header, expected, &bound);
    if (s.ok()) s = DecodeUpdate(site, header, bytes, model_.initial_state, bound, &delta, &norm,
                                     expected.encoding);
    if (!s.ok()) {
      MutexLock lock(&mu_);
      NoteInvalidUpdateLocked(site, s);
      return s;
    }
  }
  MutexLock lock(&mu_);
  in_transfer_.erase(site);  // its bytes are all here
  if (Status s = CheckSessionLocked(site, header.session_id); !s.ok()) return s;
  if (Status s = CheckUpdateHeader(site, header, ExpectationLocked(site)); !s.ok()) return s;
  if (header.info.base_version != expected.model_version) {
    return Status::FailedPrecondition(what + " arrived after the round moved on");
  }
  if (header.info.secure) {
    if (Status s = secure_round_.AddMaskedInput(site, header, bytes); !s.ok()) {
      log_->warn("round {}: masked input of {} refused: {}", rsm_.round(), site, s.message());
      return s;
    }
    for (uint32_t v : header.info.secagg_complaints) {
      const std::string& accused = secure_round_.config()->SiteAt(v);  // checked in range
      log_->warn("round {}: {} reports that the key share of {} failed authentication; {} is "
                 "excluded from the round",
                 rsm_.round(), site, accused, accused);
    }
  }
  if (Status s = rsm_.AcceptUpdate(site, header.info.round); !s.ok()) return s;
  invalid_streak_.erase(site);
  RecordContributionLocked(site, header, transfer_seconds);
  if (header.info.secure) {
    log_->info("round {}: masked input from {} accepted ({:.1f} MB) - {}/{}", rsm_.round(), site,
               static_cast<double>(bytes.size()) / 1e6, rsm_.contributed().size(),
               rsm_.selected().size());
    PostLocked([this]() REQUIRES(mu_) { MaybeEndTrainingLocked(); });
    WriteStatusLocked();
    return Status::OK();
  }
  loss_weighted_sum_ += header.info.train_loss * static_cast<double>(header.info.num_samples);
  record_.update_norm[site] = norm;
  ++pending_adds_;
  log_->info("round {}: update from {} accepted ({} samples, loss {:.4f}, {:.1f} MB, L2 norm "
             "{:.4g} = {:.3g} x the global model's) - {}/{}",
             rsm_.round(), site, header.info.num_samples, header.info.train_loss,
             static_cast<double>(header.size_bytes) / 1e6, norm,
             global_norm_ > 0 ? norm / global_norm_ : 0.0, rsm_.contributed().size(),
             rsm_.selected().size());
  // The layout was checked above, and the round state machine refuses a second update from the
  // same site, so AddUpdate does not throw here; if it did, the update would already count
  // toward the quorum without being in the aggregate: stop rather than publish that model.
  loop_->PostWork([this, site, delta = std::move(delta), n = header.info.num_samples, what]() {
    std::string error;
    try {
      strategy_->AddUpdate(site, delta, n);
    } catch (const std::exception& e) {
      error = e.what();
    }
    loop_->Post([this, what, error = std::move(error)] {
      MutexLock l(&mu_);
      --pending_adds_;
      if (!error.empty()) {
        FailLocked("the " + strategy_->name() + " strategy refused the " + what +
                   " after it was accepted: " + error);
        return;
      }
      MaybeEndTrainingLocked();
    });
  });
  WriteStatusLocked();
  return Status::OK();
}

void RoundFlow::RecordContributionLocked(const std::string& site, const UpdateHeader& header,
                                         double transfer_seconds) {
  record_.update_sha256[site] = header.sha256;
  if (header.has_privacy) NotePrivacyLocked(site, header.info.privacy, /*declined=*/false);
  if (!header.info.log_entry_sha256.empty()) {
    log_heads_[site] = LogAnchor{header.info.log_seq, header.info.log_entry_sha256};
  }
  transfer_seconds_[site] += transfer_seconds;
  // Reported by the site, for the time breakdown only: a value that cannot be a duration is 0.
  const auto duration = [](double s) { return std::isfinite(s) && s >= 0 && s < 1e9 ? s : 0.0; };
  site_train_seconds_[site] = duration(header.info.train_seconds);
  site_compute_wait_seconds_[site] = duration(header.info.compute_wait_seconds);
  last_update_site_ = site;
  last_update_at_ = loop_->Now();
  record_.bytes_up += header.size_bytes;
  if (header.offset > 0) record_.resumed_uploads[site] = header.offset;
  site_train_seconds_sum_ += site_train_seconds_[site];
}

Status RoundFlow::AcceptEvaluation(const std::string& site, const EvaluationReport& report) {
  MutexLock lock(&mu_);
  if (Status s = CheckSessionLocked(site, report.session_id); !s.ok()) return s;
  if (eval_closed_) {
    return Status::FailedPrecondition("evaluation of round " + std::to_string(report.round) +
                                      " arrived after its deadline");
  }
  const int64_t test_samples = rsm_.sites().at(site).num_test_samples;  // session checked
  if (Status s = CheckEvaluationReport(site, report, model_.spec.num_classes, test_samples);
      !s.ok()) {
    return s;
  }
  if (Status s = rsm_.AcceptEvaluation(site, report.round); !s.ok()) return s;
  record_.sites[site] = report.metrics;
  PostLocked([this]() REQUIRES(mu_) { MaybeFinishRoundLocked(); });
  WriteStatusLocked();
  return Status::OK();
}

Status RoundFlow::DeclineTask(const std::string& site, const DeclineRequest& request) {
  MutexLock lock(&mu_);
  if (Status s = CheckSessionLocked(site, request.session_id); !s.ok()) return s;
  if (training_closed_) {
    return Status::FailedPrecondition("round " + std::to_string(request.round) +
                                      " no longer takes answers");
  }
  if (Status s = rsm_.DeclineTask(site, request.round); !s.ok()) return s;
  record_.declined.push_back(site);
  if (request.privacy) NotePrivacyLocked(site, *request.privacy, /*declined=*/true);
  log_->warn("round {}: {} declined: {} - {}/{} answered", rsm_.round(), site, request.reason,
             rsm_.contributed().size() + rsm_.declined().size(), rsm_.selected().size());
  PostLocked([this]() REQUIRES(mu_) { MaybeEndTrainingLocked(); });
  WriteStatusLocked();
  return Status::OK();
}

Status RoundFlow::SecAggSend(const std::string& site, const SecAggMessage& m) {
  MutexLock lock(&mu_);
  if (Status s = CheckSessionLocked(site, m.session_id); !s.ok()) return s;
  if (!secure_ || rsm_.phase() != Phase::kTraining || m.round != rsm_.round() ||
      m.attempt != rsm_.attempt()) {
    return Status::FailedPrecondition("round " + std::to_string(m.round) + " attempt " +
                                      std::to_string(m.attempt) +
                                      " has no secure-aggregation stage open");
  }
  std::string excluded;
  const Status s = secure_round_.Add(site, m, &excluded);
  if (!excluded.empty()) {
    log_->warn("round {}: {} is excluded from secure aggregation: {}", rsm_.round(), site,
               excluded);
    record_.secagg_excluded[site] = excluded;
  }
  if (!s.ok()) return s;
  PostLocked([this]() REQUIRES(mu_) { CloseSecAggStageLocked(/*timeout=*/false); });
  return Status::OK();
}

Status RoundFlow::SecAggReceive(const std::string& site, const SecAggPoll& poll,
                                SecAggStage* reply) {
  MutexLock lock(&mu_);
  if (Status s = CheckSessionLocked(site, poll.session_id); !s.ok()) return s;
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(std::clamp(poll.wait_ms, 0, 30000));
  while (true) {
    if (stopping_) return Status::Unavailable("the coordinator is shutting down");
    if (!secure_ || poll.round != rsm_.round() || poll.attempt != rsm_.attempt()) {
      reply->status = SecAggStage::Status::kAborted;
      reply->reason = "round " + std::to_string(poll.round) + " attempt " +
                      std::to_string(poll.attempt) + " is over" +
                      (secure_round_.failure().empty() ? std::string()
                                                       : ": " + secure_round_.failure());
      return Status::OK();
    }
    if (secure_round_.Answer(site, poll, reply)) return Status::OK();
    if (!cv_.WaitUntil(until)) {
      reply->status = SecAggStage::Status::kWait;
      return Status::OK();
    }
  }
}

void RoundFlow::RecordDownload(const std::string& site, double seconds) {
  MutexLock lock(&mu_);
  in_transfer_.erase(site);
  if (rsm_.phase() == Phase::kTraining) transfer_seconds_[site] += seconds;
}

Status RoundFlow::Attend(const std::string& site, const std::string& session_id) {
  MutexLock lock(&mu_);
  Status s = CheckSessionLocked(site, session_id);
  if (s.ok()) SiteBackLocked(site);  // round_resume.cc
  return s;
}

void RoundFlow::SiteGone(const std::string& site, const std::string& session_id) {
  MutexLock lock(&mu_);
  if (stopping_ || !rsm_.IsCurrentSession(site, session_id)) return;
  if (KeepPlaceForResumeLocked(site, session_id)) return;  // round_resume.cc
  log_->warn("round {}: {} is gone (its session stream ended): not waiting for it, and not "
             "selecting it until it registers again",
             rsm_.round(), site);
  rsm_.Remove(site);
  if (secure_) secure_round_.MarkGone(site);
  PostLocked([this]() REQUIRES(mu_) { CloseSecAggStageLocked(/*timeout=*/false); });
  PostLocked([this]() REQUIRES(mu_) { MaybeEndTrainingLocked(); });
  PostLocked([this]() REQUIRES(mu_) { MaybeFinishRoundLocked(); });
  WriteStatusLocked();
  cv_.SignalAll();
}

void RoundFlow::UploadFailed(const std::string& site, const Status& why) {
  MutexLock lock(&mu_);
  in_transfer_.erase(site);
  if (why.code() == Status::Code::kInvalidArgument) NoteInvalidUpdateLocked(site, why);
}

void RoundFlow::NoteInvalidUpdateLocked(const std::string& site, const Status& why) {
  if (rsm_.IsExcluded(site)) return;
  const int streak = ++invalid_streak_[site];
  log_->warn("round {}: update from {} refused ({} of {} allowed in a row): {}", rsm_.round(),
             site, streak, config_.max_invalid_updates, why.message());
  if (streak < config_.max_invalid_updates) return;
  const std::string reason = std::to_string(streak) + " refused updates in a row ([federation] "
                             "max_invalid_updates), the last: " + why.message();
  log_->error("round {}: {} is excluded from the federation: {}", rsm_.round(), site, reason);
  rsm_.Exclude(site);
  {
    MutexLock report_lock(&report_mu_);
    report_->AppendExcluded(site, rsm_.round(), reason);
  }
  PostLocked([this]() REQUIRES(mu_) { MaybeEndTrainingLocked(); });
  PostLocked([this]() REQUIRES(mu_) { MaybeFinishRoundLocked(); });
  WriteStatusLocked();
  cv_.SignalAll();
}

// ---- helpers ----

void RoundFlow::PostLocked(std::function<void()> step) {
  loop_->Post([this, step = std::move(step)] {
    MutexLock lock(&mu_);
    step();
  });
}

Status RoundFlow::CheckSessionLocked(const std::string& site, const std::string& session) const {
  if (rsm_.IsCurrentSession(site, session)) return Status::OK();
  return Status::NotFound("unknown session for " + site +
                          " (the coordinator restarted or the site registered again): "
                          "register again");
}

UpdateExpectation RoundFlow::ExpectationLocked(const std::string& site) const {
  UpdateExpectation e;
  const auto registered = rsm_.sites().find(site);
  e.max_samples = registered == rsm_.sites().end() ? 0 : registered->second.num_train_samples;
  e.max_norm = UpdateNormBound(config_.max_update_norm, config_.max_update_norm_ratio,
                               global_norm_);
  e.max_norm_absolute = UpdateNormBound(config_.max_update_norm, 0, global_norm_);
  e.max_norm_relative = UpdateNormBound(0, config_.max_update_norm_ratio, global_norm_);
  e.accepting = rsm_.phase() == Phase::kTraining && !training_closed_;
  e.round = rsm_.round();
  e.model_version = global_->version;
  e.secure = secure_;
  e.encoding = ParseUpdateEncoding(config_.update_encoding).value_or(UpdateEncoding::kFloat32);
  e.model_bytes = EncodedModelStateSize(global_state_, e.encoding);
  e.num_values = global_state_.NumValues();
  return e;
}

void RoundFlow::NotePrivacyLocked(const std::string& site, const PrivacySpend& p, bool declined) {
  site_privacy_[site] = SitePrivacyReport{p, declined};
}

std::string RoundFlow::PhaseLabelLocked() const {
  if (shutting_down_ && rsm_.phase() != Phase::kFinished) return "stopped";
  // Paused once the round before is recorded too (its row and checkpoint are there).
  if (held_by_pause_ && !closing_) return "paused";
  return PhaseName(rsm_.phase());
}

void RoundFlow::WriteStatusLocked() {
  FederationStatus s;
  s.federation = config_.federation;
  s.phase = PhaseLabelLocked();
  s.round = rsm_.round();
  s.attempt = rsm_.attempt();
  s.total_rounds = rsm_.total_rounds();
  s.port = port_;
  s.registered = rsm_.sites().size();
  s.selected = rsm_.selected().size();
  s.updates = rsm_.contributed().size();
  s.evaluations = rsm_.evaluated().size();
  if (last_record_ && last_record_->global) {
    s.last_round = last_record_->round;
    s.global_accuracy = last_record_->global->accuracy;
    s.global_auc = last_record_->global->auc;
  }
  WriteStatusFile(config_.output_dir, s, *log_);
}

}  // namespace fedmed
