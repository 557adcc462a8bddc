#include "site_agent/connection.h"

#include <grpcpp/grpcpp.h>
#include <openssl/crypto.h>

#include <chrono>

#include "common/config/site_config.h"
#include "common/crypto/sha256.h"
#include "common/data/preprocess.h"
#include "common/transport/chunking.h"
#include "common/transport/secagg_wire.h"
#include "common/transport/tls.h"
#include "proto/fedmed.grpc.pb.h"

namespace fedmed {

namespace {

constexpr auto kShortCall = std::chrono::seconds(30);
constexpr auto kTransferCall = std::chrono::minutes(10);

void SetDeadline(grpc::ClientContext* context, std::chrono::milliseconds timeout) {
  context->set_deadline(std::chrono::system_clock::now() + timeout);
}

RpcError ToRpcError(const grpc::Status& status, const std::string& target, bool registering) {
  using grpc::StatusCode;
  RpcError::Kind kind = RpcError::Kind::kRetry;
  switch (status.error_code()) {
    case StatusCode::UNAUTHENTICATED:
    case StatusCode::PERMISSION_DENIED:
      kind = RpcError::Kind::kRefused;
      break;
    case StatusCode::NOT_FOUND:
      kind = RpcError::Kind::kSessionLost;
      break;
    case StatusCode::INVALID_ARGUMENT:
    case StatusCode::FAILED_PRECONDITION:
    case StatusCode::OUT_OF_RANGE:
      kind = registering ? RpcError::Kind::kRefused : RpcError::Kind::kRejected;
      break;
    default:
      kind = RpcError::Kind::kRetry;
  }
  return RpcError(kind, status.error_code(), DescribeClientError(status, target));
}

void FillPrivacy(const PrivacyReport& p, v1::PrivacySpend* out) {
  out->set_mechanism(p.mechanism);
  out->set_noise_multiplier(p.noise_multiplier);
  out->set_clipping_norm(p.clipping_norm);
  out->set_sampling_rate(p.sampling_rate);
  out->set_steps(p.steps);
  out->set_delta(p.delta);
  out->set_epsilon_round(p.epsilon_round);
  out->set_epsilon_total(p.epsilon_total);
  out->set_budget_epsilon(p.budget_epsilon);
}

}  // namespace

class CoordinatorConnection::Stub {
 public:
  explicit Stub(std::shared_ptr<grpc::Channel> channel)
      : stub(v1::Federation::NewStub(std::move(channel))) {}
  std::unique_ptr<v1::Federation::Stub> stub;
  std::mutex mu;
  grpc::ClientContext* current = nullptr;  // the call in flight, for Cancel()
  bool cancelled = false;
};

// Registers a call's context as the one in flight for the duration of the call.
class CoordinatorConnection::CallScope {
 public:
  CallScope(Stub* stub, grpc::ClientContext* context) : stub_(stub) {
    std::lock_guard<std::mutex> lock(stub_->mu);
    stub_->current = context;
    if (stub_->cancelled) context->TryCancel();
  }
  ~CallScope() {
    std::lock_guard<std::mutex> lock(stub_->mu);
    stub_->current = nullptr;
  }

 private:
  Stub* stub_;
};

void CoordinatorConnection::Cancel() {
  std::lock_guard<std::mutex> lock(stub_->mu);
  stub_->cancelled = true;
  if (stub_->current != nullptr) stub_->current->TryCancel();
}

CoordinatorConnection::CoordinatorConnection(std::string target, const TlsFiles& tls)
    : target_(std::move(target)) {
  grpc::ChannelArguments args;
  // Reconnect quickly after a coordinator restart; our own backoff paces the retries.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // A coordinator that was down must be found again within seconds, not the 30 s default.
  args.SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  stub_ = std::make_unique<Stub>(
      grpc::CreateCustomChannel(target_, MakeChannelCredentials(tls), args));
}

CoordinatorConnection::~CoordinatorConnection() = default;

Registration CoordinatorConnection::Register(const std::string& site_name,
                                             int64_t num_train_samples, int64_t num_test_samples,
                                             int64_t in_channels, int64_t num_classes,
                                             const std::vector<std::string>& capabilities) {
  RegistrationInfo info;
  info.site_name = site_name;
  info.num_train_samples = num_train_samples;
  info.num_test_samples = num_test_samples;
  info.in_channels = in_channels;
  info.num_classes = num_classes;
  info.capabilities = capabilities;
  info.preprocessing = PreprocessSpec{}.Canonical();
  return Register(info);
}

Registration CoordinatorConnection::Register(const RegistrationInfo& info) {
  grpc::ClientContext context;
  SetDeadline(&context, kShortCall);
  CallScope scope(stub_.get(), &context);
  v1::RegisterRequest request;
  request.set_site_name(info.site_name);
  request.set_num_train_samples(info.num_train_samples);
  request.set_num_test_samples(info.num_test_samples);
  request.set_in_channels(info.in_channels);
  request.set_num_classes(info.num_classes);
  request.set_software_version("fedmed 0.1.0");
  for (const std::string& c : info.capabilities) request.add_capabilities(c);
  request.set_preprocessing(info.preprocessing);
  if (info.architecture) {
    request.set_architecture_digest(info.architecture->digest);
    for (const ParameterShape& p : info.architecture->parameters) {
      v1::ParameterShape* out = request.add_architecture();
      out->set_name(p.name);
      for (const int64_t d : p.shape) out->add_shape(d);
    }
  }
  v1::RegisterReply reply;
  const grpc::Status status = stub_->stub->Register(&context, request, &reply);
  if (!status.ok()) throw ToRpcError(status, target_, /*registering=*/true);
  return Registration{reply.session_id(), reply.federation(), reply.total_rounds()};
}

SiteTask CoordinatorConnection::Poll(const std::string& session_id, int wait_ms) {
  grpc::ClientContext context;
  SetDeadline(&context, std::chrono::milliseconds(wait_ms) + kShortCall);
  CallScope scope(stub_.get(), &context);
  v1::PollRequest request;
  request.set_session_id(session_id);
  request.set_wait_ms(wait_ms);
  v1::Task reply;
  const grpc::Status status = stub_->stub->PollTask(&context, request, &reply);
  if (!status.ok()) throw ToRpcError(status, target_, false);

  SiteTask task;
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  auto fill_common = [&](int round, const v1::ModelRef& ref, const v1::ModelSpec& spec,
                         int64_t deadline_ms) {
    task.round = round;
    task.model = ModelRef{ref.version(), ref.sha256(), ref.size_bytes()};
    task.spec.name = spec.name();
    task.spec.in_channels = spec.in_channels();
    task.spec.num_classes = spec.num_classes();
    task.spec.image_size = spec.image_size();
    task.seconds_left = static_cast<double>(deadline_ms - now_ms) / 1000.0;
  };
  switch (reply.kind_case()) {
    case v1::Task::kTrain: {
      const v1::TrainTask& t = reply.train();
      task.kind = SiteTask::Kind::kTrain;
      fill_common(t.round(), t.model(), t.spec(), t.deadline_unix_ms());
      const v1::TrainSettings& s = t.settings();
      task.settings.local_epochs = s.local_epochs();
      task.settings.batch_size = s.batch_size();
      task.settings.optimizer = s.optimizer();
      task.settings.learning_rate = s.learning_rate();
      task.settings.momentum = s.momentum();
      task.settings.weight_decay = s.weight_decay();
      task.settings.seed = s.seed();
      task.settings.proximal_mu = s.proximal_mu();
      task.settings.frozen_layers.assign(s.frozen_layers().begin(), s.frozen_layers().end());
      task.preprocessing = t.preprocessing();
      if (t.has_secure_aggregation()) task.secure = FromProto(t.secure_aggregation(), t.round());
      break;
    }
    case v1::Task::kEvaluate: {
      const v1::EvaluateTask& t = reply.evaluate();
      task.kind = SiteTask::Kind::kEvaluate;
      fill_common(t.round(), t.model(), t.spec(), t.deadline_unix_ms());
      task.eval_batch_size = t.batch_size();
      task.preprocessing = t.preprocessing();
      break;
    }
    case v1::Task::kFinish:
      task.kind = SiteTask::Kind::kFinish;
      task.finish_reason = reply.finish().reason();
      break;
    default:
      task.kind = SiteTask::Kind::kWait;
  }
  return task;
}

std::string CoordinatorConnection::DownloadModel(const std::string& session_id,
                                                 const ModelRef& ref) {
  grpc::ClientContext context;
  SetDeadline(&context, kTransferCall);
  CallScope scope(stub_.get(), &context);
  v1::DownloadRequest request;
  request.set_session_id(session_id);
  request.set_version(ref.version);
  std::unique_ptr<grpc::ClientReader<v1::ModelChunk>> reader =
      stub_->stub->DownloadModel(&context, request);
  const std::string what = "global model version " + std::to_string(ref.version);
  v1::ModelChunk chunk;
  std::string bytes;
  std::string problem;
  if (!reader->Read(&chunk) || !chunk.has_header()) {
    problem = what + ": the stream did not start with a header";
  } else if (chunk.header().sha256() != ref.sha256 || chunk.header().size_bytes() != ref.size_bytes) {
    problem = what + ": the stream header (" + chunk.header().sha256() +
              ") differs from the task's (" + ref.sha256 + ")";
  } else {
    try {
      ChunkAssembler assembler(ref.size_bytes, ref.sha256, what);
      while (reader->Read(&chunk)) assembler.Append(chunk.data());
      bytes = assembler.Finish();
    } catch (const FormatError& e) {
      problem = e.what();
    }
  }
  if (!problem.empty()) {
    context.TryCancel();
    reader->Finish();
    throw RpcError(RpcError::Kind::kRejected, static_cast<int>(grpc::StatusCode::DATA_LOSS),
                   problem);
  }
  const grpc::Status status = reader->Finish();
  if (!status.ok()) throw ToRpcError(status, target_, false);
  return bytes;
}

void CoordinatorConnection::UploadUpdate(const std::string& session_id, const UpdateInfo& info,
                                         const std::string& update_bytes) {
  grpc::ClientContext context;
  SetDeadline(&context, kTransferCall);
  CallScope scope(stub_.get(), &context);
  v1::UploadReply reply;
  std::unique_ptr<grpc::ClientWriter<v1::UpdateChunk>> writer =
      stub_->stub->UploadUpdate(&context, &reply);
  v1::UpdateChunk chunk;
  v1::UpdateHeader* header = chunk.mutable_header();
  header->set_session_id(session_id);
  header->set_round(info.round);
  header->set_base_version(info.base_version);
  header->set_num_samples(info.num_samples);
  header->set_size_bytes(static_cast<int64_t>(update_bytes.size()));
  header->set_sha256(Sha256Hex(update_bytes));
  header->set_local_steps(info.local_steps);
  header->set_train_loss(info.train_loss);
  header->set_train_seconds(info.train_seconds);
  FillPrivacy(info.privacy, header->mutable_privacy());
  header->set_log_seq(info.log_seq);
  header->set_log_entry_sha256(info.log_entry_sha256);
  header->set_secure(info.secure);
  for (uint32_t v : info.secagg_complaints) header->add_secagg_complaints(v);
  if (writer->Write(chunk)) {
    ForEachChunk(update_bytes, [&](std::string_view piece) {
      chunk.set_data(piece.data(), piece.size());
      return writer->Write(chunk);
    });
  }
  writer->WritesDone();
  const grpc::Status status = writer->Finish();
  if (!status.ok()) throw ToRpcError(status, target_, false);
}

void CoordinatorConnection::DeclineTask(const std::string& session_id, int round,
                                        const std::string& reason, const PrivacyReport& privacy) {
  grpc::ClientContext context;
  SetDeadline(&context, kShortCall);
  CallScope scope(stub_.get(), &context);
  v1::DeclineRequest request;
  request.set_session_id(session_id);
  request.set_round(round);
  request.set_reason(reason);
  if (privacy.mechanism != "none") FillPrivacy(privacy, request.mutable_privacy());
  v1::DeclineReply reply;
  const grpc::Status status = stub_->stub->DeclineTask(&context, request, &reply);
  if (!status.ok()) throw ToRpcError(status, target_, false);
}

void CoordinatorConnection::ReportEvaluation(const std::string& session_id, int round,
                                             int model_version, const ClassificationMetrics& m,
                                             double eval_seconds) {
  grpc::ClientContext context;
  SetDeadline(&context, kShortCall);
  CallScope scope(stub_.get(), &context);
  v1::EvaluationReport report;
  report.set_session_id(session_id);
  report.set_round(round);
  report.set_model_version(model_version);
  report.set_eval_seconds(eval_seconds);
  v1::Metrics* out = report.mutable_metrics();
  out->set_num_samples(m.num_samples);
  out->set_num_classes(m.num_classes);
  out->set_loss(m.loss);
  out->set_accuracy(m.accuracy);
  out->set_balanced_accuracy(m.balanced_accuracy);
  out->set_auc(m.auc);
  out->set_f1(m.f1);
  out->set_sensitivity(m.sensitivity);
  out->set_specificity(m.specificity);
  for (int64_t c : m.confusion) out->add_confusion(c);
  v1::EvaluationReply reply;
  const grpc::Status status = stub_->stub->ReportEvaluation(&context, report, &reply);
  if (!status.ok()) throw ToRpcError(status, target_, false);
}

namespace {

v1::SecAggMessage SecAggHeader(const std::string& session_id, int round, int attempt) {
  v1::SecAggMessage m;
  m.set_session_id(session_id);
  m.set_round(round);
  m.set_attempt(attempt);
  return m;
}

}  // namespace

void CoordinatorConnection::SecAggSend(const v1::SecAggMessage& message) {
  grpc::ClientContext context;
  SetDeadline(&context, kShortCall);
  CallScope scope(stub_.get(), &context);
  v1::SecAggAck ack;
  const grpc::Status status = stub_->stub->SecAggSend(&context, message, &ack);
  if (!status.ok()) throw ToRpcError(status, target_, false);
}

void CoordinatorConnection::SecAggSendKeys(const std::string& session_id, int round, int attempt,
                                           const AdvertisedKeys& keys) {
  v1::SecAggMessage m = SecAggHeader(session_id, round, attempt);
  ToProto(keys, m.mutable_keys());
  SecAggSend(m);
}

void CoordinatorConnection::SecAggSendShares(const std::string& session_id, int round,
                                             int attempt,
                                             const std::vector<EncryptedShare>& shares) {
  v1::SecAggMessage m = SecAggHeader(session_id, round, attempt);
  for (const EncryptedShare& e : shares) ToProto(e, m.mutable_shares()->add_shares());
  SecAggSend(m);
}

void CoordinatorConnection::SecAggSendUnmask(const std::string& session_id, int round,
                                             int attempt,
                                             const std::vector<UnmaskShare>& shares) {
  v1::SecAggMessage m = SecAggHeader(session_id, round, attempt);
  for (const UnmaskShare& s : shares) ToProto(s, m.mutable_unmask()->add_shares());
  SecAggSend(m);
  for (int i = 0; i < m.unmask().shares_size(); ++i) {  // the shares are secrets: wipe the copy
    std::string* bytes = m.mutable_unmask()->mutable_shares(i)->mutable_share();
    OPENSSL_cleanse(bytes->data(), bytes->size());
  }
}

SecAggStage CoordinatorConnection::SecAggReceive(const std::string& session_id, int round,
                                                 int attempt, int stage, int wait_ms) {
  grpc::ClientContext context;
  SetDeadline(&context, std::chrono::milliseconds(wait_ms) + kShortCall);
  CallScope scope(stub_.get(), &context);
  v1::SecAggPoll poll;
  poll.set_session_id(session_id);
  poll.set_round(round);
  poll.set_attempt(attempt);
  poll.set_stage(stage);
  poll.set_wait_ms(wait_ms);
  v1::SecAggBroadcast reply;
  const grpc::Status status = stub_->stub->SecAggReceive(&context, poll, &reply);
  if (!status.ok()) throw ToRpcError(status, target_, false);
  SecAggStage out;
  switch (reply.status()) {
    case v1::SecAggBroadcast::READY:
      out.status = SecAggStage::Status::kReady;
      break;
    case v1::SecAggBroadcast::ABORTED:
      out.status = SecAggStage::Status::kAborted;
      break;
    default:
      out.status = SecAggStage::Status::kWait;
  }
  out.reason = reply.reason();
  for (const v1::SecAggKeys& k : reply.keys()) out.keys.push_back(FromProto(k));
  for (const v1::SecAggShare& e : reply.inbox()) out.inbox.push_back(FromProto(e));
  out.u2.assign(reply.u2().begin(), reply.u2().end());
  out.u3.assign(reply.u3().begin(), reply.u3().end());
  return out;
}

}  // namespace fedmed
