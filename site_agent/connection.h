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
#include <optional>
#include <vector>
#include <string>

#include "common/metrics/classification_metrics.h"
#include "common/model/architecture.h"
#include "common/model/local_training.h"
#include "common/model/model_spec.h"
#include "common/secagg/protocol.h"
#include "common/util/error.h"

namespace fedmed {
namespace v1 {
class SecAggMessage;
}  // namespace v1

struct TlsFiles;

class RpcError : public Error {
 public:
  enum class Kind {
    kRetry,         // coordinator unreachable, restarting or overloaded: back off and retry
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

// What a site tells the coordinator when it registers (RegisterRequest in proto/fedmed.proto).
struct RegistrationInfo {
  std::string site_name;          // must equal the certificate CN
  int64_t num_train_samples = 0;  // n_k
  int64_t num_test_samples = 0;
  int64_t in_channels = 0;        // of the site's images
  int64_t num_classes = 0;        // of the site's label space
  // What this site supports beyond the base protocol ("secagg-v1").
  std::vector<std::string> capabilities;
  // PreprocessSpec::Canonical() of the site's preprocessing ("" = the MedMNIST default).
  std::string preprocessing;
  // The architecture of the site's TorchScript model, when it has one ([model]
  // torchscript_path); unset otherwise.
  std::optional<ModelArchitecture> architecture;
};

struct Registration {
  std::string session_id;
  std::string federation;
  int total_rounds = 0;
};

// A global model version as announced in a task.
struct ModelRef {
  int version = 0;
  std::string sha256;
  int64_t size_bytes = 0;
};

struct SiteTask {
  enum class Kind { kWait, kTrain, kEvaluate, kFinish } kind = Kind::kWait;
  int round = 0;
  ModelRef model;
  ModelSpec spec;             // as sent: torchscript_path is always empty
  // kTrain, kEvaluate: the federation's preprocessing, PreprocessSpec::Canonical() ("" from an
  // older coordinator).
  std::string preprocessing;
  TrainSettings settings;     // kTrain (frozen_layers included; augmentation is the site's own)
  int eval_batch_size = 256;  // kEvaluate
  double seconds_left = 0;    // until the coordinator's deadline for this task
  std::string finish_reason;  // kFinish
  // kTrain of a secure round: its parameters (common/secagg/protocol.h); unset otherwise.
  std::optional<SecAggRoundConfig> secure;
};

// What SecAggReceive got for a stage of a secure round.
struct SecAggStage {
  enum class Status { kWait, kReady, kAborted } status = Status::kWait;
  std::string reason;                 // kAborted: why
  std::vector<AdvertisedKeys> keys;   // stage 1: U1
  std::vector<EncryptedShare> inbox;  // stage 2: the shares addressed to this site
  std::vector<uint32_t> u2;           // stage 2
  std::vector<uint32_t> u3;           // stage 3
};

// What a round cost the site's privacy budget (see PrivacySpend in proto/fedmed.proto).
struct PrivacyReport {
  std::string mechanism = "none";  // "none" | "dp-sgd" | "update"
  double noise_multiplier = 0;
  double clipping_norm = 0;
  double sampling_rate = 0;
  int64_t steps = 0;
  double delta = 0;
  double epsilon_round = 0;
  double epsilon_total = 0;
  double budget_epsilon = 0;
};

struct UpdateInfo {
  int round = 0;
  int base_version = 0;
  int64_t num_samples = 0;
  int64_t local_steps = 0;
  double train_loss = 0;
  double train_seconds = 0;
  PrivacyReport privacy;
  // The entry of the site's signed privacy log that records this update (seq, SHA-256 of its
  // line); empty when the site keeps no log.
  int64_t log_seq = 0;
  std::string log_entry_sha256;
  // A secure round's masked input: the bytes are its words, num_samples is sent as 0 (the count
  // is masked with the update), and these are the peers whose key shares failed authentication.
  bool secure = false;
  std::vector<uint32_t> secagg_complaints;
};

class CoordinatorConnection {
 public:
  // `target` is host:port; the host must be a SAN of the coordinator's certificate.
  // Throws Error/CryptoError when the TLS files cannot be read or do not match.
  CoordinatorConnection(std::string target, const TlsFiles& tls);
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
  // SHA-256 differs from `ref` or from the stream header.
  std::string DownloadModel(const std::string& session_id, const ModelRef& ref);
  void UploadUpdate(const std::string& session_id, const UpdateInfo& info,
                    const std::string& update_bytes);
  void ReportEvaluation(const std::string& session_id, int round, int model_version,
                        const ClassificationMetrics& metrics, double eval_seconds);

  // Tells the coordinator that this site declines training round `round` (`reason` is logged
  // there); `privacy` carries the spend so far and what the round would have cost, and is not
  // sent when its mechanism is "none" (a task declined for another reason, e.g. a model or
  // preprocessing this site cannot train).
  void DeclineTask(const std::string& session_id, int round, const std::string& reason,
                   const PrivacyReport& privacy);
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

  // Thread-safe: cancels the call in flight, if any (it then throws RpcError), and every later
  // call. Used to stop a site promptly while it waits in a poll.
  void Cancel();

 private:
  class Stub;
  class CallScope;
  void SecAggSend(const v1::SecAggMessage& message);
  std::string target_;
  std::unique_ptr<Stub> stub_;
};

}  // namespace fedmed

#endif  // FEDMED_SITE_AGENT_CONNECTION_H_
