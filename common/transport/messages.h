// The messages of the Federation protocol (proto/fedmed.proto, service fedmed.v1.Federation) as
// plain domain structs, shared by both ends: the site agent fills and reads them through
// site_agent/connection.h, the coordinator receives and answers them through
// coordinator/site_handler.h. Protobuf stays in the two files that translate (wire.h's users:
// site_agent/connection.cc and coordinator/transport/); everything else sees these structs.
//
// Nothing here is validated: what a peer sent arrives as sent. The coordinator's checks are in
// coordinator/registration.h and coordinator/update_acceptance.h.
#ifndef FEDMED_COMMON_TRANSPORT_MESSAGES_H_
#define FEDMED_COMMON_TRANSPORT_MESSAGES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/metrics/classification_metrics.h"
#include "common/model/architecture.h"
#include "common/model/local_training.h"
#include "common/model/model_spec.h"
#include "common/privacy/privacy_spend.h"
#include "common/secagg/stage_messages.h"

namespace fedmed {

// What a site tells the coordinator when it registers (RegisterRequest).
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
  // e.g. "fedmed 0.1.0": kFedmedVersion (common/util/version.h) of the site's build; the site's
  // CoordinatorConnection::Register fills it in when left empty.
  std::string software_version;
  // Not on the wire: the notAfter of the certificate the site authenticated with (seconds since
  // the epoch, UTC), set by the coordinator's service from the TLS peer; 0 = unknown.
  int64_t certificate_not_after = 0;
};

// The coordinator's answer to Hello (HelloReply): who it is, without registering.
struct HelloAnswer {
  std::string federation;
  std::string coordinator_version;  // the coordinator's kFedmedVersion, e.g. "fedmed 0.1.0"
  int64_t unix_ms = 0;  // the coordinator's clock when it answered
  std::string site;     // the identity it authenticated
};

// The coordinator's answer to a registration (RegisterReply).
struct Registration {
  std::string session_id;
  std::string federation;
  int total_rounds = 0;
};

// A global model version as announced in a task.
struct ModelRef {
  int version = 0;         // 0 = the initial model, r = after aggregating round r
  std::string sha256;      // hex digest of the encoded model state
  int64_t size_bytes = 0;  // of the encoding
};

// A task for a polling site (Task).
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
  // kTrain: how to encode the update's values ([transport] update_encoding: "float32",
  // "float16", "int8"; "" from an older coordinator = "float32"), as sent: the site checks it.
  std::string update_encoding;
};

// The update a site uploads (UpdateHeader without the transfer fields, which the connection
// fills from the bytes it sends).
struct UpdateInfo {
  int round = 0;
  int base_version = 0;       // the global model version the update is relative to
  int64_t num_samples = 0;    // n_k, the FedAvg weight (0 for a masked input: it is masked too)
  int64_t local_steps = 0;
  double train_loss = 0;      // mean training loss over the round
  double train_seconds = 0;
  // Seconds waited for a compute slot shared with other sites of the process (threads mode).
  double compute_wait_seconds = 0;
  PrivacySpend privacy;
  // The entry of the site's signed privacy log that records this update (seq, SHA-256 of its
  // line); empty when the site keeps no log.
  int64_t log_seq = 0;
  std::string log_entry_sha256;
  // A secure round's masked input: the bytes are its words (EncodeMaskedInput, secagg_wire.h),
  // and these are the peers whose key shares failed authentication.
  bool secure = false;
  std::vector<uint32_t> secagg_complaints;
};

// The header of an upload as the coordinator receives it (UpdateHeader).
struct UpdateHeader {
  std::string session_id;
  int64_t size_bytes = 0;  // of the update's encoding, as declared
  std::string sha256;      // hex, of the update's encoding, as declared
  UpdateInfo info;
  bool has_privacy = false;  // info.privacy was sent
  // Resumable uploads: the data that follows starts at this byte of the update (the
  // coordinator holds the bytes before it from an earlier stream); 0 = from the start.
  int64_t offset = 0;
};

// A site's federated-evaluation result (EvaluationReport).
struct EvaluationReport {
  std::string session_id;
  int round = 0;
  int model_version = 0;
  ClassificationMetrics metrics;
  double eval_seconds = 0;
};

// A site declines its training task (DeclineRequest).
struct DeclineRequest {
  std::string session_id;
  int round = 0;
  std::string reason;
  std::optional<PrivacySpend> privacy;  // spent so far, and the round's cost
};

// A secure-aggregation stage message of a site (SecAggMessage): exactly one of the three.
struct SecAggMessage {
  std::string session_id;
  int round = 0;
  int attempt = 0;
  enum class Stage { kNone, kKeys, kShares, kUnmask } stage = Stage::kNone;
  AdvertisedKeys keys;                // stage 0
  std::vector<EncryptedShare> shares;  // stage 1
  std::vector<UnmaskShare> unmask;     // stage 3
};

// A site waits for what the coordinator relays at a stage (SecAggPoll).
struct SecAggPoll {
  std::string session_id;
  int round = 0;
  int attempt = 0;
  int stage = 0;    // 1: U1's keys, 2: the site's inbox and U2, 3: U3
  int wait_ms = 0;  // longest the coordinator may hold the call
};

// What SecAggReceive answers for a stage of a secure round (SecAggBroadcast).
struct SecAggStage {
  enum class Status { kWait, kReady, kAborted } status = Status::kWait;
  std::string reason;                 // kAborted: why
  std::vector<AdvertisedKeys> keys;   // stage 1: U1 (the site's own and its neighbours')
  std::vector<EncryptedShare> inbox;  // stage 2: the shares addressed to this site
  std::vector<uint32_t> u2;           // stage 2
  std::vector<uint32_t> u3;           // stage 3
};

}  // namespace fedmed

#endif  // FEDMED_COMMON_TRANSPORT_MESSAGES_H_
