#include "coordinator/transport/service.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "common/crypto/crl.h"
#include "common/transport/chunking.h"
#include "common/transport/client_auth.h"
#include "common/transport/tls.h"
#include "common/transport/wire.h"
#include "common/crypto/pki.h"
#include "common/util/error.h"
#include "coordinator/transport/admin_service.h"
#include "coordinator/call_limits.h"
#include "coordinator/partial_uploads.h"
#include "coordinator/transport/grpc_status.h"
#include "proto/fedmed.grpc.pb.h"

namespace fedmed {

namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Decodes a request; INVALID_ARGUMENT for a field that cannot be decoded (wire.h).
template <class Proto, class Domain>
Status Decode(const Proto& in, Domain* out) {
  try {
    *out = FromProto(in);
  } catch (const FormatError& e) {
    return Status::InvalidArgument(e.what());
  }
  return Status::OK();
}

// ToGrpc: grpc_status.h, the one mapping of the domain's Status to gRPC's.

// Calls that wait (polls) wait in slices of this, so that a call whose peer went away (a site
// process killed, a connection cut) frees its slot and thread within a second.
constexpr int kWaitSliceMs = 1000;
// Holds a waiting call (a poll) for up to `wait_ms` (at most 30 s) in slices of kWaitSliceMs:
// `ask(slice_ms)` waits up to one slice and returns its Status and whether it has an answer.
// Returns at the first answer or refusal, when the call is cancelled, or when the time is up.
template <class Ask>
Status HoldInSlices(const grpc::ServerContext& context, int wait_ms, Ask ask) {
  using std::chrono::steady_clock;
  const auto until = steady_clock::now() + std::chrono::milliseconds(std::clamp(wait_ms, 0, 30000));
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - steady_clock::now()).count();
    const auto [status, answered] = ask(static_cast<int>(std::clamp<int64_t>(left, 0, kWaitSliceMs)));
    if (!status.ok() || answered || context.IsCancelled() || steady_clock::now() >= until) {
      return status;
    }
  }
}

// How often the Attend stream writes a beat.
constexpr int kBeatMs = 2000;
// How long the part of an upload that ended part-way is kept for the site to resume it.
constexpr auto kKeepPartialUploads = std::chrono::minutes(15);

class FederationService final : public v1::Federation::Service {
 public:
  FederationService(SiteHandler* handler, std::string ca_pem, std::vector<std::string> allowed,
                    const ServiceLimits& limits, std::shared_ptr<spdlog::logger> logger,
                    std::shared_ptr<const ClientAuthPolicy> policy)
      : handler_(handler),
        upload_idle_(std::chrono::duration_cast<IdleWatch::Clock::duration>(
            std::chrono::duration<double>(limits.upload_idle_seconds))),
        ca_pem_(std::move(ca_pem)),
        allowed_(std::move(allowed)),
        limits_(limits),
        log_(std::move(logger)),
        policy_(std::move(policy)) {}

  grpc::Status Register(grpc::ServerContext* context, const v1::RegisterRequest* request,
                        v1::RegisterReply* reply) override {
    std::string site;
    if (grpc::Status s = Authenticate(*context, "Register", &site); !s.ok()) return s;
    Registration registration;
    RegistrationInfo info = FromProto(*request);
    info.certificate_not_after = PeerNotAfter(*context);
    const Status s = handler_->Register(site, info, &registration);
    if (s.ok()) {
      ToProto(registration, reply);
      // Where the connection comes from: the site itself, or its outbound proxy or NAT.
      log_->info("{} registered from {}", site, context->peer());
    }
    return ToGrpc(s);
  }

  grpc::Status PollTask(grpc::ServerContext* context, const v1::PollRequest* request,
                        v1::Task* task) override {
    std::string site;
    if (grpc::Status s = Authenticate(*context, "PollTask", &site); !s.ok()) return s;
    const auto slot = in_flight_.Take(site, "PollTask");
    if (!slot) return Busy(site, "PollTask");
    SiteTask domain;
    const Status s = HoldInSlices(*context, request->wait_ms(), [&](int slice_ms) {
      if (Status revoked = Revoked(*context, "PollTask"); !revoked.ok()) {
        return std::make_pair(revoked, true);
      }
      const Status polled = handler_->Poll(site, request->session_id(), slice_ms, &domain);
      return std::make_pair(polled, domain.kind != SiteTask::Kind::kWait);
    });
    if (s.ok()) ToProto(domain, UnixMillisNow(), task);
    return ToGrpc(s);
  }

  grpc::Status DownloadModel(grpc::ServerContext* context, const v1::DownloadRequest* request,
                             grpc::ServerWriter<v1::ModelChunk>* writer) override {
    std::string site;
    if (grpc::Status s = Authenticate(*context, "DownloadModel", &site); !s.ok()) return s;
    const auto slot = in_flight_.Take(site, "DownloadModel");
    if (!slot) return Busy(site, "DownloadModel");
    std::shared_ptr<const EncodedModel> model;
    if (const Status s = handler_->GetModel(site, request->session_id(), request->version(), &model);
        !s.ok()) {
      return ToGrpc(s);
    }
    const auto start = std::chrono::steady_clock::now();
    v1::ModelChunk chunk;
    v1::ModelRef* header = chunk.mutable_header();
    header->set_version(model->version);
    header->set_sha256(model->sha256);
    header->set_size_bytes(static_cast<int64_t>(model->bytes.size()));
    if (!writer->Write(chunk)) return Cancelled(site, "DownloadModel");
    // A resumed download: the data starts at the site's offset (the header is the whole model's).
    const int64_t offset = request->offset();
    if (offset < 0 || offset > static_cast<int64_t>(model->bytes.size())) {
      return grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                          "download offset " + std::to_string(offset) + " is outside the " +
                              std::to_string(model->bytes.size()) + " bytes of the model");
    }
    if (offset > 0) {
      log_->info("download of global model version {} by {} resumed at byte {} of {}",
                 model->version, site, offset, model->bytes.size());
    }
    const std::string_view rest = std::string_view(model->bytes).substr(offset);
    const bool sent = ForEachChunk(rest, [&](std::string_view piece) {
      chunk.set_data(piece.data(), piece.size());
      return writer->Write(chunk);
    });
    if (!sent) return Cancelled(site, "DownloadModel");
    handler_->RecordDownload(site, SecondsSince(start));
    return grpc::Status::OK;
  }

  grpc::Status UploadUpdate(grpc::ServerContext* context,
                            grpc::ServerReader<v1::UpdateChunk>* reader,
                            v1::UploadReply* reply) override {
    std::string site;
    if (grpc::Status s = Authenticate(*context, "UploadUpdate", &site); !s.ok()) return s;
    const auto slot = in_flight_.Take(site, "UploadUpdate");
    if (!slot) return Busy(site, "UploadUpdate");
    const auto start = std::chrono::steady_clock::now();
    IdleWatch::Entry watch = upload_idle_.Watch([context] { context->TryCancel(); });
    v1::UpdateChunk chunk;
    if (!reader->Read(&chunk) || !chunk.has_header()) {
      if (watch.fired()) return Stalled(site);
      return Reject(site, grpc::StatusCode::INVALID_ARGUMENT,
                    "update stream must start with an UpdateHeader");
    }
    UpdateHeader header;
    if (const Status s = Decode(chunk.header(), &header); !s.ok()) {
      log_->warn("rejected update header from {}: {}", site, s.message());
      return ToGrpc(s);
    }
    if (const Status s = handler_->CheckUpdate(site, header); !s.ok()) {
      log_->warn("rejected update header from {}: {}", site, s.message());
      return ToGrpc(s);
    }
    const std::string what =
        "update from " + site + " for round " + std::to_string(header.info.round);
    // A resumed upload continues the bytes kept from the site's earlier stream of this update.
    const PartialUploads::Key key{header.info.round, header.sha256, header.size_bytes};
    std::optional<std::string> kept = partial_uploads_.Take(site, key, Now());
    if (header.offset != 0 && (!kept || static_cast<int64_t>(kept->size()) != header.offset)) {
      return Reject(site, grpc::StatusCode::FAILED_PRECONDITION,
                    what + ": resumed at byte " + std::to_string(header.offset) +
                        ", but the coordinator holds " + std::to_string(kept ? kept->size() : 0) +
                        " bytes of it; send it from the start");
    }
    if (header.offset != 0) {
      log_->info("{}: upload resumed at byte {} of {} (kept from its earlier stream)", what,
                 header.offset, header.size_bytes);
    }
    std::string bytes;
    try {
      ChunkAssembler assembler(header.size_bytes, header.sha256, what);
      if (header.offset != 0) assembler.Resume(std::move(*kept));
      watch.Touch();
      while (reader->Read(&chunk)) {
        watch.Touch();
        if (!chunk.has_data()) throw FormatError(what + ": a second header inside the stream");
        assembler.Append(chunk.data());
      }
      if (watch.fired() || context->IsCancelled()) {
        // Cut part-way (the link, the site, or a stall): what arrived is kept for a resume.
        const int64_t received = assembler.received();
        if (received > 0 && received < header.size_bytes) {
          log_->warn("{}: upload ended after {} of {} bytes; kept for {} to resume", what,
                     received, header.size_bytes, site);
          partial_uploads_.Keep(site, key, assembler.TakeReceived(), Now());
        }
        return watch.fired() ? Stalled(site) : Cancelled(site, "UploadUpdate");
      }
      bytes = assembler.Finish();
    } catch (const FormatError& e) {
      handler_->UploadFailed(site, Status::InvalidArgument(e.what()));
      return Reject(site, grpc::StatusCode::INVALID_ARGUMENT, e.what());
    }
    const Status s = handler_->AcceptUpdate(site, header, std::move(bytes), SecondsSince(start));
    if (!s.ok()) {
      log_->warn("rejected {}: {}", what, s.message());
      return ToGrpc(s);
    }
    reply->set_accepted(true);
    return grpc::Status::OK;
  }

  grpc::Status UploadStatus(grpc::ServerContext* context, const v1::UploadStatusRequest* request,
                            v1::UploadStatusReply* reply) override {
    std::string site;
    if (grpc::Status s = Authenticate(*context, "UploadStatus", &site); !s.ok()) return s;
    // Only the authenticated site's own partial upload is ever looked at.
    const PartialUploads::Key key{request->round(), request->sha256(), request->size_bytes()};
    reply->set_offset(partial_uploads_.Offset(site, key, Now()));
    return grpc::Status::OK;
  }

  grpc::Status ReportEvaluation(grpc::ServerContext* context, const v1::EvaluationReport* report,
                                v1::EvaluationReply* reply) override {
    std::string site;
    if (grpc::Status s = Authenticate(*context, "ReportEvaluation", &site); !s.ok()) return s;
    const Status s = handler_->AcceptEvaluation(site, FromProto(*report));
    if (!s.ok()) log_->warn("refused evaluation report from {}: {}", site, s.message());
    reply->set_accepted(s.ok());
    return ToGrpc(s);
  }

  grpc::Status DeclineTask(grpc::ServerContext* context, const v1::DeclineRequest* request,
                           v1::DeclineReply* reply) override {
    std::string site;
    if (grpc::Status s = Authenticate(*context, "DeclineTask", &site); !s.ok()) return s;
    DeclineRequest decline;
    Status s = Decode(*request, &decline);
    if (s.ok()) s = handler_->DeclineTask(site, decline);
    if (!s.ok()) log_->warn("refused decline from {}: {}", site, s.message());
    reply->set_accepted(s.ok());
    return ToGrpc(s);
  }

  grpc::Status SecAggSend(grpc::ServerContext* context, const v1::SecAggMessage* request,
                          v1::SecAggAck* reply) override {
    std::string site;
    if (grpc::Status s = Authenticate(*context, "SecAggSend", &site); !s.ok()) return s;
    const Status s = handler_->SecAggSend(site, FromProto(*request));
    if (!s.ok()) log_->warn("refused secure-aggregation message from {}: {}", site, s.message());
    reply->set_accepted(s.ok());
    return ToGrpc(s);
  }

  grpc::Status Attend(grpc::ServerContext* context, const v1::AttendRequest* request,
                      grpc::ServerWriter<v1::AttendBeat>* writer) override {
    std::string site;
    if (grpc::Status s = Authenticate(*context, "Attend", &site); !s.ok()) return s;
    const auto slot = in_flight_.Take(site, "Attend");
    if (!slot) return Busy(site, "Attend");
    if (const Status s = handler_->Attend(site, request->session_id()); !s.ok()) return ToGrpc(s);
    // Held until the peer goes away (or the server shuts down, which cancels it): checked every
    // 100 ms, and a beat written every kBeatMs finds a connection that broke without a word.
    // A certificate revoked meanwhile ends the session (checked each second: the CRL is re-read
    // at most once a second).
    v1::AttendBeat beat;
    auto next_beat = std::chrono::steady_clock::now();
    auto next_revocation_check = next_beat;
    Status revoked;
    while (!context->IsCancelled()) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= next_revocation_check) {
        revoked = Revoked(*context, "Attend");
        if (!revoked.ok()) break;
        next_revocation_check = now + std::chrono::seconds(1);
      }
      if (now >= next_beat) {
        if (!writer->Write(beat)) break;
        next_beat += std::chrono::milliseconds(kBeatMs);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    // A site that another call refused as revoked may leave before this loop's next check.
    if (revoked.ok() && !CheckNotRevoked(*context, *policy_).ok()) {
      revoked = Status::PermissionDenied("its certificate was revoked");
    }
    handler_->SiteGone(site, request->session_id());
    if (!revoked.ok()) {
      log_->warn("ended the session of {}: its certificate was revoked", site);
      return ToGrpc(revoked);
    }
    return grpc::Status(grpc::StatusCode::CANCELLED, "Attend ended");
  }

  grpc::Status SecAggReceive(grpc::ServerContext* context, const v1::SecAggPoll* request,
                             v1::SecAggBroadcast* reply) override {
    std::string site;
    if (grpc::Status s = Authenticate(*context, "SecAggReceive", &site); !s.ok()) return s;
    const auto slot = in_flight_.Take(site, "SecAggReceive");
    if (!slot) return Busy(site, "SecAggReceive");
    SecAggPoll poll = FromProto(*request);
    SecAggStage stage;
    const Status s = HoldInSlices(*context, poll.wait_ms, [&](int slice_ms) {
      poll.wait_ms = slice_ms;
      stage = SecAggStage{};
      const Status received = handler_->SecAggReceive(site, poll, &stage);
      return std::make_pair(received, stage.status != SecAggStage::Status::kWait);
    });
    if (s.ok()) ToProto(stage, reply);
    return ToGrpc(s);
  }

  grpc::Status Hello(grpc::ServerContext* context, const v1::HelloRequest* request,
                     v1::HelloReply* reply) override {
    std::string site;
    if (grpc::Status s = Authenticate(*context, "Hello", &site); !s.ok()) return s;
    HelloAnswer answer;
    const Status s = handler_->Hello(site, request->software_version(), &answer);
    if (s.ok()) ToProto(answer, reply);
    return ToGrpc(s);
  }

 private:
  // The notAfter of the peer's certificate (seconds since the epoch); 0 when it cannot be read
  // (the call was authenticated, so it can).
  static int64_t PeerNotAfter(const grpc::ServerContext& context) {
    try {
      return static_cast<int64_t>(InspectCertificate(PeerCertificatePem(context)).not_after);
    } catch (const std::exception&) {
      return 0;
    }
  }

  grpc::Status Authenticate(const grpc::ServerContext& context, const char* rpc,
                            std::string* site) {
    grpc::Status s = AuthenticatePeer(context, ca_pem_, allowed_, site);
    if (s.ok()) s = CheckNotRevoked(context, *policy_);
    if (!s.ok()) log_->warn("{} from {} {}", rpc, context.peer(), s.error_message());
    return s;
  }

  // PERMISSION_DENIED (logged) when the peer's certificate has been revoked since the call began.
  Status Revoked(const grpc::ServerContext& context, const char* rpc) {
    const grpc::Status s = CheckNotRevoked(context, *policy_);
    if (s.ok()) return Status::OK();
    log_->warn("{} from {} {}", rpc, context.peer(), s.error_message());
    return Status::PermissionDenied(s.error_message());
  }

  grpc::Status Reject(const std::string& site, grpc::StatusCode code, const std::string& why) {
    log_->warn("rejected update from {}: {}", site, why);
    return grpc::Status(code, why);
  }

  grpc::Status Busy(const std::string& site, const char* rpc) {
    log_->warn("refused a second {} of {} while one is in flight", rpc, site);
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        std::string(rpc) + ": " + site + " already has one in flight");
  }

  // An upload the IdleWatch cancelled: the site's attempt failed (it may upload again), and
  // nothing counts toward its exclusion (a slow link is not a fault).
  grpc::Status Stalled(const std::string& site) {
    const std::string why = fmt::format(
        "upload of {} cancelled: no data for {:g} s ([federation] upload_idle_seconds)", site,
        limits_.upload_idle_seconds);
    log_->warn("{}", why);
    handler_->UploadFailed(site, Status::Unavailable(why));
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, why);
  }

  grpc::Status Cancelled(const std::string& site, const char* rpc) {
    log_->warn("{} with {} was cancelled by the peer", rpc, site);
    return grpc::Status(grpc::StatusCode::CANCELLED, std::string(rpc) + " cancelled");
  }

  static PartialUploads::Clock::time_point Now() { return PartialUploads::Clock::now(); }

  SiteHandler* handler_;
  InFlight in_flight_;
  PartialUploads partial_uploads_{kKeepPartialUploads};
  IdleWatch upload_idle_;
  const std::string ca_pem_;
  const std::vector<std::string> allowed_;
  const ServiceLimits limits_;
  std::shared_ptr<spdlog::logger> log_;
  const std::shared_ptr<const ClientAuthPolicy> policy_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeFederationService(SiteHandler* handler, std::string ca_pem,
                                                     std::vector<std::string> allowed_sites,
                                                     const ServiceLimits& limits,
                                                     std::shared_ptr<spdlog::logger> logger,
                                                     std::shared_ptr<CrlWatcher> crl) {
  auto policy = std::make_shared<const ClientAuthPolicy>(
      ClientAuthPolicy{ca_pem, allowed_sites, std::move(crl)});
  return std::make_unique<FederationService>(handler, std::move(ca_pem), std::move(allowed_sites),
                                             limits, std::move(logger), std::move(policy));
}

class FederationServer::Impl {
 public:
  std::unique_ptr<grpc::Service> service;
  std::unique_ptr<grpc::Service> admin;  // the Admin service, when AdminAccess has a handler
  std::unique_ptr<grpc::Server> server;
};

FederationServer::FederationServer(SiteHandler* handler, const std::string& listen_address,
                                   const TlsFiles& tls, std::string ca_pem,
                                   std::vector<std::string> allowed_sites,
                                   const ServiceLimits& limits,
                                   std::shared_ptr<spdlog::logger> logger,
                                   std::shared_ptr<CrlWatcher> crl,
                                   AdminAccess admin)
    : impl_(std::make_unique<Impl>()) {
  const size_t sites = allowed_sites.size();
  const std::shared_ptr<spdlog::logger> admin_log = logger;
  // Clients are authenticated in the TLS handshake (client_auth.h); the service checks again.
  auto policy =
      std::make_shared<const ClientAuthPolicy>(ClientAuthPolicy{ca_pem, allowed_sites, crl});
  auto credentials = MakeAuthenticatingServerCredentials(
      tls, policy, [logger](const std::string& refusal) { logger->warn("{}", refusal); });
  impl_->service = MakeFederationService(handler, std::move(ca_pem), std::move(allowed_sites),
                                         limits, std::move(logger), std::move(crl));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen_address, credentials, &port_);
  builder.RegisterService(impl_->service.get());
  if (admin.handler != nullptr) {
    impl_->admin =
        MakeAdminService(admin.handler, std::move(admin.status_json), policy, admin_log);
    builder.RegisterService(impl_->admin.get());
  }
  // A connection that drops silently (a cut link, a machine off) is found by pings within
  // about 24 s and its calls cancelled (a site's Attend stream among them: the site is gone);
  // sites ping every 30 s (connection.cc), allowed from 10 s. A ping waits behind the data
  // already queued on the link: on a slow one (1 Mbit/s, a 4.8 MB model) an answer took over
  // 2 s and a shorter timeout cut live downloads; a process that ends closes its connection,
  // which is noticed at once.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 4000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  grpc::ResourceQuota quota("fedmed-coordinator");
  // Polls are held open: allow a few threads per allowed site.
  quota.SetMaxThreads(static_cast<int>(16 + 4 * sites));
  builder.SetResourceQuota(quota);
  impl_->server = builder.BuildAndStart();
  if (!impl_->server || port_ == 0) {
    throw Error("cannot listen on " + listen_address +
                " ([coordinator] listen): address in use or invalid?");
  }
}

FederationServer::~FederationServer() { Shutdown(1.0); }

void FederationServer::Shutdown(double grace_seconds) {
  if (!impl_->server) return;
  impl_->server->Shutdown(std::chrono::system_clock::now() +
                          std::chrono::milliseconds(static_cast<int64_t>(grace_seconds * 1000)));
  impl_->server->Wait();
  impl_->server.reset();
}

}  // namespace fedmed
