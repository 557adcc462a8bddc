// A site's connection to the coordinator: the five site-initiated RPCs of proto/fedmed.proto over
// one mutual-TLS gRPC channel, with models and updates streamed in chunks of at most 1 MiB and
// checked against their SHA-256 digest.
//
// Calls throw RpcError on failure; RpcError::kind() tells the caller what to do about it. gRPC and
// protobuf stay inside connection.cc.
#ifndef FEDMED_SITE_AGENT_CONNECTION_H_
#define FEDMED_SITE_AGENT_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>
#include <string>

#include "common/config/proxy_route.h"
#include "common/transport/messages.h"
#include "common/util/error.h"

namespace fedmed {
struct TlsFiles;

class RpcError : public Error {
 public:
  enum class Kind {
    kRetry,         // coordinator overloaded or a call failed: back off and retry
    kUnreachable,   // coordinator unreachable (restarting, a cut link): retry once it is back
    kSessionLost,   // the coordinator no longer knows our session (it restarted): register again
    kRejected,      // this request was refused (late update, stale model): drop it and poll again
    kRefused,       // this site is refused (certificate, allow-list, incompatible data): give up
  };
  RpcError(Kind kind, int code, const std::string& message)
      : Error(message), kind_(kind), code_(code) {}
  Kind kind() const { return kind_; }
  int code() const { return code_; }  // the grpc::StatusCode

 private:
  Kind kind_;
  int code_;
};

class CoordinatorConnection {
 public:
  // `target` is host:port; the host must be a SAN of the coordinator's certificate. `route`:
  // directly, or through an HTTP CONNECT proxy (ResolveProxyRoute,
  // common/config/proxy_route.h); the environment's proxy variables are not consulted here.
  // Throws Error/CryptoError when the TLS files cannot be read or do not match.
  CoordinatorConnection(std::string target, const TlsFiles& tls, const ProxyRoute& route = {});
  ~CoordinatorConnection();

  const std::string& target() const { return target_; }

  // Each call has its own deadline (Register/Report: 30 s; Poll: wait_ms + 30 s; transfers: 10
  // minutes) so that a vanished coordinator never hangs a site.
  // Register throws RpcError; kRefused when the coordinator refuses the site (certificate,
  // allow-list, data, preprocessing or architecture that does not fit the federation), with
  // the coordinator's reason.
  Registration Register(const RegistrationInfo& info);
  // The same with the MedMNIST default preprocessing and no TorchScript model (for tests).
  // `capabilities`: what this site supports beyond the base protocol ("secagg-v1").
  Registration Register(const std::string& site_name, int64_t num_train_samples,
                        int64_t num_test_samples, int64_t in_channels, int64_t num_classes,
                        const std::vector<std::string>& capabilities = {});
  SiteTask Poll(const std::string& session_id, int wait_ms);
  // Returns the encoded model of `ref.version`; throws RpcError(kRejected) when its size or
  // SHA-256 differs from `ref` or from the stream header. Resumable: a download cut part-way
  // (it throws the call's RpcError, kUnreachable for a cut link) keeps the bytes that arrived,
  // and the next DownloadModel of the same model (SHA-256) asks only for the rest; the digest
  // of the whole is checked.
  std::string DownloadModel(const std::string& session_id, const ModelRef& ref);
  // Uploads an update (header, then chunks). Resumable: uploading the same bytes again (the
  // last upload may have been cut part-way) first asks the coordinator how much of them it
  // kept (UploadStatus) and sends only the rest, from the start if it no longer holds them.
  // Throws RpcError as the call failed.
  void UploadUpdate(const std::string& session_id, const UpdateInfo& info,
                    const std::string& update_bytes);
  // The byte the last successful UploadUpdate started at (> 0: it was resumed).
  int64_t last_upload_offset() const { return last_upload_offset_; }
  void ReportEvaluation(const std::string& session_id, int round, int model_version,
                        const ClassificationMetrics& metrics, double eval_seconds);

  // Hello (fedmed-site check): who the coordinator is, without registering; authenticated like
  // every call, so an answer also says the certificate and name would be admitted. Deadline
  // `timeout_seconds`. Throws RpcError (kRefused for the certificate or allow-list, with the
  // coordinator's reason; kUnreachable when it cannot be reached).
  HelloAnswer Hello(double timeout_seconds);

  // Tells the coordinator that this site declines training round `round` (`reason` is logged
  // there); `privacy` carries the spend so far and what the round would have cost, and is not
  // sent when its mechanism is "none" (a task declined for another reason, e.g. a model or
  // preprocessing this site cannot train).
  void DeclineTask(const std::string& session_id, int round, const std::string& reason,
                   const PrivacySpend& privacy);
  // Secure aggregation (common/secagg/protocol.h): this site's message of stage 0 (keys),
  // 1 (shares) or 3 (unmasking shares) of round `round`, attempt `attempt`. Throws RpcError
  // (kRejected when the coordinator refuses it, with its reason).
  void SecAggSendKeys(const std::string& session_id, int round, int attempt,
                      const AdvertisedKeys& keys);
  void SecAggSendShares(const std::string& session_id, int round, int attempt,
                        const std::vector<EncryptedShare>& shares);
  void SecAggSendUnmask(const std::string& session_id, int round, int attempt,
                        const std::vector<UnmaskShare>& shares);
  // Waits up to wait_ms for what the coordinator relays at `stage` (1: U1's keys, 2: this
  // site's inbox and U2, 3: U3).
  SecAggStage SecAggReceive(const std::string& session_id, int round, int attempt, int stage,
                            int wait_ms);

  // The session's presence (the Attend stream of proto/fedmed.proto): a thread of its own keeps
  // the stream open, reopening it when it breaks (as soon as the coordinator is reachable; a
  // second later when it ended at once), until the returned object is destroyed. While it is open the coordinator knows this site is there; when the site's
  // process ends, the coordinator learns it within seconds and stops waiting for it.
  class Presence {
   public:
    virtual ~Presence() = default;
    // True once the coordinator answered the stream that it no longer knows the session (it
    // restarted: NOT_FOUND); the stream is then not reopened. What the site is doing for that
    // session (a training) is lost: it should stop and register again. Thread-safe.
    virtual bool SessionLost() const = 0;
  };
  std::unique_ptr<Presence> Attend(const std::string& session_id);

  // Thread-safe: cancels the call in flight, if any (it then throws RpcError), and every later
  // call. Used to stop a site promptly while it waits in a poll.
  void Cancel();

  // Waits up to `max_seconds` for the coordinator to be reachable again (the channel connected),
  // returning as soon as it is: a site that lost the coordinator (restarting, a cut link) waits
  // with this instead of a blind sleep, so it is back within about a second of the coordinator
  // listening again (the channel retries its connection at least every second). Returns false
  // when the time passed, or at once after Cancel().
  bool WaitUntilReachable(double max_seconds);
  // Whether the channel to the coordinator is connected now (an UNAVAILABLE answer then came
  // from the coordinator itself, e.g. while it shuts down, and calls for a normal backoff).
  bool Connected() const;

 private:
  class Stub;
  class CallScope;
  void SecAggSend(const SecAggMessage& message);
  // Resumable uploads: the bytes of an update the coordinator kept (UploadStatus; 0 from an
  // older coordinator), and one upload stream from header.offset.
  int64_t UploadOffset(const std::string& session_id, int round, const std::string& sha256,
                       int64_t size_bytes);
  void SendUpload(const UpdateHeader& header, const std::string& bytes);
  int64_t last_upload_offset_ = 0;
  std::string target_;
  std::unique_ptr<Stub> stub_;
};

}  // namespace fedmed

#endif  // FEDMED_SITE_AGENT_CONNECTION_H_
