// One site's side of a secure-aggregation round attempt (common/secagg/protocol.h describes the
// protocol; site_agent/secure_round.h carries its messages over the site's connection): fresh
// X25519 keys (stage 0), the Shamir shares of its secrets sealed for its peers (stage 1), its
// masked input (stage 2), and the shares it reveals to unmask the sum (stage 3).
//
// Secrets (the key pairs' private halves, the self-mask seed b_u, the shares received) live in
// SecretBytes or are wiped after use; Unmask wipes what is left.
#ifndef FEDMED_COMMON_SECAGG_CLIENT_H_
#define FEDMED_COMMON_SECAGG_CLIENT_H_

#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/crypto/audit_key.h"
#include "common/secagg/key_agreement.h"
#include "common/secagg/round_config.h"
#include "common/secagg/stage_messages.h"

namespace fedmed {

// One site's side of one round attempt. Not thread-safe; call the stages in order.
class SecAggClient {
 public:
  // `site` must be a participant of `config`; `signer` is its long-term Ed25519 key and
  // `certificate_pem` the matching audit certificate; `ca_pem` the federation CA for checking
  // peers. Throws ConfigError when `site` is not a participant or config is invalid.
  SecAggClient(SecAggRoundConfig config, std::string site, AuditSigningKey signer,
               std::string certificate_pem, std::string ca_pem);
  ~SecAggClient();
  SecAggClient(SecAggClient&&) = default;
  SecAggClient& operator=(SecAggClient&&) = default;

  uint32_t index() const { return index_; }
  const SecAggRoundConfig& config() const { return config_; }

  // Stage 0: fresh X25519 key pairs c and s, signed.
  AdvertisedKeys AdvertiseKeys();

  // Stage 1: checks every entry of `u1` (CheckAdvertisedKeys at `now`), then returns one sealed
  // share for each member of U1 that is this site or one of its neighbours. Throws
  // SecAggAborted when U1 has fewer than t members, does not include this site, has an entry
  // whose check fails (naming it: the coordinator must have relayed something the peer did not
  // sign) or repeats an index.
  std::vector<EncryptedShare> ShareKeys(const std::vector<AdvertisedKeys>& u1, std::time_t now);

  // Stage 2: opens `inbox` (the shares addressed to this site by members of `u2`), and masks
  // `values` (num_values weighted update values x_u, float32) and `num_samples` (n_u >= 1).
  // Throws SecAggAborted when u2 has fewer than t members, lacks this site or names a site not
  // in U1; DataError for a NaN value or a wrong count.
  MaskedInput MaskInput(const std::vector<EncryptedShare>& inbox, const std::vector<uint32_t>& u2,
                        const std::vector<float>& values, int64_t num_samples);

  // Stage 3: the shares to reveal for survivors `u3` (sorted indices). Throws SecAggAborted
  // when u3 has fewer than t members, is not a subset of U2 or lacks this site. Wipes the
  // secrets this client held.
  std::vector<UnmaskShare> Unmask(const std::vector<uint32_t>& u3);

 private:
  SecAggRoundConfig config_;
  std::string site_;
  uint32_t index_;
  AuditSigningKey signer_;
  std::string certificate_pem_;
  std::string ca_pem_;
  std::optional<X25519KeyPair> c_keys_, s_keys_;
  SecretBytes b_seed_;  // the self-mask seed b_u, from ShareKeys until Unmask
  std::map<uint32_t, AdvertisedKeys> u1_;
  std::vector<uint32_t> u2_;
  // From each sender (this site included): its shares of b_sender and s_sk_sender for this site.
  std::map<uint32_t, std::pair<SecretBytes, SecretBytes>> received_;
};

}  // namespace fedmed

#endif  // FEDMED_COMMON_SECAGG_CLIENT_H_
