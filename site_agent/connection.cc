#include "site_agent/connection.h"

#include <grpcpp/grpcpp.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <optional>
#include <thread>

#include "common/config/site_config.h"
#include "common/crypto/sha256.h"
#include "common/data/preprocess.h"
#include "common/transport/chunking.h"
#include "common/transport/secagg_wire.h"
#include "common/transport/wire.h"
#include "common/transport/tls.h"
#include "common/util/version.h"
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
    case StatusCode::UNAVAILABLE:
      kind = RpcError::Kind::kUnreachable;
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

}  // namespace

class CoordinatorConnection::Stub {
 public:
  explicit Stub(std::shared_ptr<grpc::Channel> c)
      : channel(std::move(c)), stub(v1::Federation::NewStub(channel)) {}
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Federation::Stub> stub;
  std::mutex mu;
  grpc::ClientContext* current = nullptr;  // the call in flight, for Cancel()
  bool cancelled = false;
  // Resumable transfers (calls are made one at a time, from the agent's thread): the bytes of
  // a download that ended part-way, by the model's SHA-256, and the SHA-256 of the last update
  // whose upload was started (a resend asks the coordinator what it kept of it).
  std::string partial_download_sha256;
  std::string partial_download;
  std::string last_upload_sha256;
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

namespace {

class AttendStream final : public CoordinatorConnection::Presence {
 public:
  AttendStream(v1::Federation::Stub* stub, std::string session_id)
      : stub_(stub), session_id_(std::move(session_id)), thread_([this] { Run(); }) {}

  bool SessionLost() const override { return session_lost_; }

  ~AttendStream() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      if (context_ != nullptr) context_->TryCancel();
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Run() {
    while (true) {
      grpc::ClientContext context;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
        context_ = &context;
      }
      // Queued until the channel is connected: a stream reopened while the coordinator is away
      // starts as soon as it is back (the channel retries at least every second), so that a
      // restarted coordinator's "unknown session" reaches a training site at once.
      context.set_wait_for_ready(true);
      v1::AttendRequest request;
      request.set_session_id(session_id_);
      const auto opened = std::chrono::steady_clock::now();
      std::unique_ptr<grpc::ClientReader<v1::AttendBeat>> reader =
          stub_->Attend(&context, request);
      v1::AttendBeat beat;
      while (reader->Read(&beat)) {
      }
      const grpc::Status status = reader->Finish();
      std::unique_lock<std::mutex> lock(mu_);
      context_ = nullptr;
      if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
        session_lost_ = true;
        return;
      }
      // A stream that ended at once (refused: another one of this site's is still open) is
      // reopened a second later, not in a tight loop.
      if (std::chrono::steady_clock::now() - opened < std::chrono::seconds(1) &&
          cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; })) {
        return;
      }
    }
  }

  v1::Federation::Stub* stub_;
  const std::string session_id_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<bool> session_lost_{false};
  grpc::ClientContext* context_ = nullptr;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace

std::unique_ptr<CoordinatorConnection::Presence> CoordinatorConnection::Attend(
    const std::string& session_id) {
  return std::make_unique<AttendStream>(stub_->stub.get(), session_id);
}

void CoordinatorConnection::Cancel() {
  std::lock_guard<std::mutex> lock(stub_->mu);
  stub_->cancelled = true;
  if (stub_->current != nullptr) stub_->current->TryCancel();
}

bool CoordinatorConnection::Connected() const {
  return stub_->channel->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY;
}

bool CoordinatorConnection::WaitUntilReachable(double max_seconds) {
  using Clock = std::chrono::system_clock;
  const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(max_seconds));
  while (Clock::now() < until) {
    {
      std::lock_guard<std::mutex> lock(stub_->mu);
      if (stub_->cancelled) return false;
    }
    const grpc_connectivity_state state = stub_->channel->GetState(/*try_to_connect=*/true);
    if (state == GRPC_CHANNEL_READY) return true;
    // Slices of 100 ms, so that Cancel() is noticed promptly.
    stub_->channel->WaitForStateChange(state,
                                       std::min(until, Clock::now() + std::chrono::milliseconds(100)));
  }
  return false;
}

CoordinatorConnection::CoordinatorConnection(std::string target, const TlsFiles& tls,
                                             const ProxyRoute& route)
    : target_(std::move(target)) {
  grpc::ChannelArguments args;
  // The way out is ours to decide (ResolveProxyRoute, common/config/proxy_route.h): gRPC's own
  // reading of https_proxy / no_proxy is off. Through a proxy, the channel dials the proxy and
  // gRPC's HTTP CONNECT handshaker (the arguments its http_proxy mapper would set) asks it for a
  // tunnel to the coordinator; TLS inside the tunnel checks the coordinator's certificate
  // against target_ (the default authority), as on a direct connection.
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  std::string dial = target_;
  if (route.via_proxy) {
    dial = route.proxy.HostPort();
    args.SetString("grpc.http_connect_server", target_);
    args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, target_);
    if (!route.proxy.credentials.empty()) {
      args.SetString("grpc.http_connect_headers",
                     "Proxy-Authorization:" + route.proxy.BasicAuthorization());
    }
  }
  // Reconnect quickly after a coordinator restart: the channel tries again at least every
  // second (WaitUntilReachable returns as soon as it connects); our own backoff caps how long a
  // site waits between calls that fail for other reasons.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // A coordinator that was down must be found again within seconds, not the 30 s default.
  args.SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  stub_ = std::make_unique<Stub>(
      grpc::CreateCustomChannel(dial, MakeChannelCredentials(tls), args));
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
  RegistrationInfo sent = info;
  if (sent.software_version.empty()) sent.software_version = kFedmedVersion;
  ToProto(sent, &request);
  v1::RegisterReply reply;
  const grpc::Status status = stub_->stub->Register(&context, request, &reply);
  if (!status.ok()) throw ToRpcError(status, target_, /*registering=*/true);
  return FromProto(reply);
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

  return FromProto(reply, UnixMillisNow());
}

std::string CoordinatorConnection::DownloadModel(const std::string& session_id,
                                                 const ModelRef& ref) {
  grpc::ClientContext context;
  SetDeadline(&context, kTransferCall);
  CallScope scope(stub_.get(), &context);
  // A download of this model that ended part-way resumes after the bytes it delivered.
  std::string kept;
  if (stub_->partial_download_sha256 == ref.sha256) kept = std::move(stub_->partial_download);
  stub_->partial_download_sha256.clear();
  stub_->partial_download.clear();
  v1::DownloadRequest request;
  request.set_session_id(session_id);
  request.set_version(ref.version);
  request.set_offset(static_cast<int64_t>(kept.size()));
  std::unique_ptr<grpc::ClientReader<v1::ModelChunk>> reader =
      stub_->stub->DownloadModel(&context, request);
  const std::string what = "global model version " + std::to_string(ref.version);
  v1::ModelChunk chunk;
  std::string bytes;
  std::string problem;
  std::optional<ChunkAssembler> assembler;
  if (!reader->Read(&chunk) || !chunk.has_header()) {
    problem = what + ": the stream did not start with a header";
  } else if (chunk.header().sha256() != ref.sha256 || chunk.header().size_bytes() != ref.size_bytes) {
    problem = what + ": the stream header (" + chunk.header().sha256() +
              ") differs from the task's (" + ref.sha256 + ")";
  } else {
    try {
      assembler.emplace(ref.size_bytes, ref.sha256, what);
      if (!kept.empty()) assembler->Resume(std::move(kept));
      while (reader->Read(&chunk)) assembler->Append(chunk.data());
    } catch (const FormatError& e) {
      problem = e.what();
    }
  }
  if (problem.empty() && assembler->received() < ref.size_bytes) {
    const grpc::Status status = reader->Finish();
    if (!status.ok()) {  // cut part-way: keep what arrived for the next attempt
      stub_->partial_download_sha256 = ref.sha256;
      stub_->partial_download = assembler->TakeReceived();
      throw ToRpcError(status, target_, false);
    }
    problem = what + ": the stream ended after " + std::to_string(assembler->received()) +
              " of " + std::to_string(ref.size_bytes) + " bytes";
  }
  if (problem.empty()) {
    try {
      bytes = assembler->Finish();
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

int64_t CoordinatorConnection::UploadOffset(const std::string& session_id, int round,
                                            const std::string& sha256, int64_t size_bytes) {
  grpc::ClientContext context;
  SetDeadline(&context, kShortCall);
  CallScope scope(stub_.get(), &context);
  v1::UploadStatusRequest request;
  request.set_session_id(session_id);
  request.set_round(round);
  request.set_sha256(sha256);
  request.set_size_bytes(size_bytes);
  v1::UploadStatusReply reply;
  const grpc::Status status = stub_->stub->UploadStatus(&context, request, &reply);
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) return 0;  // an older coordinator
  if (!status.ok()) throw ToRpcError(status, target_, false);
  // Whole chunks of this update only; anything else is ignored (sent from the start).
  return reply.offset() > 0 && reply.offset() < size_bytes ? reply.offset() : 0;
}

void CoordinatorConnection::SendUpload(const UpdateHeader& header, const std::string& bytes) {
  grpc::ClientContext context;
  SetDeadline(&context, kTransferCall);
  CallScope scope(stub_.get(), &context);
  v1::UploadReply reply;
  std::unique_ptr<grpc::ClientWriter<v1::UpdateChunk>> writer =
      stub_->stub->UploadUpdate(&context, &reply);
  v1::UpdateChunk chunk;
  ToProto(header, chunk.mutable_header());
  if (writer->Write(chunk)) {
    const std::string_view rest =
        std::string_view(bytes).substr(static_cast<std::size_t>(header.offset));
    ForEachChunk(rest, [&](std::string_view piece) {
      chunk.set_data(piece.data(), piece.size());
      return writer->Write(chunk);
    });
  }
  writer->WritesDone();
  const grpc::Status status = writer->Finish();
  if (!status.ok()) throw ToRpcError(status, target_, false);
}

void CoordinatorConnection::UploadUpdate(const std::string& session_id, const UpdateInfo& info,
                                         const std::string& update_bytes) {
  UpdateHeader header;
  header.session_id = session_id;
  header.size_bytes = static_cast<int64_t>(update_bytes.size());
  header.sha256 = Sha256Hex(update_bytes);
  header.info = info;
  header.has_privacy = true;
  // The same update again (its last upload may have been cut): resume after what the
  // coordinator kept of it.
  if (stub_->last_upload_sha256 == header.sha256) {
    header.offset = UploadOffset(session_id, info.round, header.sha256, header.size_bytes);
  }
  stub_->last_upload_sha256 = header.sha256;
  try {
    SendUpload(header, update_bytes);
  } catch (const RpcError& e) {
    // The coordinator no longer holds what it said (it expired, or a restart): from the start.
    if (header.offset == 0 || e.code() != static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION)) {
      throw;
    }
    header.offset = 0;
    SendUpload(header, update_bytes);
  }
  last_upload_offset_ = header.offset;
}

void CoordinatorConnection::DeclineTask(const std::string& session_id, int round,
                                        const std::string& reason, const PrivacySpend& privacy) {
  grpc::ClientContext context;
  SetDeadline(&context, kShortCall);
  CallScope scope(stub_.get(), &context);
  DeclineRequest decline;
  decline.session_id = session_id;
  decline.round = round;
  decline.reason = reason;
  if (privacy.mechanism.mode != PrivacyMode::kNone) decline.privacy = privacy;
  v1::DeclineRequest request;
  ToProto(decline, &request);
  v1::DeclineReply reply;
  const grpc::Status status = stub_->stub->DeclineTask(&context, request, &reply);
  if (!status.ok()) throw ToRpcError(status, target_, false);
}

HelloAnswer CoordinatorConnection::Hello(double timeout_seconds) {
  grpc::ClientContext context;
  SetDeadline(&context,
              std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000)));
  CallScope scope(stub_.get(), &context);
  v1::HelloRequest request;
  request.set_software_version(kFedmedVersion);
  v1::HelloReply reply;
  const grpc::Status status = stub_->stub->Hello(&context, request, &reply);
  if (!status.ok()) throw ToRpcError(status, target_, /*registering=*/true);
  return FromProto(reply);
}

void CoordinatorConnection::ReportEvaluation(const std::string& session_id, int round,
                                             int model_version, const ClassificationMetrics& m,
                                             double eval_seconds) {
  grpc::ClientContext context;
  SetDeadline(&context, kShortCall);
  CallScope scope(stub_.get(), &context);
  EvaluationReport sent;
  sent.session_id = session_id;
  sent.round = round;
  sent.model_version = model_version;
  sent.metrics = m;
  sent.eval_seconds = eval_seconds;
  v1::EvaluationReport report;
  ToProto(sent, &report);
  v1::EvaluationReply reply;
  const grpc::Status status = stub_->stub->ReportEvaluation(&context, report, &reply);
  if (!status.ok()) throw ToRpcError(status, target_, false);
}

namespace {

SecAggMessage SecAggHeader(const std::string& session_id, int round, int attempt,
                           SecAggMessage::Stage stage) {
  SecAggMessage m;
  m.session_id = session_id;
  m.round = round;
  m.attempt = attempt;
  m.stage = stage;
  return m;
}

}  // namespace

void CoordinatorConnection::SecAggSend(const SecAggMessage& message) {
  grpc::ClientContext context;
  SetDeadline(&context, kShortCall);
  CallScope scope(stub_.get(), &context);
  v1::SecAggMessage request;
  ToProto(message, &request);
  v1::SecAggAck ack;
  const grpc::Status status = stub_->stub->SecAggSend(&context, request, &ack);
  if (request.has_unmask()) {  // the shares are secrets: wipe the copy
    for (int i = 0; i < request.unmask().shares_size(); ++i) {
      std::string* bytes = request.mutable_unmask()->mutable_shares(i)->mutable_share();
      OPENSSL_cleanse(bytes->data(), bytes->size());
    }
  }
  if (!status.ok()) throw ToRpcError(status, target_, false);
}

void CoordinatorConnection::SecAggSendKeys(const std::string& session_id, int round, int attempt,
                                           const AdvertisedKeys& keys) {
  SecAggMessage m = SecAggHeader(session_id, round, attempt, SecAggMessage::Stage::kKeys);
  m.keys = keys;
  SecAggSend(m);
}

void CoordinatorConnection::SecAggSendShares(const std::string& session_id, int round,
                                             int attempt,
                                             const std::vector<EncryptedShare>& shares) {
  SecAggMessage m = SecAggHeader(session_id, round, attempt, SecAggMessage::Stage::kShares);
  m.shares = shares;
  SecAggSend(m);
}

void CoordinatorConnection::SecAggSendUnmask(const std::string& session_id, int round,
                                             int attempt,
                                             const std::vector<UnmaskShare>& shares) {
  SecAggMessage m = SecAggHeader(session_id, round, attempt, SecAggMessage::Stage::kUnmask);
  m.unmask = shares;
  SecAggSend(m);
  for (UnmaskShare& s : m.unmask) OPENSSL_cleanse(s.share.data(), s.share.size());
}

SecAggStage CoordinatorConnection::SecAggReceive(const std::string& session_id, int round,
                                                 int attempt, int stage, int wait_ms) {
  grpc::ClientContext context;
  SetDeadline(&context, std::chrono::milliseconds(wait_ms) + kShortCall);
  CallScope scope(stub_.get(), &context);
  SecAggPoll sent{session_id, round, attempt, stage, wait_ms};
  v1::SecAggPoll poll;
  ToProto(sent, &poll);
  v1::SecAggBroadcast reply;
  const grpc::Status status = stub_->stub->SecAggReceive(&context, poll, &reply);
  if (!status.ok()) throw ToRpcError(status, target_, false);
  return FromProto(reply);
}

}  // namespace fedmed
