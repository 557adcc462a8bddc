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
#include <ctime>
#include <functional>
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
#include "common/data/preprocess.h"
#include "common/metrics/classification_metrics.h"
#include "common/model/architecture.h"
#include "common/model/checkpoint.h"
#include "common/model/evaluation.h"
#include "common/model/frozen_layers.h"
#include "common/model/local_training.h"
#include "common/model/model_io.h"
#include "common/model/model_spec.h"
#include "common/secagg/protocol.h"
#include "common/transport/secagg_wire.h"
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
    secure_ = config_.secure_aggregation.enabled;
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
    if (grpc::Status s = CheckPreprocessing(site, request); !s.ok()) return s;
    if (grpc::Status s = CheckArchitecture(site, request); !s.ok()) return s;
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
    if (secure_ && std::find(request.capabilities().begin(), request.capabilities().end(),
                             std::string("secagg-v1")) == request.capabilities().end()) {
      return Refuse(grpc::StatusCode::FAILED_PRECONDITION,
                    site + " does not support secure aggregation (it did not announce "
                           "\"secagg-v1\": an older fedmed-site, or no audit key beside its TLS "
                           "key to sign its keys with), which this federation requires "
                           "([secure_aggregation] enabled = true)");
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
    SiteAction action = ActionForLocked(site);
    while (action == SiteAction::kWait && !stopping_) {
      if (cv_.wait_until(lock, until) == std::cv_status::timeout) break;
      action = ActionForLocked(site);
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
        for (const std::string& layer : config_.training.frozen_layers) s->add_frozen_layers(layer);
        train->set_preprocessing(preprocessing_);
        if (secagg_config_) ToProto(*secagg_config_, train->mutable_secure_aggregation());
        train->set_deadline_unix_ms(UnixMillisIn(SecondsLeftLocked()));
        break;
      }
      case SiteAction::kEvaluate: {
        v1::EvaluateTask* eval = task->mutable_evaluate();
        eval->set_round(rsm_.round());
        FillModelRefLocked(eval->mutable_model());
        FillSpec(eval->mutable_spec());
        eval->set_batch_size(config_.eval_batch_size);
        eval->set_preprocessing(preprocessing_);
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

  // The round state machine's answer, except that a secure round takes a site only while its
  // keys are being collected and it has not sent them yet (a site that polls later, or again
  // after leaving the attempt, waits for the next round or attempt).
  SiteAction ActionForLocked(const std::string& site) const {
    const SiteAction action = rsm_.ActionFor(site);
    if (action != SiteAction::kTrain || !secure_) return action;
    if (!secagg_ || secagg_->stage() != SecAggServer::Stage::kKeys || secagg_->Advertised(site)) {
      return SiteAction::kWait;
    }
    return action;
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
    if (header.secure()) return AcceptMaskedInput(site, header, bytes, transfer_seconds);
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

  grpc::Status SecAggSend(const std::string& site, const v1::SecAggMessage& m) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (grpc::Status s = CheckSessionLocked(site, m.session_id()); !s.ok()) return s;
    if (!secagg_ || rsm_.phase() != Phase::kTraining || m.round() != rsm_.round() ||
        m.attempt() != rsm_.attempt()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "round " + std::to_string(m.round()) + " attempt " +
                              std::to_string(m.attempt()) +
                              " has no secure-aggregation stage open");
    }
    std::string refused;
    switch (m.stage_case()) {
      case v1::SecAggMessage::kKeys:
        refused = secagg_->AddKeys(site, FromProto(m.keys()));
        if (!refused.empty() && secagg_->excluded().count(site)) {
          log_->warn("round {}: {} is excluded from secure aggregation: {}", rsm_.round(), site,
                     refused);
          record_.secagg_excluded[site] = refused;
        }
        break;
      case v1::SecAggMessage::kShares: {
        std::vector<EncryptedShare> shares;
        for (const v1::SecAggShare& e : m.shares().shares()) shares.push_back(FromProto(e));
        refused = secagg_->AddShares(site, std::move(shares));
        break;
      }
      case v1::SecAggMessage::kUnmask: {
        std::vector<UnmaskShare> shares;
        for (const v1::SecAggUnmaskShare& e : m.unmask().shares()) shares.push_back(FromProto(e));
        refused = secagg_->AddUnmaskShares(site, std::move(shares));
        break;
      }
      default:
        refused = "empty secure-aggregation message";
    }
    if (!refused.empty()) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, refused);
    asio::post(io_, [this] {
      std::lock_guard<std::mutex> l(mu_);
      CloseSecAggStageLocked(/*timeout=*/false);
    });
    return grpc::Status::OK;
  }

  grpc::Status SecAggReceive(const std::string& site, const v1::SecAggPoll& poll,
                             v1::SecAggBroadcast* reply) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (grpc::Status s = CheckSessionLocked(site, poll.session_id()); !s.ok()) return s;
    const auto until = Clock::now() + std::chrono::milliseconds(std::clamp(poll.wait_ms(), 0, 30000));
    const auto abort = [&](const std::string& why) {
      reply->set_status(v1::SecAggBroadcast::ABORTED);
      reply->set_reason(why);
      return grpc::Status::OK;
    };
    while (true) {
      if (stopping_) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the coordinator is shutting down");
      }
      if (!secure_ || poll.round() != rsm_.round() || poll.attempt() != rsm_.attempt()) {
        return abort("round " + std::to_string(poll.round()) + " attempt " +
                     std::to_string(poll.attempt()) + " is over" +
                     (secagg_failure_.empty() ? std::string() : ": " + secagg_failure_));
      }
      const uint32_t index = secagg_config_ ? secagg_config_->IndexOf(site) : 0;
      if (secagg_ && index != 0) {
        const auto stage = secagg_->stage();
        if (poll.stage() == 1 && stage != SecAggServer::Stage::kKeys) {
          // Each site gets its own keys and its neighbours' (with SecAgg+, only those: what it
          // uses; the others' would only cost bandwidth, O(n) per site).
          const std::vector<uint32_t> mine = secagg_config_->Neighbours(index);
          for (const AdvertisedKeys& k : secagg_->u1()) {
            if (k.index == index || std::binary_search(mine.begin(), mine.end(), k.index)) {
              ToProto(k, reply->add_keys());
            }
          }
          const bool in = std::any_of(secagg_->u1().begin(), secagg_->u1().end(),
                                      [&](const AdvertisedKeys& k) { return k.index == index; });
          if (!in) return abort(site + " did not advertise valid keys in time");
          reply->set_status(v1::SecAggBroadcast::READY);
          return grpc::Status::OK;
        }
        if (poll.stage() == 2 && stage != SecAggServer::Stage::kKeys &&
            stage != SecAggServer::Stage::kShares) {
          const auto& u2 = secagg_->u2();
          if (!std::binary_search(u2.begin(), u2.end(), index)) {
            return abort(site + " did not share its keys in time");
          }
          for (const EncryptedShare& e : secagg_->InboxFor(index)) ToProto(e, reply->add_inbox());
          for (uint32_t v : u2) reply->add_u2(v);
          reply->set_status(v1::SecAggBroadcast::READY);
          return grpc::Status::OK;
        }
      }
      if (poll.stage() == 3 && !secagg_u3_.empty()) {
        if (!std::binary_search(secagg_u3_.begin(), secagg_u3_.end(), index)) {
          return abort(site + " is not among the round's survivors");
        }
        for (uint32_t v : secagg_u3_) reply->add_u3(v);
        reply->set_status(v1::SecAggBroadcast::READY);
        return grpc::Status::OK;
      }
      if (cv_.wait_until(lock, until) == std::cv_status::timeout) {
        reply->set_status(v1::SecAggBroadcast::WAIT);
        return grpc::Status::OK;
      }
    }
  }

  void RecordDownload(const std::string& site, double seconds) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (rsm_.phase() == Phase::kTraining) transfer_seconds_[site] += seconds;
  }

 private:
  // ---- set-up ----

  void LoadModelAndData() {
    preprocessing_ = config_.preprocessing.Canonical();
    log_->info("preprocessing of every site and of the held-out set: {}", preprocessing_);
    if (!config_.eval_data.empty()) {
      heldout_ = LoadHeldOutSet(config_, options_.data_root, config_.eval_split);
    }
    spec_ = FederationModelSpec(config_, heldout_ ? &*heldout_ : nullptr);
    if (heldout_) {
      const std::string path = ResolveDataPath(config_.eval_data, options_.data_root);
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
    if (options_.custom_model) {
      initial_state_ = options_.initial_model ? std::move(*options_.initial_model)
                                              : InitialModelState(spec_, config_.seed);
      heldout_.reset();
      return;
    }
    ValidateModelSpec(spec_, config_.config_path + ": [model]");
    const ModelState layout = InitialModelState(spec_, config_.seed);
    if (options_.initial_model.has_value()) {
      initial_state_ = std::move(*options_.initial_model);
      CheckSameLayout(layout, initial_state_, "initial model");
    } else if (!config_.initial_weights.empty()) {
      initial_state_ = LoadInitialWeights(config_.initial_weights, layout);
      log_->info("initial weights: {} ([model] initial_weights)", config_.initial_weights);
    } else {
      initial_state_ = layout;
    }
    if (spec_.name == kTorchScriptModelName) {
      architecture_ = DescribeArchitecture(layout);
      log_->info("model: TorchScript file {} ({} parameter tensors, architecture digest {}...); "
                 "every site must hold a script of the same architecture",
                 spec_.torchscript_path, architecture_->parameters.size(),
                 architecture_->digest.substr(0, 12));
    }
    if (!config_.training.frozen_layers.empty()) {
      std::vector<std::string> names;
      for (const NamedTensor& t : layout.tensors) names.push_back(t.name);
      try {
        MatchFrozenLayers(names, config_.training.frozen_layers);
      } catch (const ConfigError& e) {
        throw ConfigError(config_.config_path + ": [training] " + e.what());
      }
      std::string frozen;
      for (const std::string& layer : config_.training.frozen_layers) {
        frozen += (frozen.empty() ? "" : ", ") + layer;
      }
      log_->info("frozen layers (not trained by the sites): {}", frozen);
    }
    log_->info("model '{}' ({} parameters), {} input channel(s), {} classes", spec_.name,
               initial_state_.NumValues(), spec_.in_channels, spec_.num_classes);
  }

  // Registration: the site's preprocessing must be the federation's ([preprocessing]).
  grpc::Status CheckPreprocessing(const std::string& site, const v1::RegisterRequest& request) {
    PreprocessSpec theirs;  // "" from an older site: it knows only the MedMNIST default
    try {
      if (!request.preprocessing().empty()) theirs = ParsePreprocessSpec(request.preprocessing());
    } catch (const Error& e) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    site + " sent preprocessing that cannot be read: " + e.what());
    }
    if (theirs == config_.preprocessing) return grpc::Status::OK;
    return Refuse(grpc::StatusCode::FAILED_PRECONDITION,
                  site + "'s preprocessing differs from the federation's: " +
                      DescribePreprocessDifference(theirs, config_.preprocessing,
                                                   "the coordinator", site) +
                      " (every site must preprocess alike: set the site's [data] keys as the "
                      "coordinator's [preprocessing])");
  }

  // Registration: in a TorchScript federation the site must hold a script of the same
  // architecture (parameter names and shapes, common/model/architecture.h).
  grpc::Status CheckArchitecture(const std::string& site, const v1::RegisterRequest& request) {
    if (!architecture_) {
      if (!request.architecture_digest().empty() && !options_.custom_model) {
        log_->info("{} has a [model] torchscript_path, but this federation trains the zoo model "
                   "'{}': the site's script is not used", site, spec_.name);
      }
      return grpc::Status::OK;
    }
    if (request.architecture_digest().empty()) {
      return Refuse(grpc::StatusCode::FAILED_PRECONDITION,
                    site + " has no TorchScript model, but this federation trains one ([model] "
                           "name = \"torchscript\"): set [model] torchscript_path in " + site +
                           "'s site.toml to its copy of the federation's TorchScript file");
    }
    ModelArchitecture theirs;
    theirs.digest = request.architecture_digest();
    for (const v1::ParameterShape& p : request.architecture()) {
      theirs.parameters.push_back(ParameterShape{p.name(), {p.shape().begin(), p.shape().end()}});
    }
    try {
      CheckSameArchitecture(*architecture_, "the coordinator's TorchScript model", theirs,
                            site + "'s TorchScript model");
    } catch (const FormatError& e) {  // a description whose digest does not fit its list
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT, e.what());
    } catch (const Error& e) {  // ConfigError: the architectures differ
      return Refuse(grpc::StatusCode::FAILED_PRECONDITION, e.what());
    }
    return grpc::Status::OK;
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
    record_.secure = secure_;
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
    if (secure_) StartSecAggLocked();
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
    if (secure_) {
      MaybeEndSecureTrainingLocked();
      return;
    }
    if (!training_closed_ && !rsm_.TrainingComplete()) return;
    training_closed_ = true;
    deadline_.cancel();
    training_end_ = Clock::now();
    if (!rsm_.HasQuorum()) {
      // Every selected site declined (spent privacy budgets, a model it cannot train): retrying
      // at once would loop; a few attempts a second apart, then stop and say why.
      const bool all_declined = rsm_.contributed().empty() &&
                                rsm_.declined().size() == rsm_.selected().size();
      all_declined_attempts_ = all_declined ? all_declined_attempts_ + 1 : 0;
      if (all_declined_attempts_ >= kMaxAllDeclinedAttempts) {
        FailLocked("round " + std::to_string(rsm_.round()) + ": every selected site declined " +
                   std::to_string(all_declined_attempts_) +
                   " attempts in a row (see their reasons above: a spent privacy budget, or a "
                   "task they cannot run); the federation cannot go on");
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
      retry_timer_.expires_after(std::chrono::seconds(1));
      retry_timer_.async_wait([this, round, attempt](const boost::system::error_code& ec) {
        if (ec) return;
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_ || rsm_.round() != round || rsm_.attempt() != attempt) return;
        StartRoundLocked(/*retry=*/true);
      });
      return;
    }
    all_declined_attempts_ = 0;
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
        FinishAggregationLocked(round, std::move(next), error);
      });
    });
  }

  // On the io_context thread, once AggregateFit has run on the pool: installs the new global
  // model and starts the evaluation, or stops the federation on an aggregation error.
  void FinishAggregationLocked(int round, ModelState next, const std::string& error) {
    aggregating_ = false;
    if (!error.empty()) {
      FailLocked("round " + std::to_string(round) + ": aggregation failed: " + error);
      return;
    }
    InstallGlobal(std::move(next), round);
    record_.aggregation_seconds = Seconds(Clock::now() - training_end_);
    StartEvaluationLocked();
  }

  // ---- secure aggregation (common/secagg/protocol.h; docs/SECURE_AGGREGATION.md) ----
  //
  // Stages 0 and 1 (keys, shares) close when every expected site has sent its message or after
  // [secure_aggregation] stage_timeout_seconds; stage 2 (masked inputs, the uploads) closes like
  // a plain round, when every member of U2 has sent or at the round deadline; stage 3 (unmasking)
  // closes when every survivor has answered or after the stage timeout with at least t answers.
  // A stage left with fewer than t sites fails the attempt: it is logged and the round is tried
  // again with fresh keys (like a round below its quorum).

  void StartSecAggLocked() {
    const SecureAggregationConfig& a = config_.secure_aggregation;
    SecAggRoundConfig c;
    c.round = rsm_.round();
    c.attempt = rsm_.attempt();
    c.participants = fit_.sites;  // sorted, distinct
    const int n = static_cast<int>(c.participants.size());
    c.neighbours = a.neighbours;
    // Holders of each site's shares: itself and its neighbours (everyone without SecAgg+).
    const int holders = a.neighbours > 0 ? std::min(a.neighbours, n - 1) + 1 : n;
    c.threshold = a.threshold > 0 ? a.threshold : std::max(2, holders / 2 + 1);
    c.clip_range = a.clip_range;
    c.quantization_bits = a.quantization_bits;
    c.weight_normalizer = 1;
    for (const auto& [name, site] : rsm_.sites()) {
      c.weight_normalizer = std::max(c.weight_normalizer, site.num_train_samples);
    }
    c.num_values = global_state_.NumValues();
    secagg_u3_.clear();
    secagg_contributors_.clear();
    if (holders < c.threshold || n < 2) {
      secagg_config_.reset();
      secagg_.reset();
      const std::string why = std::to_string(n) + " site(s) selected: each site's shares would "
                              "have " + std::to_string(holders) + " holder(s), fewer than the "
                              "threshold of " + std::to_string(std::max(2, c.threshold));
      log_->error("round {}: secure aggregation cannot run with {}; retrying in {} s", c.round,
                  why, a.stage_timeout_seconds);
      ArmSecAggTimerLocked([this, why] { SecAggFailLocked(why); });
      return;
    }
    secagg_config_ = c;
    secagg_ = std::make_shared<SecAggServer>(c, ca_pem_, std::time(nullptr));
    log_->info("round {}: secure aggregation attempt {}: {} participants, threshold {}{}, n_ref {}",
               c.round, c.attempt, n, c.threshold,
               c.neighbours > 0 ? " of each site and its " + std::to_string(c.neighbours) +
                                      " neighbours (SecAgg+)"
                                : std::string(),
               c.weight_normalizer);
    ArmSecAggTimerLocked([this] { CloseSecAggStageLocked(/*timeout=*/true); });
  }

  // Runs `on_timeout` (under mu_) after the stage timeout, unless the attempt or stage changed.
  void ArmSecAggTimerLocked(std::function<void()> on_timeout) {
    const int round = rsm_.round(), attempt = rsm_.attempt();
    const SecAggServer* server = secagg_.get();
    const auto stage = server ? server->stage() : SecAggServer::Stage::kKeys;
    secagg_timer_.expires_after(std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(config_.secure_aggregation.stage_timeout_seconds)));
    secagg_timer_.async_wait([this, round, attempt, server, stage,
                              on_timeout = std::move(on_timeout)](const boost::system::error_code& ec) {
      if (ec) return;
      std::lock_guard<std::mutex> lock(mu_);
      if (rsm_.phase() != Phase::kTraining || rsm_.round() != round ||
          rsm_.attempt() != attempt || secagg_.get() != server ||
          (server && server->stage() != stage)) {
        return;
      }
      on_timeout();
    });
  }

  // Closes the current key stage (0 or 1) or the unmasking stage when it is complete, or
  // whatever has arrived when `timeout`.
  void CloseSecAggStageLocked(bool timeout) {
    if (!secagg_) return;
    const int round = rsm_.round();
    try {
      switch (secagg_->stage()) {
        case SecAggServer::Stage::kKeys: {
          if (!timeout && !secagg_->KeysComplete()) return;
          const auto u1 = secagg_->CloseKeys();
          log_->info("round {}: secure aggregation: {} of {} sites advertised keys{}", round,
                     u1.size(), secagg_config_->participants.size(), timeout ? " (timeout)" : "");
          ArmSecAggTimerLocked([this] { CloseSecAggStageLocked(true); });
          break;
        }
        case SecAggServer::Stage::kShares: {
          if (!timeout && !secagg_->SharesComplete()) return;
          const auto u2 = secagg_->CloseShares();
          log_->info("round {}: secure aggregation: {} sites shared their keys{}", round,
                     u2.size(), timeout ? " (timeout)" : "");
          secagg_timer_.cancel();  // masked inputs: until the round deadline
          break;
        }
        case SecAggServer::Stage::kUnmasking:
          if (!timeout && !secagg_->UnmaskComplete()) return;
          StartUnmaskLocked();
          break;
        default:
          return;
      }
    } catch (const SecAggAborted& e) {
      SecAggFailLocked(e.what());
      return;
    }
    cv_.notify_all();
  }

  // Stage 2 ends (every member of U2 sent its masked input, or the round deadline passed).
  void MaybeEndSecureTrainingLocked() {
    if (!secagg_) return;
    if (secagg_->stage() == SecAggServer::Stage::kKeys ||
        secagg_->stage() == SecAggServer::Stage::kShares) {
      if (training_closed_) {
        SecAggFailLocked("the round deadline passed during the key exchange");
      }
      return;
    }
    if (secagg_->stage() != SecAggServer::Stage::kMaskedInput) return;
    if (!training_closed_ && !secagg_->MaskedInputComplete()) return;
    training_closed_ = true;
    deadline_.cancel();
    training_end_ = Clock::now();
    try {
      secagg_u3_ = secagg_->CloseMaskedInput();
    } catch (const SecAggAborted& e) {
      SecAggFailLocked(e.what());
      return;
    }
    if (static_cast<int>(secagg_u3_.size()) < config_.min_sites) {
      SecAggFailLocked(std::to_string(secagg_u3_.size()) +
                       " masked input(s), below the quorum of " + std::to_string(config_.min_sites) +
                       " ([federation] min_sites)");
      return;
    }
    for (const auto& [site, why] : secagg_->excluded()) {
      record_.secagg_excluded[site] = why;
    }
    for (uint32_t v : secagg_->u2()) {
      const std::string& site = secagg_config_->SiteAt(v);
      if (!std::binary_search(secagg_u3_.begin(), secagg_u3_.end(), v) &&
          !secagg_->excluded().count(site)) {
        record_.secagg_dropped.push_back(site);
        log_->warn("round {}: {} shared its keys but sent no masked input; its masks are removed "
                   "from its peers' shares",
                   rsm_.round(), site);
      }
    }
    log_->info("round {}: secure aggregation: {} masked inputs; asking the survivors to unmask",
               rsm_.round(), secagg_u3_.size());
    ArmSecAggTimerLocked([this] { CloseSecAggStageLocked(true); });
    cv_.notify_all();
  }

  // Unmasks on the pool (the PRG expansions are the costly part) and aggregates the sum.
  void StartUnmaskLocked() {
    secagg_timer_.cancel();
    aggregating_ = true;
    std::shared_ptr<SecAggServer> server = std::move(secagg_);
    const int round = rsm_.round();
    asio::post(pool_, [this, server, round] {
      ModelState next;
      std::string error, aborted;
      std::vector<std::string> contributors;
      try {
        const SecAggSum sum = server->Unmask();
        contributors = sum.contributors;
        // The weighted mean update: sum_k (n_k / n_ref) delta_k * n_ref / N.
        const double scale = static_cast<double>(server->config().weight_normalizer) /
                             static_cast<double>(sum.total_samples);
        ModelState mean = global_state_;  // its layout; not changed while aggregating_
        size_t i = 0;
        for (NamedTensor& t : mean.tensors) {
          for (float& v : t.values) v = static_cast<float>(sum.weighted_sum[i++] * scale);
        }
        // The strategy sees one update: the exact weighted mean with weight N (strategy.h).
        strategy_->AddUpdate("secure aggregate of " + std::to_string(contributors.size()) +
                                 " sites",
                             mean, sum.total_samples);
        next = strategy_->AggregateFit(global_state_);
      } catch (const SecAggAborted& e) {
        aborted = e.what();
      } catch (const std::exception& e) {
        error = e.what();
      }
      asio::post(io_, [this, round, next = std::move(next), error = std::move(error),
                       aborted = std::move(aborted),
                       contributors = std::move(contributors)]() mutable {
        std::lock_guard<std::mutex> lock(mu_);
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
  void SecAggFailLocked(const std::string& why) {
    secagg_failure_ = why;
    log_->error("round {} attempt {}: secure aggregation failed: {}; the round is tried again "
                "with fresh keys",
                rsm_.round(), rsm_.attempt(), why);
    secagg_.reset();
    secagg_timer_.cancel();
    StartRoundLocked(/*retry=*/true);
  }

  grpc::Status AcceptMaskedInput(const std::string& site, const v1::UpdateHeader& header,
                                 const std::string& bytes, double transfer_seconds) {
    std::lock_guard<std::mutex> lock(mu_);
    if (grpc::Status s = CheckUpdateLocked(site, header); !s.ok()) return s;
    if (!secagg_ || secagg_->stage() != SecAggServer::Stage::kMaskedInput ||
        !secagg_config_ || secagg_config_->round != header.round()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "round " + std::to_string(header.round()) +
                              " is not collecting masked inputs now");
    }
    MaskedInput input;
    input.masked.resize(bytes.size() / 4);
    for (size_t i = 0; i < input.masked.size(); ++i) {
      const auto* b = reinterpret_cast<const unsigned char*>(bytes.data()) + 4 * i;
      input.masked[i] = static_cast<uint32_t>(b[0]) | static_cast<uint32_t>(b[1]) << 8 |
                        static_cast<uint32_t>(b[2]) << 16 | static_cast<uint32_t>(b[3]) << 24;
    }
    input.complaints.assign(header.secagg_complaints().begin(), header.secagg_complaints().end());
    const std::string refused = secagg_->AddMaskedInput(site, std::move(input));
    if (!refused.empty()) {
      log_->warn("round {}: masked input of {} refused: {}", rsm_.round(), site, refused);
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, refused);
    }
    for (uint32_t v : header.secagg_complaints()) {
      log_->warn("round {}: {} reports that the key share of {} failed authentication; {} is "
                 "excluded from the round",
                 rsm_.round(), site, secagg_config_->SiteAt(v), secagg_config_->SiteAt(v));
    }
    const std::string accepted = rsm_.AcceptUpdate(site, header.round());
    if (!accepted.empty()) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, accepted);
    record_.update_sha256[site] = header.sha256();
    if (header.has_privacy()) NotePrivacyLocked(site, header.privacy(), /*declined=*/false);
    if (!header.log_entry_sha256().empty()) {
      log_heads_[site] = LogAnchor{header.log_seq(), header.log_entry_sha256()};
    }
    transfer_seconds_[site] += transfer_seconds;
    site_train_seconds_sum_ += header.train_seconds();
    log_->info("round {}: masked input from {} accepted ({:.1f} MB) - {}/{}", rsm_.round(), site,
               static_cast<double>(bytes.size()) / 1e6, rsm_.contributed().size(),
               secagg_->u2().size());
    asio::post(io_, [this] {
      std::lock_guard<std::mutex> l(mu_);
      MaybeEndTrainingLocked();
    });
    WriteStatusLocked();
    return grpc::Status::OK;
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
      ExportFinalModelLocked();
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

  // The final global model for PyTorch users (docs/MODELS.md): global_model.pt, the state dict
  // WriteCheckpointLocked wrote, and global.torchscript.pt (ExportTorchScript), which
  // torch.jit.load runs without any model code. A failed export is logged and makes Run()
  // return 2; the state dict is there in any case.
  void ExportFinalModelLocked() {
    const fs::path dir(config_.output_dir);
    if (options_.custom_model) return;  // no network to export
    const std::string script = (dir / "global.torchscript.pt").string();
    try {
      ExportTorchScript(spec_, global_state_, script);
    } catch (const std::exception& e) {
      log_->error("cannot export the global model as TorchScript: {}", e.what());
      exit_code_ = 2;
      return;
    }
    log_->info("global model: {} (state dict, torch.load) and {} (TorchScript, torch.jit.load)",
               (dir / "global_model.pt").string(), script);
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
    retry_timer_.cancel();
    secagg_timer_.cancel();
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
    if (header.secure() != secure_) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          secure_ ? "this federation takes only masked updates (secure aggregation)"
                                  : "this federation does not run secure aggregation: send the "
                                    "update itself");
    }
    if (secure_) {
      const int64_t words = global_state_.NumValues() + 1;
      if (header.size_bytes() != 4 * words) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "masked input of " + std::to_string(header.size_bytes()) +
                                " bytes, expected " + std::to_string(4 * words) + " (" +
                                std::to_string(words) + " 32-bit words)");
      }
      return grpc::Status::OK;
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
  std::string preprocessing_;                      // config_.preprocessing.Canonical()
  std::optional<ModelArchitecture> architecture_;  // of a TorchScript model; unset for the zoo
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

  // Secure aggregation ([secure_aggregation] enabled): the current attempt's server state (null
  // between attempts and while it unmasks on the pool), what the training tasks announce, the
  // survivors (kept for sites asking for stage 3 after unmasking began) and the contributors.
  bool secure_ = false;
  std::shared_ptr<SecAggServer> secagg_;
  std::optional<SecAggRoundConfig> secagg_config_;
  std::vector<uint32_t> secagg_u3_;
  std::vector<std::string> secagg_contributors_;
  std::string secagg_failure_;  // why the last attempt failed
  asio::steady_timer secagg_timer_{io_};
  // Consecutive attempts in which every selected site declined; kMaxAllDeclinedAttempts stops.
  static constexpr int kMaxAllDeclinedAttempts = 5;
  int all_declined_attempts_ = 0;
  asio::steady_timer retry_timer_{io_};
};

ImageSet LoadHeldOutSet(const CoordinatorConfig& config, const std::string& data_root,
                        const std::string& split) {
  if (config.eval_data.empty()) {
    throw ConfigError(config.config_path +
                      ": there is no held-out set to evaluate on; set [evaluation] data");
  }
  ImageSet set =
      LoadMedMnistSplit(ResolveDataPath(config.eval_data, data_root), ParseSplit(split));
  PreprocessImageSet(config.preprocessing, &set);
  return set;
}

ModelSpec FederationModelSpec(const CoordinatorConfig& config, const ImageSet* heldout) {
  ModelSpec spec;
  spec.name = config.model;
  spec.image_size = config.image_size;
  spec.in_channels = config.in_channels;
  spec.num_classes = config.num_classes;
  spec.torchscript_path = config.torchscript_path;
  if (heldout != nullptr) {
    if (spec.in_channels == 0) spec.in_channels = heldout->channels;
    if (spec.num_classes == 0) spec.num_classes = heldout->num_classes;
  }
  return spec;
}

Coordinator::Coordinator(CoordinatorConfig config, Options options)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(options))) {}
Coordinator::~Coordinator() = default;
int Coordinator::Start() { return impl_->Start(); }
int Coordinator::Run() { return impl_->Run(); }
void Coordinator::Stop() { impl_->Stop(); }
std::string Coordinator::GlobalModelBytes() const { return impl_->GlobalModelBytes(); }

}  // namespace fedmed
