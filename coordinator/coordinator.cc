#include "coordinator/coordinator.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/service_type.h>
#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include "common/audit/privacy_log.h"
#include "common/crypto/pki.h"
#include "common/crypto/sha256.h"
#include "common/data/medmnist.h"
#include "common/metrics/classification_metrics.h"
#include "common/model/checkpoint.h"
#include "common/model/evaluation.h"
#include "common/model/local_training.h"
#include "common/model/model_spec.h"
#include "common/transport/tls.h"
#include "common/util/data_path.h"
#include "common/util/error.h"
#include "common/util/logging.h"
#include "coordinator/metrics_log.h"
#include "coordinator/round/round_state_machine.h"
#include "coordinator/service.h"
#include "coordinator/strategy/strategy.h"
#include "proto/fedmed.pb.h"

namespace fedmed {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

int64_t UnixMillisIn(double seconds) {
  const auto t = std::chrono::system_clock::now() + std::chrono::duration<double>(seconds);
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

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

void WriteFileReplacing(const fs::path& path, const std::string& content) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) throw Error("cannot write '" + tmp.string() + "'");
  }
  fs::rename(tmp, path);
}

// "fedadam (server_learning_rate 0.1, beta1 0.9, beta2 0.99, tau 1e-09)": the strategy's name
// and every parameter that applies to it, defaults filled in.
std::string DescribeStrategy(const StrategyConfig& config) {
  const StrategyConfig c = WithStrategyDefaults(config);
  std::string params;
  auto add = [&params](const char* key, const std::optional<double>& value) {
    if (value) params += fmt::format("{}{} {:g}", params.empty() ? "" : ", ", key, *value);
  };
  add("proximal_mu", c.proximal_mu);
  add("server_learning_rate", c.server_learning_rate);
  add("beta1", c.beta1);
  add("beta2", c.beta2);
  add("tau", c.tau);
  add("trim_fraction", c.trim_fraction);
  return params.empty() ? c.name : c.name + " (" + params + ")";
}

void FillMetrics(const v1::Metrics& in, ClassificationMetrics* out) {
  out->num_samples = in.num_samples();
  out->num_classes = in.num_classes();
  out->loss = in.loss();
  out->accuracy = in.accuracy();
  out->balanced_accuracy = in.balanced_accuracy();
  out->auc = in.auc();
  out->f1 = in.f1();
  out->sensitivity = in.sensitivity();
  out->specificity = in.specificity();
  out->confusion.assign(in.confusion().begin(), in.confusion().end());
}

}  // namespace

class Coordinator::Impl final : public SiteHandler {
 public:
  Impl(CoordinatorConfig config, Options options)
      : config_(std::move(config)),
        options_(std::move(options)),
        rsm_(config_.rounds, config_.min_sites, config_.sites_per_round, config_.seed,
             config_.min_available_sites) {
    fs::create_directories(config_.output_dir);
    log_ = MakeLogger("coordinator", config_.output_dir + "/coordinator.log");
    ca_pem_ = ReadFileOrThrow(config_.tls.ca_cert, "[tls] ca_cert");
    SetComputeThreads(config_.threads);
    LoadModelAndData();
    metrics_ = std::make_unique<MetricsLog>(config_.output_dir);
    OpenAuditLog();
    fs::create_directories(config_.output_dir + "/checkpoints");
    strategy_ = MakeStrategy(config_.strategy);
    log_->info("strategy: {}{}", DescribeStrategy(config_.strategy),
               strategy_->NeedsIndividualUpdates() ? "; needs each site's update on its own" : "");
    MaybeResume();
    if (!global_) InstallGlobal(std::move(initial_state_), 0);
  }

  ~Impl() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    pool_.join();
  }

  int Start() {
    service_ = MakeFederationService(this, ca_pem_, config_.allowed_sites, log_);
    grpc::ServerBuilder builder;
    builder.AddListeningPort(config_.listen_address, MakeServerCredentials(config_.tls), &port_);
    builder.RegisterService(service_.get());
    grpc::ResourceQuota quota("fedmed-coordinator");
    // Polls are held open: allow a few threads per allowed site.
    quota.SetMaxThreads(static_cast<int>(16 + 4 * config_.allowed_sites.size()));
    builder.SetResourceQuota(quota);
    server_ = builder.BuildAndStart();
    if (!server_ || port_ == 0) {
      throw Error("cannot listen on " + config_.listen_address +
                  " ([coordinator] listen): address in use or invalid?");
    }
    log_->info("federation '{}' listening on {} (port {}), mutual TLS, {} sites allowed, "
               "waiting for {} to register",
               config_.federation, config_.listen_address, port_, config_.allowed_sites.size(),
               rsm_.sites_to_start());
    WriteStatus();
    return port_;
  }

  int Run() {
    if (!server_) Start();
    if (options_.handle_signals) {
      signals_.emplace(io_, SIGINT, SIGTERM);
      signals_->async_wait([this](const boost::system::error_code& ec, int signal) {
        if (ec) return;
        log_->warn("received signal {}, stopping after closing files", signal);
        Stop();
      });
    }
    if (config_.registration_timeout_seconds > 0) {
      registration_timer_.expires_after(
          std::chrono::duration_cast<Clock::duration>(
              std::chrono::duration<double>(config_.registration_timeout_seconds)));
      registration_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        std::lock_guard<std::mutex> lock(mu_);
        if (rsm_.phase() == Phase::kWaitingForSites) {
          log_->error("only {} of {} sites registered within {} s ([federation] "
                      "registration_timeout_seconds); giving up",
                      rsm_.sites().size(), rsm_.sites_to_start(),
                      config_.registration_timeout_seconds);
          exit_code_ = 2;
          ShutdownLocked();
        }
      });
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (rsm_.phase() == Phase::kFinished) {
        log_->info("all {} rounds were already completed in {}", config_.rounds,
                   config_.output_dir);
        ShutdownLocked();
      }
    }
    io_.run();
    pool_.join();
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
      server_->Wait();
      server_.reset();
    }
    log_->info("coordinator stopped (exit status {})", exit_code_);
    return exit_code_;
  }

  void Stop() {
    std::lock_guard<std::mutex> lock(mu_);
    if (rsm_.phase() != Phase::kFinished && exit_code_ == 0) exit_code_ = 1;
    ShutdownLocked();
  }

  std::string GlobalModelBytes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return global_->bytes;
  }

  // ---- SiteHandler ----

  grpc::Status Register(const std::string& site, const v1::RegisterRequest& request,
                        v1::RegisterReply* reply) override {
    if (request.site_name() != site) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    "site_name '" + request.site_name() + "' does not match certificate CN=" +
                        site);
    }
    if (request.num_train_samples() < 1) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    site + " has no training samples (num_train_samples = " +
                        std::to_string(request.num_train_samples()) + ")");
    }
    if (!options_.custom_model) {
      if (request.in_channels() != spec_.in_channels) {
        return Refuse(grpc::StatusCode::FAILED_PRECONDITION,
                      site + "'s images have " + std::to_string(request.in_channels()) +
                          " channel(s) but the federation's model takes " +
                          std::to_string(spec_.in_channels));
      }
      if (request.num_classes() > spec_.num_classes) {
        return Refuse(grpc::StatusCode::FAILED_PRECONDITION,
                      site + "'s labels have " + std::to_string(request.num_classes()) +
                          " classes but the federation's model has " +
                          std::to_string(spec_.num_classes));
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    RegisteredSite info;
    info.name = site;
    info.session_id = RandomSessionId();
    info.num_train_samples = request.num_train_samples();
    info.num_test_samples = request.num_test_samples();
    const bool again = rsm_.sites().count(site) != 0;
    rsm_.Register(info);
    log_->info("{} {} ({} training, {} test samples); {} of {} sites needed have registered",
               site, again ? "registered again" : "registered", info.num_train_samples,
               info.num_test_samples, rsm_.sites().size(), rsm_.sites_to_start());
    reply->set_session_id(info.session_id);
    reply->set_federation(config_.federation);
    reply->set_total_rounds(config_.rounds);
    if (rsm_.ReadyToStart()) asio::post(io_, [this] { MaybeStartFirstRound(); });
    WriteStatusLocked();
    cv_.notify_all();
    return grpc::Status::OK;
  }

  grpc::Status Poll(const std::string& site, const v1::PollRequest& request,
                    v1::Task* task) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (grpc::Status s = CheckSessionLocked(site, request.session_id()); !s.ok()) return s;
    const auto wait = std::chrono::milliseconds(std::clamp(request.wait_ms(), 0, 30000));
    const auto until = Clock::now() + wait;
    SiteAction action = rsm_.ActionFor(site);
    while (action == SiteAction::kWait && !stopping_) {
      if (cv_.wait_until(lock, until) == std::cv_status::timeout) break;
      action = rsm_.ActionFor(site);
    }
    if (stopping_) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the coordinator is shutting down");
    }
    switch (action) {
      case SiteAction::kWait:
        task->mutable_wait()->set_poll_again_ms(0);
        break;
      case SiteAction::kTrain: {
        v1::TrainTask* train = task->mutable_train();
        train->set_round(rsm_.round());
        FillModelRefLocked(train->mutable_model());
        FillSpec(train->mutable_spec());
        v1::TrainSettings* s = train->mutable_settings();
        s->set_local_epochs(config_.training.local_epochs);
        s->set_batch_size(config_.training.batch_size);
        s->set_optimizer(config_.training.optimizer);
        s->set_learning_rate(config_.training.learning_rate);
        s->set_momentum(config_.training.momentum);
        s->set_weight_decay(config_.training.weight_decay);
        s->set_seed(config_.seed * 1000003ULL + static_cast<uint64_t>(rsm_.round()) * 7919ULL +
                    Fnv1a(site) % 100000ULL);
        s->set_proximal_mu(fit_.proximal_mu);
        train->set_deadline_unix_ms(UnixMillisIn(SecondsLeftLocked()));
        break;
      }
      case SiteAction::kEvaluate: {
        v1::EvaluateTask* eval = task->mutable_evaluate();
        eval->set_round(rsm_.round());
        FillModelRefLocked(eval->mutable_model());
        FillSpec(eval->mutable_spec());
        eval->set_batch_size(config_.eval_batch_size);
        eval->set_deadline_unix_ms(UnixMillisIn(SecondsLeftLocked()));
        break;
      }
      case SiteAction::kFinish: {
        task->mutable_finish()->set_reason("the federation completed its " +
                                           std::to_string(config_.rounds) + " rounds");
        told_finish_.insert(site);
        if (told_finish_.size() >= rsm_.sites().size()) {
          asio::post(io_, [this] {
            std::lock_guard<std::mutex> l(mu_);
            ShutdownLocked();
          });
        }
        break;
      }
    }
    return grpc::Status::OK;
  }

  grpc::Status GetModel(const std::string& site, const v1::DownloadRequest& request,
                        std::shared_ptr<const EncodedModel>* model) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (grpc::Status s = CheckSessionLocked(site, request.session_id()); !s.ok()) return s;
    if (request.version() != global_->version) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "global model version " + std::to_string(request.version()) +
                              " is not available; the current version is " +
                              std::to_string(global_->version) + " (poll for a new task)");
    }
    *model = global_;
    return grpc::Status::OK;
  }

  grpc::Status CheckUpdate(const std::string& site, const v1::UpdateHeader& header) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (grpc::Status s = CheckSessionLocked(site, header.session_id()); !s.ok()) return s;
    return CheckUpdateLocked(site, header);
  }

  grpc::Status AcceptUpdate(const std::string& site, const v1::UpdateHeader& header,
                            std::string bytes, double transfer_seconds) override {
    const std::string what = "update from " + site + " for round " + std::to_string(header.round());
    ModelState delta;
    try {
      delta = DecodeModelState(bytes, what);
    } catch (const FormatError& e) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.what());
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (grpc::Status s = CheckUpdateLocked(site, header); !s.ok()) return s;
    try {
      CheckSameLayout(global_state_, delta, what);
    } catch (const FormatError& e) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.what());
    }
    const std::string refused = rsm_.AcceptUpdate(site, header.round());
    if (!refused.empty()) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, refused);
    record_.update_sha256[site] = header.sha256();
    if (header.has_privacy()) NotePrivacyLocked(site, header.privacy(), /*declined=*/false);
    if (!header.log_entry_sha256().empty()) {
      log_heads_[site] = LogAnchor{header.log_seq(), header.log_entry_sha256()};
    }
    transfer_seconds_[site] += transfer_seconds;
    loss_weighted_sum_ += header.train_loss() * static_cast<double>(header.num_samples());
    site_train_seconds_sum_ += header.train_seconds();
    ++pending_adds_;
    log_->info("round {}: update from {} accepted ({} samples, loss {:.4f}, {:.1f} MB) - {}/{}",
               rsm_.round(), site, header.num_samples(), header.train_loss(),
               static_cast<double>(header.size_bytes()) / 1e6, rsm_.contributed().size(),
               rsm_.selected().size());
    // The layout was checked above, and the round state machine refuses a second update from
    // the same site, so AddUpdate does not throw here; if it did, the update would already count
    // toward the quorum without being in the aggregate: stop rather than publish that model.
    asio::post(pool_, [this, site, delta = std::move(delta), n = header.num_samples(), what]() {
      std::string error;
      try {
        strategy_->AddUpdate(site, delta, n);
      } catch (const std::exception& e) {
        error = e.what();
      }
      asio::post(io_, [this, what, error = std::move(error)] {
        std::lock_guard<std::mutex> l(mu_);
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
    return grpc::Status::OK;
  }

  grpc::Status AcceptEvaluation(const std::string& site,
                                const v1::EvaluationReport& report) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (grpc::Status s = CheckSessionLocked(site, report.session_id()); !s.ok()) return s;
    if (eval_closed_) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "evaluation of round " + std::to_string(report.round()) +
                              " arrived after its deadline");
    }
    const std::string refused = rsm_.AcceptEvaluation(site, report.round());
    if (!refused.empty()) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, refused);
    ClassificationMetrics m;
    FillMetrics(report.metrics(), &m);
    record_.sites[site] = m;
    asio::post(io_, [this] {
      std::lock_guard<std::mutex> l(mu_);
      MaybeFinishRoundLocked();
    });
    WriteStatusLocked();
    return grpc::Status::OK;
  }

  grpc::Status DeclineTask(const std::string& site, const v1::DeclineRequest& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (grpc::Status s = CheckSessionLocked(site, request.session_id()); !s.ok()) return s;
    if (training_closed_) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "round " + std::to_string(request.round()) + " no longer takes answers");
    }
    const std::string refused = rsm_.DeclineTask(site, request.round());
    if (!refused.empty()) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, refused);
    record_.declined.push_back(site);
    if (request.has_privacy()) NotePrivacyLocked(site, request.privacy(), /*declined=*/true);
    log_->warn("round {}: {} declined: {} - {}/{} answered", rsm_.round(), site, request.reason(),
               rsm_.contributed().size() + rsm_.declined().size(), rsm_.selected().size());
    asio::post(io_, [this] {
      std::lock_guard<std::mutex> l(mu_);
      MaybeEndTrainingLocked();
    });
    WriteStatusLocked();
    return grpc::Status::OK;
  }

  void RecordDownload(const std::string& site, double seconds) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (rsm_.phase() == Phase::kTraining) transfer_seconds_[site] += seconds;
  }

 private:
  // ---- set-up ----

  void LoadModelAndData() {
    spec_.name = config_.model;
    spec_.image_size = config_.image_size;
    spec_.in_channels = config_.in_channels;
    spec_.num_classes = config_.num_classes;
    if (!config_.eval_data.empty()) {
      const std::string path = ResolveDataPath(config_.eval_data, options_.data_root);
      heldout_ = LoadMedMnistSplit(path, ParseSplit(config_.eval_split));
      if (spec_.in_channels == 0) spec_.in_channels = heldout_->channels;
      if (spec_.num_classes == 0) spec_.num_classes = heldout_->num_classes;
      if (heldout_->channels != spec_.in_channels || heldout_->height != spec_.image_size) {
        throw ConfigError(config_.config_path + ": [evaluation] data " + path + " has " +
                          std::to_string(heldout_->channels) + "-channel " +
                          std::to_string(heldout_->height) + " px images but [model] expects " +
                          std::to_string(spec_.in_channels) + " channel(s) at " +
                          std::to_string(spec_.image_size) + " px");
      }
      log_->info("held-out set: {} split of {} ({} images, {} classes)", config_.eval_split, path,
                 heldout_->size(), heldout_->num_classes);
    }
    if (options_.initial_model.has_value()) {
      initial_state_ = std::move(*options_.initial_model);
    } else {
      initial_state_ = InitialModelState(spec_, config_.seed);
    }
    if (options_.custom_model) {
      heldout_.reset();
    } else {
      CheckSameLayout(InitialModelState(spec_, config_.seed), initial_state_, "initial model");
      log_->info("model '{}' ({} parameters), {} input channel(s), {} classes", spec_.name,
                 initial_state_.NumValues(), spec_.in_channels, spec_.num_classes);
    }
  }

  void MaybeResume() {
    const fs::path resume = fs::path(config_.output_dir) / "resume.json";
    if (!fs::exists(resume)) return;
    nlohmann::json j;
    try {
      std::ifstream in(resume);
      j = nlohmann::json::parse(in);
      const int round = j.at("completed_round").get<int>();
      const std::string checkpoint = j.at("checkpoint").get<std::string>();
      ModelState state = LoadCheckpoint((fs::path(config_.output_dir) / checkpoint).string());
      CheckSameLayout(initial_state_, state, "checkpoint " + checkpoint);
      rsm_.ResumeAfter(round);
      InstallGlobal(std::move(state), round);
      if (global_->sha256 != j.at("model_sha256").get<std::string>()) {
        throw Error("checkpoint " + checkpoint + " does not match the digest in resume.json");
      }
      ResumeStrategy(j, round);
      log_->info("resuming after round {} from {}", round, checkpoint);
    } catch (const nlohmann::json::exception& e) {
      throw Error(resume.string() + " is malformed: " + e.what());
    }
  }

  // Restores the strategy's server state named in resume.json `j` (written after `round`), so
  // that the next rounds are what they would have been without the restart.
  void ResumeStrategy(const nlohmann::json& j, int round) {
    if (!j.contains("strategy_state")) {  // written before strategies were checkpointed
      log_->warn("resume.json holds no strategy state; {} starts from its initial state",
                 strategy_->name());
      return;
    }
    const std::string saved = j.at("strategy").get<std::string>();
    if (saved != strategy_->name()) {
      throw ConfigError((config_.config_path.empty() ? "(configuration built in code)"
                                                     : config_.config_path) +
                        ": [strategy] name: \"" + strategy_->name() + "\", but the federation in " +
                        config_.output_dir + " ran \"" + saved + "\" up to round " +
                        std::to_string(round) + " (resume.json); resume with the same strategy, " +
                        "or start afresh in another output_dir");
    }
    const std::string relative = j.at("strategy_state").get<std::string>();
    const std::string path = (fs::path(config_.output_dir) / relative).string();
    const std::string bytes = ReadFileOrThrow(path, "strategy state named in resume.json");
    if (Sha256Hex(bytes) != j.at("strategy_state_sha256").get<std::string>()) {
      throw Error("strategy state " + path + " does not match the digest in resume.json");
    }
    try {
      strategy_->LoadState(bytes);
      strategy_->BeginRound(global_state_);  // checks the state's layout against the model now
    } catch (const FormatError& e) {
      throw FormatError(path + ": " + e.what());
    }
    log_->info("{} server state restored from {} ({} bytes)", strategy_->name(), relative,
               bytes.size());
  }

  void InstallGlobal(ModelState state, int version) {
    auto model = std::make_shared<EncodedModel>();
    model->version = version;
    model->bytes = EncodeModelState(state);
    model->sha256 = Sha256Hex(model->bytes);
    global_state_ = std::move(state);
    global_ = std::move(model);
  }

  // ---- the round, on the io_context thread ----

  void MaybeStartFirstRound() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!rsm_.ReadyToStart() || stopping_) return;
    registration_timer_.cancel();
    StartRoundLocked(/*retry=*/false);
  }

  void StartRoundLocked(bool retry) {
    rsm_.StartRound(retry);
    fit_ = strategy_->ConfigureFit(rsm_.round(), rsm_.selected());
    try {
      strategy_->BeginRound(global_state_);  // forgets the updates of an earlier attempt
    } catch (const std::exception& e) {
      FailLocked("round " + std::to_string(rsm_.round()) + ": the " + strategy_->name() +
                 " strategy cannot start it: " + e.what());
      return;
    }
    record_ = RoundRecord{};
    log_heads_.clear();
    record_.round = rsm_.round();
    record_.attempt = rsm_.attempt();
    record_.strategy = strategy_->name();
    transfer_seconds_.clear();
    loss_weighted_sum_ = 0;
    site_train_seconds_sum_ = 0;
    training_closed_ = false;
    eval_closed_ = false;
    central_eval_done_ = false;
    round_start_ = Clock::now();
    std::string selected;
    for (const std::string& s : rsm_.selected()) selected += (selected.empty() ? "" : ", ") + s;
    log_->info("round {}/{}{} started: {} selected ({})", rsm_.round(), config_.rounds,
               retry ? " (attempt " + std::to_string(rsm_.attempt()) + ")" : "",
               rsm_.selected().size(), selected);
    ArmDeadlineLocked();
    WriteStatusLocked();
    cv_.notify_all();
  }

  void ArmDeadlineLocked() {
    phase_deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double>(config_.round_deadline_seconds));
    deadline_.expires_at(phase_deadline_);
    const Phase phase = rsm_.phase();
    const int round = rsm_.round(), attempt = rsm_.attempt();
    deadline_.async_wait([this, phase, round, attempt](const boost::system::error_code& ec) {
      if (ec) return;
      std::lock_guard<std::mutex> lock(mu_);
      if (rsm_.phase() != phase || rsm_.round() != round || rsm_.attempt() != attempt) return;
      if (phase == Phase::kTraining && !training_closed_) {
        log_->warn("round {}: deadline of {} s passed with {}/{} updates", round,
                   config_.round_deadline_seconds, rsm_.contributed().size(),
                   rsm_.selected().size());
        training_closed_ = true;
        MaybeEndTrainingLocked();
      } else if (phase == Phase::kEvaluating && !eval_closed_) {
        log_->warn("round {}: evaluation deadline passed with {} site report(s)", round,
                   rsm_.evaluated().size());
        eval_closed_ = true;
        MaybeFinishRoundLocked();
      }
    });
  }

  double SecondsLeftLocked() const { return std::max(0.0, Seconds(phase_deadline_ - Clock::now())); }

  void MaybeEndTrainingLocked() {
    if (rsm_.phase() != Phase::kTraining || pending_adds_ > 0 || aggregating_) return;
    if (!training_closed_ && !rsm_.TrainingComplete()) return;
    training_closed_ = true;
    deadline_.cancel();
    training_end_ = Clock::now();
    if (!rsm_.HasQuorum()) {
      log_->warn("round {}: {} update(s), below the quorum of {} ([federation] min_sites); "
                 "retrying the round",
                 rsm_.round(), rsm_.contributed().size(), config_.min_sites);
      StartRoundLocked(/*retry=*/true);
      return;
    }
    aggregating_ = true;
    const int round = rsm_.round();
    asio::post(pool_, [this, round] {
      // global_state_ changes only on the io_context thread, and not while aggregating_.
      ModelState next;
      std::string error;
      try {
        next = strategy_->AggregateFit(global_state_);
      } catch (const std::exception& e) {
        error = e.what();
      }
      asio::post(io_, [this, round, next = std::move(next), error = std::move(error)]() mutable {
        std::lock_guard<std::mutex> lock(mu_);
        aggregating_ = false;
        if (!error.empty()) {
          FailLocked("round " + std::to_string(round) + ": aggregation failed: " + error);
          return;
        }
        InstallGlobal(std::move(next), round);
        record_.aggregation_seconds = Seconds(Clock::now() - training_end_);
        StartEvaluationLocked();
      });
    });
  }

  void StartEvaluationLocked() {
    const bool ask_sites = config_.federated_evaluation && !options_.custom_model;
    rsm_.StartEvaluation(ask_sites);
    eval_start_ = Clock::now();
    central_eval_done_ = !heldout_.has_value();
    if (heldout_) {
      asio::post(pool_, [this, state = global_state_] {
        ClassificationMetrics m = EvaluateModel(spec_, state, *heldout_, config_.eval_batch_size);
        asio::post(io_, [this, m = std::move(m)] {
          std::lock_guard<std::mutex> lock(mu_);
          record_.global = m;
          central_eval_done_ = true;
          MaybeFinishRoundLocked();
        });
      });
    }
    ArmDeadlineLocked();
    WriteStatusLocked();
    cv_.notify_all();
    MaybeFinishRoundLocked();
  }

  void MaybeFinishRoundLocked() {
    if (rsm_.phase() != Phase::kEvaluating || !central_eval_done_) return;
    if (!eval_closed_ && !rsm_.EvaluationComplete()) return;
    eval_closed_ = true;
    deadline_.cancel();
    FinishRoundLocked();
  }

  void FinishRoundLocked() {
    const auto eval_end = Clock::now();
    RoundRecord& r = record_;
    r.training_seconds = Seconds(training_end_ - round_start_);
    double transfer = 0;
    for (const auto& [site, seconds] : transfer_seconds_) {
      if (rsm_.contributed().count(site)) transfer += seconds;
    }
    const auto contributors = static_cast<double>(rsm_.contributed().size());
    r.transfer_seconds = transfer / contributors;
    r.training_wait_seconds = std::max(0.0, r.training_seconds - r.transfer_seconds);
    r.evaluation_seconds = Seconds(eval_end - eval_start_);
    r.contributors.assign(rsm_.contributed().begin(), rsm_.contributed().end());
    r.num_samples = strategy_->total_samples();
    r.mean_train_loss = loss_weighted_sum_ / static_cast<double>(r.num_samples);
    r.mean_site_train_seconds = site_train_seconds_sum_ / contributors;
    r.model_sha256 = global_->sha256;
    r.privacy = site_privacy_;
    if (!r.sites.empty()) {
      std::vector<ClassificationMetrics> parts;
      for (const auto& [site, m] : r.sites) parts.push_back(m);
      r.federated = CombineMetrics(parts);
    }
    const auto checkpoint_start = Clock::now();
    WriteCheckpointLocked();
    r.checkpoint_seconds = Seconds(Clock::now() - checkpoint_start);
    r.round_seconds = Seconds(Clock::now() - round_start_);
    r.unix_time = std::chrono::duration<double>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
    metrics_->Append(r);
    AppendAuditRoundLocked(r);
    log_->info("round {}/{} done in {:.2f} s (training {:.2f}, transfer {:.3f}, aggregation "
               "{:.3f}, evaluation {:.2f}): global {} | federated {}",
               r.round, config_.rounds, r.round_seconds, r.training_seconds, r.transfer_seconds,
               r.aggregation_seconds, r.evaluation_seconds,
               r.global ? FormatMetrics(*r.global) : "n/a",
               r.federated ? FormatMetrics(*r.federated) : "n/a");
    if (!r.privacy.empty()) {
      std::string spent;
      for (const auto& [site, p] : r.privacy) {
        spent += fmt::format("{}{} {:.3f} of {:.3f}{}", spent.empty() ? "" : ", ", site,
                             p.epsilon_total, p.budget_epsilon, p.declined ? " (declined)" : "");
      }
      log_->info("round {}: epsilon spent per site (as reported, at each site's delta): {}",
                 r.round, spent);
    }
    last_record_ = r;
    rsm_.FinishRound();
    if (rsm_.phase() == Phase::kFinished) {
      log_->info("federation finished after {} rounds; telling sites to stop", config_.rounds);
      WriteStatusLocked();
      cv_.notify_all();
      // Sites learn it at their next poll; stop at the latest after a grace period.
      deadline_.expires_after(std::chrono::seconds(15));
      deadline_.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        std::lock_guard<std::mutex> lock(mu_);
        ShutdownLocked();
      });
      if (told_finish_.size() >= rsm_.sites().size()) ShutdownLocked();
      return;
    }
    StartRoundLocked(/*retry=*/false);
  }

  // checkpoints/round-NNNN.pt (the global model), checkpoints/round-NNNN.strategy (the
  // strategy's server state, SaveState; empty for strategies that keep none) and global_model.pt,
  // then resume.json naming both with their digests. resume.json is replaced last and atomically
  // (rename), so a crash at any point leaves it naming a complete, consistent pair.
  void WriteCheckpointLocked() {
    char name[32];
    std::snprintf(name, sizeof(name), "round-%04d", record_.round);
    const std::string relative = std::string("checkpoints/") + name + ".pt";
    const std::string state_relative = std::string("checkpoints/") + name + ".strategy";
    const fs::path dir(config_.output_dir);
    SaveCheckpoint(global_state_, (dir / relative).string());
    SaveCheckpoint(global_state_, (dir / "global_model.pt").string());
    const std::string state = strategy_->SaveState();
    WriteFileReplacing(dir / state_relative, state);
    nlohmann::json j;
    j["completed_round"] = record_.round;
    j["checkpoint"] = relative;
    j["model_sha256"] = global_->sha256;
    j["strategy"] = strategy_->name();
    j["strategy_state"] = state_relative;
    j["strategy_state_sha256"] = Sha256Hex(state);
    WriteFileReplacing(dir / "resume.json", j.dump(2) + "\n");
  }

  // A fatal error of the round (logged): Run() returns 2.
  void FailLocked(const std::string& why) {
    log_->error("{}; stopping the federation", why);
    exit_code_ = 2;
    ShutdownLocked();
  }

  void ShutdownLocked() {
    if (shutting_down_) return;
    shutting_down_ = true;
    if (audit_) {
      try {
        audit_->Append(kEventStop, {{"reason", rsm_.phase() == Phase::kFinished
                                                  ? "the federation completed"
                                                  : "stopped before the last round"},
                                    {"completed_rounds", last_record_ ? last_record_->round : 0}});
      } catch (const std::exception& e) {
        log_->error("audit log: {}", e.what());
      }
    }
    stopping_ = true;
    cv_.notify_all();
    deadline_.cancel();
    registration_timer_.cancel();
    if (signals_) signals_->cancel();
    WriteStatusLocked();
    io_.stop();
  }

  // ---- the signed audit log (common/audit/privacy_log.h) ----

  // The coordinator's audit key and certificate sit beside its TLS key (fedmed-pki writes them
  // there). A federation provisioned without them runs without an audit log, and says so.
  void OpenAuditLog() {
    const fs::path dir = fs::path(config_.tls.key).parent_path();
    const fs::path key = dir / kAuditKeyFile, cert = dir / kAuditCertFile;
    if (!fs::exists(key) || !fs::exists(cert)) {
      log_->warn("no audit key ({}): the coordinator keeps no signed audit log; provision the "
                 "federation again with fedmed-pki to get one",
                 key.string());
      return;
    }
    audit_ = PrivacyLogWriter::OpenWithFiles(
        (fs::path(config_.output_dir) / kCoordinatorAuditLogFile).string(), key.string(),
        cert.string());
    if (audit_->recovery()) {
      log_->warn("audit log {}: repaired a torn last line ({} bytes dropped)", audit_->path(),
                 audit_->recovery()->dropped_bytes);
    }
    audit_->Append(kEventStart, {{"role", "coordinator"},
                                 {"federation", config_.federation},
                                 {"rounds", config_.rounds},
                                 {"strategy", config_.strategy.name}});
    log_->info("audit log: {} (signed by {}, {} entries)", audit_->path(), audit_->writer(),
               audit_->entries());
  }

  void AppendAuditRoundLocked(const RoundRecord& r) {
    if (!audit_) return;
    RoundEvent e;
    e.round = r.round;
    e.selected = rsm_.selected();
    e.contributors = r.contributors;
    e.received = r.update_sha256;
    e.aggregate_sha256 = r.model_sha256;
    if (r.global) {
      if (std::isfinite(r.global->accuracy)) e.metrics["accuracy"] = r.global->accuracy;
      if (std::isfinite(r.global->auc)) e.metrics["auc"] = r.global->auc;
    }
    for (const std::string& site : r.contributors) {
      if (const auto it = log_heads_.find(site); it != log_heads_.end()) {
        e.log_heads[site] = it->second;
      }
    }
    audit_->AppendRound(e);
  }

  // ---- helpers ----


  void NotePrivacyLocked(const std::string& site, const v1::PrivacySpend& p, bool declined) {
    SitePrivacyReport& r = site_privacy_[site];
    r.mechanism = p.mechanism();
    r.epsilon_total = p.epsilon_total();
    r.epsilon_round = p.epsilon_round();
    r.delta = p.delta();
    r.budget_epsilon = p.budget_epsilon();
    r.declined = declined;
  }

  grpc::Status Refuse(grpc::StatusCode code, const std::string& why) {
    log_->warn("registration refused: {}", why);
    return grpc::Status(code, why);
  }

  grpc::Status CheckSessionLocked(const std::string& site, const std::string& session) const {
    if (rsm_.IsCurrentSession(site, session)) return grpc::Status::OK;
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        "unknown session for " + site +
                            " (the coordinator restarted or the site registered again): "
                            "register again");
  }

  grpc::Status CheckUpdateLocked(const std::string& site, const v1::UpdateHeader& header) const {
    if (rsm_.phase() != Phase::kTraining || training_closed_ || header.round() != rsm_.round()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "round " + std::to_string(header.round()) +
                              " is not accepting updates from " + site +
                              " (its deadline passed or it ended)");
    }
    if (header.base_version() != global_->version) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "update is relative to model version " +
                              std::to_string(header.base_version()) + ", expected " +
                              std::to_string(global_->version));
    }
    if (header.num_samples() < 1) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "update claims " + std::to_string(header.num_samples()) + " samples");
    }
    if (header.size_bytes() != static_cast<int64_t>(global_->bytes.size())) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "update of " + std::to_string(header.size_bytes()) +
                              " bytes does not match the model's " +
                              std::to_string(global_->bytes.size()) + " bytes");
    }
    return grpc::Status::OK;
  }

  void FillModelRefLocked(v1::ModelRef* ref) const {
    ref->set_version(global_->version);
    ref->set_sha256(global_->sha256);
    ref->set_size_bytes(static_cast<int64_t>(global_->bytes.size()));
  }

  void FillSpec(v1::ModelSpec* spec) const {
    spec->set_name(spec_.name);
    spec->set_in_channels(spec_.in_channels);
    spec->set_num_classes(spec_.num_classes);
    spec->set_image_size(spec_.image_size);
  }

  void WriteStatus() {
    std::lock_guard<std::mutex> lock(mu_);
    WriteStatusLocked();
  }

  void WriteStatusLocked() {
    nlohmann::json j;
    j["federation"] = config_.federation;
    j["phase"] = shutting_down_ && rsm_.phase() != Phase::kFinished ? "stopped"
                                                                     : PhaseName(rsm_.phase());
    j["round"] = rsm_.round();
    j["attempt"] = rsm_.attempt();
    j["total_rounds"] = config_.rounds;
    j["port"] = port_;
    j["registered"] = rsm_.sites().size();
    j["selected"] = rsm_.selected().size();
    j["updates"] = rsm_.contributed().size();
    j["evaluations"] = rsm_.evaluated().size();
    if (last_record_ && last_record_->global) {
      j["last_round"] = last_record_->round;
      j["global_accuracy"] = last_record_->global->accuracy;
      j["global_auc"] = last_record_->global->auc;
    }
    try {
      WriteFileReplacing(fs::path(config_.output_dir) / "status.json", j.dump() + "\n");
    } catch (const std::exception& e) {
      log_->warn("cannot write status.json: {}", e.what());
    }
  }

  CoordinatorConfig config_;
  Options options_;
  std::shared_ptr<spdlog::logger> log_;
  std::string ca_pem_;
  ModelSpec spec_;
  std::optional<ImageSet> heldout_;
  ModelState initial_state_;
  std::unique_ptr<MetricsLog> metrics_;
  std::unique_ptr<PrivacyLogWriter> audit_;    // null without an audit key
  std::map<std::string, LogAnchor> log_heads_;  // site -> its log entry for its last update

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  asio::thread_pool pool_{1};
  asio::steady_timer deadline_{io_};
  asio::steady_timer registration_timer_{io_};
  std::optional<asio::signal_set> signals_;

  std::unique_ptr<grpc::Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;

  // Everything below is guarded by mu_.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  RoundStateMachine rsm_;
  ModelState global_state_;
  std::shared_ptr<const EncodedModel> global_;
  // AddUpdate runs on the pool (thread-safe); AggregateFit on the pool while aggregating_ (no
  // AddUpdate pending then); ConfigureFit, BeginRound, SaveState on the io_context thread.
  std::unique_ptr<Strategy> strategy_;
  FitInstructions fit_;                 // this round's ConfigureFit: proximal_mu for the sites
  RoundRecord record_;
  std::map<std::string, SitePrivacyReport> site_privacy_;  // latest report per site
  std::optional<RoundRecord> last_record_;
  std::map<std::string, double> transfer_seconds_;
  double loss_weighted_sum_ = 0;
  double site_train_seconds_sum_ = 0;
  int pending_adds_ = 0;
  bool aggregating_ = false;
  bool training_closed_ = false;
  bool eval_closed_ = false;
  bool central_eval_done_ = false;
  bool stopping_ = false;
  bool shutting_down_ = false;
  int exit_code_ = 0;
  std::set<std::string> told_finish_;
  Clock::time_point round_start_, training_end_, eval_start_, phase_deadline_;
};

Coordinator::Coordinator(CoordinatorConfig config, Options options)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(options))) {}
Coordinator::~Coordinator() = default;
int Coordinator::Start() { return impl_->Start(); }
int Coordinator::Run() { return impl_->Run(); }
void Coordinator::Stop() { impl_->Stop(); }
std::string Coordinator::GlobalModelBytes() const { return impl_->GlobalModelBytes(); }

}  // namespace fedmed
