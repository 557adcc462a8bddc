#include "site_agent/site_agent.h"

#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <filesystem>
#include <chrono>
#include <cmath>
#include <csignal>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "common/audit/privacy_log.h"
#include "common/crypto/pki.h"
#include "common/crypto/sha256.h"
#include "common/crypto/secure_random.h"
#include "common/data/hospital/site_images.h"
#include "common/data/medmnist.h"
#include "common/data/preprocess.h"
#include "common/model/architecture.h"
#include "common/model/evaluation.h"
#include "common/model/local_training.h"
#include "common/model/model_state.h"
#include "common/model/torchscript_model.h"
#include "common/privacy/dp_sgd.h"
#include "common/privacy/update_privacy.h"
#include "common/util/data_path.h"
#include "common/util/file_io.h"
#include "common/util/logging.h"
#include "site_agent/compute_slots.h"
#include "site_agent/connection.h"
#include "site_agent/round_privacy.h"
#include "site_agent/secure_round.h"
#include "site_agent/site_privacy_log.h"
#include "site_agent/task_check.h"
#include "site_agent/trained_update.h"

namespace fedmed {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kPollWaitMs = 10000;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Bad files listed in the site's log, at most this many per split (all are in the loaders' own
// warnings and in LoadReport).
constexpr std::size_t kBadFilesLogged = 20;

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::string Histogram(const ImageSet& set) {
  std::string out;
  const std::vector<int64_t> h = set.ClassHistogram();
  for (std::size_t c = 0; c < h.size(); ++c) {
    out += (c ? " " : "") + std::to_string(c) + ":" + std::to_string(h[c]);
  }
  return out;
}

}  // namespace

class SiteAgent::Impl {
 public:
  Impl(SiteConfig config, SiteAgent::Options options)
      : config_(std::move(config)),
        data_root_(std::move(options.data_root)),
        compute_slots_(std::move(options.compute_slots)),
        keep_global_model_(options.keep_global_model),
        kept_(options.kept_updates) {
    log_ = MakeLogger(config_.name, config_.output_dir + "/site.log");
    CheckCertificate();
    SetComputeThreads(config_.threads);
    LoadData(std::move(options.data));
    LoadModel();
    if (config_.privacy.enabled()) {
      privacy_ = std::make_unique<RoundPrivacy>(config_.privacy, config_.output_dir, train_.size());
      log_->info("privacy: {}", privacy_->Describe());
      if (config_.privacy.delta * static_cast<double>(train_.size()) >= 1) {
        log_->warn("privacy: delta {} is not below 1 / {} (the number of training images): an "
                   "epsilon at this delta allows one image to be revealed outright",
                   config_.privacy.delta, train_.size());
      }
    } else {
      log_->info("privacy: none (updates are sent without differential-privacy noise)");
    }
    privacy_log_ = OpenSitePrivacyLog(config_, privacy_.get(), *log_);
  }

  int Run(bool handle_signals) {
    std::optional<asio::signal_set> signals;
    if (handle_signals) {
      signals.emplace(io_, SIGINT, SIGTERM);
      signals->async_wait([this](const boost::system::error_code& ec, int signal) {
        if (ec) return;
        log_->warn("received signal {}, stopping", signal);
        Stop();
      });
    }
    std::thread io_thread([this] { io_.run(); });
    int status = 2;
    try {
      status = Loop();
    } catch (const std::exception& e) {
      log_->error("{}", e.what());
    }
    work_.reset();
    if (signals) signals->cancel();
    io_.stop();
    io_thread.join();
    AppendToPrivacyLog(kEventStop, {{"exit_status", status}});
    log_->info("site agent stopped (exit status {})", status);
    return status;
  }

  void Stop() {
    stopping_ = true;
    {
      std::lock_guard<std::mutex> lock(connection_mu_);
      if (connection_ != nullptr) connection_->Cancel();
    }
    asio::post(io_, [this] { backoff_timer_.cancel(); });
  }

 private:
  void CheckCertificate() {
    const std::string cert = ReadFile(config_.tls.cert, "[tls] cert");
    const std::string ca = ReadFile(config_.tls.ca_cert, "[tls] ca_cert");
    const CertificateInfo info = InspectCertificate(cert);
    if (info.common_name != config_.name) {
      throw ConfigError(config_.config_path + ": [site] name '" + config_.name +
                        "' differs from the CN of [tls] cert " + config_.tls.cert + " ('" +
                        info.common_name + "'); the coordinator knows a site by its CN");
    }
    const PeerCheck check = VerifyPeerCertificate(cert, ca, std::time(nullptr));
    if (!check.ok) {
      log_->warn("this site's certificate will be refused by the coordinator: {}", check.reason);
    }
  }

  // The site's train and test splits, in its [data] format, preprocessed and sharded
  // (LoadSiteSplit). `preloaded`: the .npz file's contents when the caller loaded it already
  // (format "medmnist" only; else null).
  void LoadData(std::shared_ptr<const MedMnist> preloaded) {
    const SiteDataConfig& d = config_.data;
    const std::string path = ResolveDataPath(d.path, data_root_);
    if (preloaded && d.format != "medmnist") preloaded.reset();  // only .npz files are shared
    LoadReport train_report, test_report;
    train_ = LoadSiteSplit(d, Split::kTrain, data_root_, &train_report, preloaded.get());
    test_ = LoadSiteSplit(d, Split::kTest, data_root_, &test_report, preloaded.get());
    num_classes_ = train_.num_classes;
    preprocessing_ = d.preprocess.Canonical();
    std::string shard = d.partition == "none"
                            ? std::string("all of it")
                            : "shard " + std::to_string(d.shard) + "/" +
                                  std::to_string(d.num_shards) + " (" + d.partition + ")";
    log_->info("data: {} ({}), {}: {} training images (classes {}), {} test images, {}x{} px, "
               "{} channel(s); preprocessing {}",
               path, d.format, shard, train_.size(), Histogram(train_), test_.size(),
               train_.height, train_.width, train_.channels, preprocessing_);
    for (const auto& [split, report] : {std::pair<const char*, const LoadReport*>{
                                            "training", &train_report},
                                        {"test", &test_report}}) {
      if (report->skipped.empty()) continue;
      log_->warn("data: {} bad file(s) of the {} split skipped ([data] max_bad_fraction {}):",
                 report->skipped.size(), split, d.max_bad_fraction);
      for (std::size_t i = 0; i < report->skipped.size() && i < kBadFilesLogged; ++i) {
        log_->warn("data:   {}: {}", report->skipped[i].path, report->skipped[i].reason);
      }
      if (report->skipped.size() > kBadFilesLogged) {
        log_->warn("data:   ... and {} more", report->skipped.size() - kBadFilesLogged);
      }
    }
  }

  // With a [model] torchscript_path: the architecture of this site's script, announced at
  // registration (the coordinator compares it with its own).
  void LoadModel() {
    const std::string& path = config_.model.torchscript_path;
    if (path.empty()) return;
    const torch::jit::Module script =
        LoadTorchScriptFile(path, config_.config_path + ": [model] torchscript_path");
    architecture_ = DescribeArchitecture(ScriptParameterState(script, path));
    log_->info("model: TorchScript file {} ({} parameter tensors, architecture digest {}...)",
               path, architecture_->parameters.size(), architecture_->digest.substr(0, 12));
  }

  // A compute slot when the agent shares a limit with others (std::nullopt lease otherwise), or
  // false when Stop() was called while waiting for one.
  bool WaitForCompute(std::optional<ComputeSlots::Lease>* lease) {
    if (!compute_slots_) return true;
    while (!stopping_) {
      *lease = compute_slots_->TryAcquireFor(std::chrono::milliseconds(200));
      if (lease->has_value()) return true;
    }
    return false;
  }

  // Runs `work` on the leased slot's compute thread, or here when there is no shared limit.
  static void Compute(std::optional<ComputeSlots::Lease>& lease, const std::function<void()>& work) {
    if (lease.has_value()) {
      lease->Run(work);
    } else {
      work();
    }
  }

  int Loop() {
    const ProxyRoute route = ResolveProxyRoute(config_.coordinator_proxy,
                                               config_.coordinator_address, config_.config_path);
    log_->info("dialling the coordinator at {} {}", config_.coordinator_address, route.Describe());
    CoordinatorConnection connection(config_.coordinator_address, config_.tls, route);
    {
      std::lock_guard<std::mutex> lock(connection_mu_);
      connection_ = &connection;
    }
    struct Forget {
      Impl* self;
      ~Forget() {
        std::lock_guard<std::mutex> lock(self->connection_mu_);
        self->connection_ = nullptr;
      }
    } forget{this};
    Clock::time_point failing_since;  // when the current run of failed calls began
    int failures = 0;
    std::string session;
    // Open while the session lasts: the coordinator learns at once when this process ends.
    std::unique_ptr<CoordinatorConnection::Presence> presence;
    while (!stopping_) {
      try {
        if (session.empty()) {
          RegistrationInfo info;
          info.site_name = config_.name;
          info.num_train_samples = train_.size();
          info.num_test_samples = test_.size();
          info.in_channels = train_.channels;
          info.num_classes = num_classes_;
          info.capabilities = Capabilities();
          info.preprocessing = preprocessing_;
          info.architecture = architecture_;
          const Registration r = connection.Register(info);
          session = r.session_id;
          presence = connection.Attend(session);
          presence_ = presence.get();
          total_rounds_ = r.total_rounds;
          AppendToPrivacyLog(kEventRegistered, {{"federation", r.federation},
                                                {"total_rounds", r.total_rounds},
                                                {"num_train_samples", train_.size()}});
          log_->info("registered with federation '{}' at {} ({} rounds)", r.federation,
                     connection.target(), r.total_rounds);
        }
        const SiteTask task = connection.Poll(session, kPollWaitMs);
        failures = 0;
        switch (task.kind) {
          case SiteTask::Kind::kWait:
            break;
          case SiteTask::Kind::kTrain:
            Train(connection, session, task);
            if (refused_in_a_row_ > 0) {
              // The coordinator retries a round that lacks its quorum at once; a site that
              // cannot train the federation's tasks waits before it answers the next one.
              const double delay = NextBackoff(refused_in_a_row_ - 1);
              log_->warn("round {}: waiting {:.1f} s before polling again ({} task(s) refused "
                         "in a row)", task.round, delay, refused_in_a_row_);
              if (!SleepFor(delay)) return 1;
            }
            break;
          case SiteTask::Kind::kEvaluate:
            Evaluate(connection, session, task);
            break;
          case SiteTask::Kind::kFinish:
            log_->info("coordinator says: {}; exiting", task.finish_reason);
            return 0;
        }
      } catch (const RpcError& e) {
        if (stopping_) break;
        switch (e.kind()) {
          case RpcError::Kind::kRefused:
            log_->error("the coordinator refused this site: {}", e.what());
            return 2;
          case RpcError::Kind::kSessionLost:
            log_->warn("{}; registering again", e.what());
            session.clear();
            presence_ = nullptr;
            presence.reset();
            break;
          case RpcError::Kind::kRejected:
            log_->warn("request rejected: {}", e.what());
            break;
          case RpcError::Kind::kRetry:
          case RpcError::Kind::kUnreachable: {
            if (failures == 0) failing_since = Clock::now();
            const double elapsed = Seconds(Clock::now() - failing_since);
            if (config_.give_up_after_seconds > 0 && elapsed > config_.give_up_after_seconds) {
              log_->error("{}; giving up after {:.0f} s of failures ([connection] "
                          "give_up_after_seconds)",
                          e.what(), elapsed);
              return 2;
            }
            const double delay = NextBackoff(failures++);
            if (e.kind() == RpcError::Kind::kUnreachable && !connection.Connected()) {
              // The coordinator is not there: retry as soon as it is reachable again (within
              // about a second of its return), within `delay` at the latest.
              log_->warn("{}; retrying once it is reachable, within {:.1f} s (attempt {})",
                         e.what(), delay, failures);
              if (!connection.WaitUntilReachable(delay) && stopping_) return 1;
              break;
            }
            log_->warn("{}; retrying in {:.1f} s (attempt {})", e.what(), delay, failures);
            if (!SleepFor(delay)) return 1;
            break;
          }
        }
      }
    }
    return 1;
  }

  // Full-jitter exponential backoff: uniform in [b/2, b], b = min(max, initial * 2^failures).
  double NextBackoff(int failures) {
    const double base = std::min(config_.backoff_max_seconds,
                                 config_.backoff_initial_seconds * std::pow(2.0, std::min(failures, 30)));
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    return base * jitter(rng_);
  }

  // Waits on the io_context's steady_timer; false when Stop() interrupted the wait.
  bool SleepFor(double seconds) {
    std::promise<bool> done;
    std::future<bool> result = done.get_future();
    asio::post(io_, [&] {
      if (stopping_) {
        done.set_value(false);
        return;
      }
      backoff_timer_.expires_after(
          std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds)));
      backoff_timer_.async_wait(
          [&](const boost::system::error_code& ec) { done.set_value(!ec && !stopping_); });
    });
    return result.get();
  }

  const ModelState& GlobalModel(CoordinatorConnection& connection, const std::string& session,
                                const ModelRef& ref) {
    if (!cached_ || cached_version_ != ref.version || cached_sha256_ != ref.sha256) {
      cached_.reset();  // never hold two versions at once
      const auto start = Clock::now();
      const std::string bytes = connection.DownloadModel(session, ref);
      cached_ = DecodeModelState(bytes, "global model version " + std::to_string(ref.version));
      cached_version_ = ref.version;
      cached_sha256_ = ref.sha256;
      log_->info("downloaded global model version {} ({:.1f} MB, sha256 {}...) in {:.2f} s",
                 ref.version, static_cast<double>(bytes.size()) / 1e6, ref.sha256.substr(0, 12),
                 Seconds(Clock::now() - start));
    }
    return *cached_;
  }

  // Declines training round `round` because this site cannot train it (`why`, a model,
  // preprocessing or training setting that does not fit the site): logged here and, with the
  // decline, at the coordinator; the site stays registered.
  void RefuseTraining(CoordinatorConnection& connection, const std::string& session, int round,
                      const std::string& why) {
    log_->error("round {}: refusing to train: {}", round, why);
    ++refused_in_a_row_;
    connection.DeclineTask(session, round, "cannot train: " + why, PrivacySpend{});
  }

  void Train(CoordinatorConnection& connection, const std::string& session, const SiteTask& task) {
    ModelSpec spec;
    std::string why = CheckTask(task, config_, &spec);
    if (why.empty()) why = UpdateEncodingProblem(task);
    if (!why.empty()) {
      RefuseTraining(connection, session, task.round, why);
      return;
    }
    const KeptUpdate* kept = kept_.Find(task.round, task.model.sha256);
    if (!task.secure && kept != nullptr) {
      log_->info("round {}: already trained on this global model (the coordinator asks again "
                 "after a restart or a cut upload): sending the same update again; nothing trained or spent",
                 task.round);
      connection.UploadUpdate(session, kept->info, kept->bytes);
      log_->info("round {}: update sent again (resumed at byte {} of {})", task.round,
                 connection.last_upload_offset(), kept->bytes.size());
      return;
    }
    TrainSettings settings = task.settings;
    settings.augmentation = config_.data.augmentation;  // the site's own, training only
    // Training ends at once on SIGTERM, and short of the task's deadline (by 10% of the time
    // given, at most 5 s): an update that arrives late is refused, and a private site would
    // have spent epsilon for nothing. A deadline already past on this site's clock (a clock far
    // ahead of the coordinator's) is not trusted.
    std::optional<Clock::time_point> deadline;
    if (task.seconds_left > 0) {
      const double margin = std::min(5.0, 0.1 * task.seconds_left);
      deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(task.seconds_left - margin));
    }
    // It also ends when the coordinator restarted meanwhile (the presence stream says the
    // session is unknown): the update could not be used, and the sooner the site registers
    // again, the sooner the restarted coordinator's round can start.
    settings.should_stop = [this, deadline, presence = presence_] {
      return stopping_ || (deadline && Clock::now() >= *deadline) ||
             (presence != nullptr && presence->SessionLost());
    };
    std::optional<RoundPrivacy::Plan> plan;
    if (privacy_) {
      plan = privacy_->PlanRound(task.round, total_rounds_, settings);
      if (!plan->train) {
        log_->warn("round {}: declining: {}", task.round, plan->decline_reason);
        if (privacy_log_) {
          DeclinedEvent e;
          e.round = task.round;
          e.reason = plan->decline_reason;
          e.epsilon_round = plan->report.epsilon_round;
          e.epsilon_total = plan->report.epsilon_total;
          e.budget_epsilon = plan->report.budget_epsilon;
          e.delta = plan->report.delta;
          privacy_log_->AppendDeclined(e);
        }
        connection.DeclineTask(session, task.round, plan->decline_reason, plan->report);
        return;
      }
      // The coordinator chose task.settings.seed; a seed it knows would let it regenerate the
      // sampling and the noise. Private training draws its randomness from a secret seed.
      settings.seed = SecureRandomUint64();
    }
    // A secure round exchanges keys before training (Bonawitz et al.: a site that drops later is
    // then recovered from its shares).
    std::unique_ptr<SecureRound> secure;
    if (task.secure) {
      secure = MakeSecureRound(*task.secure);
      if (!secure->ExchangeKeys(connection, session, stopping_)) return;
    }
    // With a shared limit, the slot covers the download, training and upload, so that only
    // slots() agents hold a model, its gradients and an update at any time.
    std::optional<ComputeSlots::Lease> lease;
    const Clock::time_point queued = Clock::now();
    if (!WaitForCompute(&lease)) return;  // stopping: nothing to send
    const double compute_wait_seconds = Seconds(Clock::now() - queued);
    const ModelState& global = GlobalModel(connection, session, task.model);
    log_->info("round {}: training {} on {} images for {} local epoch(s) ({}, lr {}){}{}",
               task.round, task.spec.name, train_.size(), settings.local_epochs,
               settings.optimizer, settings.learning_rate,
               settings.frozen_layers.empty()
                   ? std::string()
                   : ", frozen layers " + Join(settings.frozen_layers),
               plan ? fmt::format(" with {} (clipping norm {}, noise multiplier {:.4f})",
                                  PrivacyModeName(plan->report.mechanism.mode),
                                  plan->report.mechanism.clipping_norm,
                                  plan->report.mechanism.noise_multiplier)
                    : std::string());
    TrainResult result;
    try {
      Compute(lease, [&] {
        if (plan && plan->report.mechanism.mode == PrivacyMode::kDpSgd) {
          DpSgdSettings dp;
          dp.noise_multiplier = plan->report.mechanism.noise_multiplier;
          dp.clipping_norm = plan->report.mechanism.clipping_norm;
          result = TrainLocalDpSgd(spec, global, train_, settings, dp);
        } else {
          result = TrainLocal(spec, global, train_, settings);
        }
      });
    } catch (const ConfigError& e) {
      // The task's model or settings do not fit this site (frozen layers that match no
      // parameter, a script whose forward does not fit the images, DP-SGD with a script or
      // frozen layers): nothing was sent, nothing was spent.
      if (!keep_global_model_) cached_.reset();
      lease.reset();
      RefuseTraining(connection, session, task.round, e.what());
      return;
    } catch (const TrainingStopped& e) {
      if (!keep_global_model_) cached_.reset();
      lease.reset();
      if (stopping_) {
        log_->warn("round {}: {}; stopping: nothing sent, nothing spent", task.round, e.what());
        return;
      }
      if (presence_ != nullptr && presence_->SessionLost()) {
        log_->warn("round {}: {}: the coordinator no longer knows this site's session (it "
                   "restarted); nothing sent, nothing spent",
                   task.round, e.what());
        throw RpcError(RpcError::Kind::kSessionLost, /*grpc NOT_FOUND=*/5,
                       "the coordinator restarted during training");
      }
      log_->warn("round {}: {}: the round's deadline is near; declining it (nothing sent, "
                 "nothing spent)",
                 task.round, e.what());
      connection.DeclineTask(session, task.round,
                             std::string("its deadline came before training ended: ") + e.what(),
                             PrivacySpend{});
      return;
    } catch (const TrainingDiverged& e) {
      // A learning rate too high for this site's data, or a global model it cannot train:
      // decline this round (nothing was sent, nothing spent) and stay for the next one.
      if (!keep_global_model_) cached_.reset();
      lease.reset();
      RefuseTraining(connection, session, task.round, e.what());
      return;
    }
    if (!keep_global_model_) cached_.reset();  // `global` is not used below
    refused_in_a_row_ = 0;
    UpdateInfo info;
    if (plan) {
      if (plan->report.mechanism.mode == PrivacyMode::kUpdate) {
        const UpdatePrivacyResult clip =
            PrivatizeUpdate(&result.delta, plan->report.mechanism.clipping_norm,
                            plan->report.mechanism.noise_multiplier, SecureRandomUint64());
        log_->info("round {}: update norm {:.4f} clipped by {:.4f}, noise added", task.round,
                   clip.norm, clip.scale);
      }
    }
    if (plan && plan->report.mechanism.mode == PrivacyMode::kDpSgd &&
        result.steps != plan->report.mechanism.steps) {
      // The accountant was told the plan's steps; never send an update it did not count.
      throw Error("round " + std::to_string(task.round) + ": DP-SGD took " +
                  std::to_string(result.steps) + " steps but the privacy plan accounted for " +
                  std::to_string(plan->report.mechanism.steps) + "; the update is not sent");
    }
    info.round = task.round;
    info.base_version = task.model.version;
    info.num_samples = result.num_samples;
    info.local_steps = result.steps;
    // The training loss is a statistic of the private images that no noise protects: a private
    // site keeps it to itself, and so does a site whose update is hidden by secure aggregation.
    info.train_loss = plan || secure ? std::nan("") : result.mean_loss;
    info.train_seconds = result.seconds;
    info.compute_wait_seconds = compute_wait_seconds;
    std::string bytes;
    try {
      bytes = secure ? secure->MaskUpdate(result.delta, result.num_samples, &info)
                     : EncodePlainUpdate(task, result.delta, settings.seed);
    } catch (const FormatError& e) {  // float16 cannot hold a value: nothing sent or spent
      return RefuseTraining(connection, session, task.round, e.what());
    }
    if (plan) {
      // On disk before the update leaves (the ledger, then the signed log entry with the digest
      // of the exact bytes sent): a crash may lose the upload, never the record of the spend.
      info.privacy = privacy_->Commit(*plan);
      const PrivacyLogEntry entry = privacy_log_->AppendTrained(
          TrainedEventFor(task.round, info.privacy, config_.privacy.conversion, Sha256Hex(bytes)));
      info.log_seq = entry.seq;
      info.log_entry_sha256 = entry.hash;
      log_->info("round {}: privacy spent: epsilon {:.4f} this round, {:.4f} in total of {:.4f} "
                 "(delta {})",
                 task.round, info.privacy.epsilon_round, info.privacy.epsilon_total,
                 info.privacy.budget_epsilon, info.privacy.delta);
    }
    // Kept before it leaves: an upload cut by a coordinator crash is sent again, not retrained.
    if (!secure) kept_.Keep(KeptUpdate{task.round, task.model.sha256, info, bytes});
    const auto start = Clock::now();
    connection.UploadUpdate(session, info, bytes);
    log_->info("round {}: trained {} steps in {:.2f} s (loss {:.4f}); {} sent in {:.2f} s",
               task.round, result.steps, result.seconds, result.mean_loss,
               secure ? "masked update" : "update", Seconds(Clock::now() - start));
    if (secure) {
      lease.reset();  // unmasking needs no compute: let another agent train meanwhile
      secure->Unmask(connection, session, stopping_);
    }
  }

  // What this site announces at registration: secure aggregation when it holds the signing key
  // its keys are signed with.
  std::vector<std::string> Capabilities() const {
    const std::filesystem::path dir = std::filesystem::path(config_.tls.key).parent_path();
    if (std::filesystem::exists(dir / kAuditKeyFile) && std::filesystem::exists(dir / kAuditCertFile)) {
      return {kSecAggCapability};
    }
    return {};
  }

  std::unique_ptr<SecureRound> MakeSecureRound(const SecAggRoundConfig& config) {
    const std::filesystem::path dir = std::filesystem::path(config_.tls.key).parent_path();
    return std::make_unique<SecureRound>(
        config, config_.name,
        ReadFile((dir / kAuditKeyFile).string(), "the site's audit key"),
        ReadFile((dir / kAuditCertFile).string(), "the site's audit certificate"),
        ReadFile(config_.tls.ca_cert, "[tls] ca_cert"), log_);
  }

  // ---- the signed privacy log (site_privacy_log.h) ----

  void AppendToPrivacyLog(const char* event, const nlohmann::json& data) {
    if (!privacy_log_) return;
    try {
      privacy_log_->Append(event, data);
    } catch (const std::exception& e) {
      log_->error("privacy log: {}", e.what());
    }
  }

  void Evaluate(CoordinatorConnection& connection, const std::string& session,
                const SiteTask& task) {
    ModelSpec spec;
    if (const std::string why = CheckTask(task, config_, &spec); !why.empty()) {
      log_->error("round {}: refusing to evaluate: {}", task.round, why);
      return;
    }
    std::optional<ComputeSlots::Lease> lease;
    if (!WaitForCompute(&lease)) return;  // stopping: nothing to report
    const ModelState& global = GlobalModel(connection, session, task.model);
    const auto start = Clock::now();
    ClassificationMetrics m;
    try {
      Compute(lease, [&] { m = EvaluateModel(spec, global, test_, task.eval_batch_size); });
    } catch (const ConfigError& e) {
      if (!keep_global_model_) cached_.reset();
      log_->error("round {}: refusing to evaluate: {}", task.round, e.what());
      return;
    }
    const double seconds = Seconds(Clock::now() - start);
    if (!keep_global_model_) cached_.reset();
    lease.reset();
    connection.ReportEvaluation(session, task.round, task.model.version, m, seconds);
    log_->info("round {}: local test {}", task.round, FormatMetrics(m));
  }

  SiteConfig config_;
  std::string data_root_;
  std::shared_ptr<ComputeSlots> compute_slots_;  // null = no limit
  bool keep_global_model_ = true;                // Options::keep_global_model
  std::shared_ptr<spdlog::logger> log_;
  ImageSet train_, test_;
  int64_t num_classes_ = 0;
  std::string preprocessing_;                    // PreprocessSpec::Canonical() of [data]
  std::optional<ModelArchitecture> architecture_;  // of [model] torchscript_path, if set
  int refused_in_a_row_ = 0;  // train tasks refused since the last one this site could train
  KeptUpdates kept_;  // the last plain updates sent or tried (trained_update.h)
  int total_rounds_ = 1;                 // announced at registration
  std::unique_ptr<RoundPrivacy> privacy_;  // null with [privacy] mode "none"
  std::unique_ptr<PrivacyLogWriter> privacy_log_;  // null without an audit key
  std::optional<ModelState> cached_;
  int cached_version_ = -1;
  std::string cached_sha256_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::atomic<bool> stopping_{false};
  // The current session's presence stream (Run's), for Train to notice a restarted coordinator.
  const CoordinatorConnection::Presence* presence_ = nullptr;
  std::mutex connection_mu_;
  CoordinatorConnection* connection_ = nullptr;  // while Loop() runs, for Stop()
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  asio::steady_timer backoff_timer_{io_};
};

SiteAgent::SiteAgent(SiteConfig config, std::string data_root)
    : SiteAgent(std::move(config), [&data_root] {
        Options options;
        options.data_root = std::move(data_root);
        return options;
      }()) {}
SiteAgent::SiteAgent(SiteConfig config, Options options)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(options))) {}
SiteAgent::~SiteAgent() = default;
int SiteAgent::Run(bool handle_signals) { return impl_->Run(handle_signals); }
void SiteAgent::Stop() { impl_->Stop(); }

}  // namespace fedmed
