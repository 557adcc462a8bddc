// The coordinator's side of a secure round (Bonawitz et al., CCS 2017; the protocol is
// common/secagg/protocol.h, the design docs/SECURE_AGGREGATION.md): the mirror of
// site_agent/secure_round.h. One SecureRound per coordinator; each attempt of a round begins a
// fresh SecAggServer with fresh keys.
//
// Stages, and who closes them (the round flow, round_flow.h, owns the timers and calls Close):
//   0 keys, 1 shares      close when every expected site has sent, or at the stage timeout
//   2 masked inputs       the round's uploads: close like a plain round, when every member of U2
//                         has sent or at the round deadline (CloseMaskedInput)
//   3 unmasking           closes when every survivor has answered, or at the stage timeout with
//                         at least t answers; then Unmask runs on the compute pool
// A stage left with fewer than t sites throws SecAggAborted: the round flow logs it and tries
// the round again with fresh keys.
//
// Not thread-safe: the round flow calls it under its lock.
#ifndef FEDMED_COORDINATOR_SECURE_ROUND_H_
#define FEDMED_COORDINATOR_SECURE_ROUND_H_

#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config/coordinator_config.h"
#include "common/model/model_state.h"
#include "common/secagg/server.h"
#include "common/transport/messages.h"
#include "common/util/status.h"

namespace fedmed {

class SecureRound {
 public:
  // What Close did.
  enum class Step {
    kNothing,       // the stage is not complete (and no timeout)
    kKeysClosed,    // U1 fixed: the sites may fetch the keys; arm the stage timer again
    kSharesClosed,  // U2 fixed: masked inputs until the round deadline
    kUnmask,        // enough unmasking shares: take the server and Unmask it on the pool
  };

  // The sum of a round's masked inputs, unmasked: the weighted mean update.
  struct Result {
    ModelState mean;                       // sum_k n_k delta_k / N, the global model's layout
    int64_t total_samples = 0;             // N
    std::vector<std::string> contributors;  // U3 by name
  };

  SecureRound(SecureAggregationConfig config, std::string ca_pem);

  // Begins an attempt with `participants` (sorted, distinct). `weight_normalizer`: n_ref, the
  // largest registered sample count; `num_values`: the model's. Returns "" when it runs, else
  // why it cannot (too few participants for the threshold): the caller retries after the stage
  // timeout.
  std::string Begin(int round, int attempt, const std::vector<std::string>& participants,
                    int64_t weight_normalizer, int64_t num_values, std::time_t now);
  // Ends the attempt (it failed: `why` is kept for sites that poll later).
  void Abort(const std::string& why);

  // The parameters the training tasks announce; unset when the attempt could not begin.
  const std::optional<SecAggRoundConfig>& config() const { return config_; }
  // Whether the attempt's server is collecting (not between attempts, not unmasking).
  bool active() const { return server_ != nullptr; }
  SecAggServer::Stage stage() const;
  bool KeyExchangeOpen() const;    // stage 0 or 1
  bool CollectingMaskedInputs() const;

  // Whether a selected site that polls gets its training task now: only while the keys are
  // collected and it has not sent its own (a later one waits for the next attempt).
  bool TakesTrainee(const std::string& site) const;

  // A stage message of `site` (stage 0, 1 or 3) for the attempt in progress. FAILED_PRECONDITION
  // when refused; `excluded` receives why the site is now excluded from the round ("" if not).
  Status Add(const std::string& site, const SecAggMessage& message, std::string* excluded);
  // A masked input (stage 2): the upload's bytes (EncodeMaskedInput). FAILED_PRECONDITION when
  // the attempt does not collect masked inputs for this round, INVALID_ARGUMENT for bytes that
  // are not words, or the protocol's refusal.
  Status AddMaskedInput(const std::string& site, const UpdateHeader& header,
                        const std::string& bytes);

  // The answer to a site's SecAggReceive for the current round and attempt; false when the site
  // must wait (the stage it asks for is not closed yet).
  bool Answer(const std::string& site, const SecAggPoll& poll, SecAggStage* out) const;

  // `site` is gone: the attempt's stages stop waiting for it (SecAggServer::MarkGone).
  void MarkGone(const std::string& site) {
    if (server_) server_->MarkGone(site);
  }

  // Closes stage 0, 1 or 3 when complete, or with what has arrived when `timeout`. Throws
  // SecAggAborted when too few sites are left.
  Step Close(bool timeout);
  bool MaskedInputComplete() const;
  // Closes stage 2: U3, the survivors. Throws SecAggAborted.
  const std::vector<uint32_t>& CloseMaskedInput();

  // Sites excluded for misbehaving (name -> why), and those in U2 that sent no masked input.
  std::map<std::string, std::string> excluded() const;
  std::vector<std::string> Dropped() const;
  const std::vector<uint32_t>& survivors() const { return u3_; }

  // Hands the attempt's server over for unmasking (the attempt stays answerable for stage 3).
  std::shared_ptr<SecAggServer> TakeServer();
  // Unmasks the survivors' sum (the costly PRG expansions: run it on the compute pool) into the
  // weighted mean update in `layout`. Throws SecAggAborted.
  static Result Unmask(SecAggServer& server, const ModelState& layout);

  const std::string& failure() const { return failure_; }

 private:
  SecureAggregationConfig settings_;
  std::string ca_pem_;
  std::shared_ptr<SecAggServer> server_;   // null between attempts and while unmasking
  std::optional<SecAggRoundConfig> config_;
  std::vector<uint32_t> u3_;
  std::string failure_;  // why the last attempt failed
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_SECURE_ROUND_H_
