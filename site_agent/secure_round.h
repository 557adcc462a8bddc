// One site's part of a secure-aggregation round (common/secagg/protocol.h; Bonawitz et al.,
// CCS 2017): the key exchange before local training (stages 0 and 1), the masked upload of the
// trained update (stage 2) and the unmasking shares once the coordinator names the survivors
// (stage 3), over the site's CoordinatorConnection.
//
// The site signs its keys with its long-term Ed25519 audit key (audit.key / audit.pem beside
// its TLS key, issued by fedmed-pki) and checks its peers' signatures against the federation CA.
#ifndef FEDMED_SITE_AGENT_SECURE_ROUND_H_
#define FEDMED_SITE_AGENT_SECURE_ROUND_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "common/model/model_state.h"
#include "common/secagg/client.h"
#include "site_agent/connection.h"

namespace spdlog {
class logger;
}  // namespace spdlog

namespace fedmed {

// The capability a site announces at registration when it can run secure rounds.
inline constexpr char kSecAggCapability[] = "secagg-v1";

class SecureRound {
 public:
  // `config`: the round's parameters from the task; `site`: this site's name; `audit_key_pem`
  // and `audit_cert_pem`: its signing key and certificate; `ca_pem`: the federation CA.
  // Throws ConfigError when the site is not a participant or the parameters are invalid,
  // CryptoError when the key is not an Ed25519 PEM key.
  SecureRound(const SecAggRoundConfig& config, const std::string& site,
              const std::string& audit_key_pem, std::string audit_cert_pem, std::string ca_pem,
              std::shared_ptr<spdlog::logger> log);

  // Stages 0 and 1: advertises this site's signed keys, waits for U1, sends its encrypted key
  // shares and waits for the shares addressed to it. Returns false when the attempt was aborted
  // (the reason is logged) or `stopping` became true; RpcError propagates.
  bool ExchangeKeys(CoordinatorConnection& connection, const std::string& session,
                    const std::atomic<bool>& stopping);

  // Stage 2: the masked input for `delta` (weighted by num_samples / weight_normalizer) as the
  // bytes to upload (num_values + 1 little-endian uint32 words); sets info->secure, the
  // complaints and num_samples = 0. Throws DataError when delta has the wrong number of values.
  std::string MaskUpdate(const ModelState& delta, int64_t num_samples, UpdateInfo* info);

  // Stage 3: waits for the survivors and sends this site's unmasking shares. Returns false when
  // the attempt was aborted or `stopping` became true.
  bool Unmask(CoordinatorConnection& connection, const std::string& session,
              const std::atomic<bool>& stopping);

 private:
  // Polls SecAggReceive for `stage` until it is ready (true) or aborted / stopping (false).
  bool Await(CoordinatorConnection& connection, const std::string& session, int stage,
             const std::atomic<bool>& stopping, SecAggStage* out);

  SecAggClient client_;
  std::shared_ptr<spdlog::logger> log_;
  std::vector<EncryptedShare> inbox_;
  std::vector<uint32_t> u2_;
};

}  // namespace fedmed

#endif  // FEDMED_SITE_AGENT_SECURE_ROUND_H_
