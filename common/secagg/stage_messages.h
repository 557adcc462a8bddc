// The messages of the secure-aggregation stages (common/secagg/protocol.h describes the
// protocol), the check of a site's stage-0 keys that both ends run, and the byte strings that
// bind every derived key, sealed share and mask to its round, attempt and pair of sites (domain
// separation: both ends must build them alike, so they are part of the protocol).
//
// Indices are the 1-based positions of sites among the round's participants
// (SecAggRoundConfig::IndexOf). Public keys are X25519 (32 bytes), signatures Ed25519 (64 bytes).
#ifndef FEDMED_COMMON_SECAGG_STAGE_MESSAGES_H_
#define FEDMED_COMMON_SECAGG_STAGE_MESSAGES_H_

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "common/secagg/round_config.h"

namespace fedmed {

// Stage 0 message of one site.
struct AdvertisedKeys {
  uint32_t index = 0;                // the sender's 1-based index
  std::string site;                  // its name (= certificate CN)
  std::string c_public_key;          // X25519, 32 bytes: share encryption
  std::string s_public_key;          // X25519, 32 bytes: pairwise masks
  std::string signature;             // Ed25519 over AdvertisedKeysMessage, 64 bytes
  std::string certificate_pem;       // the sender's audit certificate (Ed25519, CA-issued)
};

// The exact bytes a site signs in stage 0: a domain tag, round, attempt, index, site name and
// both public keys, each length-prefixed.
std::string AdvertisedKeysMessage(const SecAggRoundConfig& config, const AdvertisedKeys& keys);

// Checks `keys` against `config`, the federation CA `ca_pem` and time `now`: index and name of a
// participant, 32-byte keys, a certificate that chains to the CA as an audit certificate with
// CN = site, and a valid signature. Returns "" when all hold, else one line naming the site and
// what failed.
std::string CheckAdvertisedKeys(const SecAggRoundConfig& config, const AdvertisedKeys& keys,
                                const std::string& ca_pem, std::time_t now);

// Stage 1: the Shamir shares of `from`'s secrets for `to`, sealed with AES-256-GCM.
struct EncryptedShare {
  uint32_t from = 0, to = 0;
  std::string ciphertext;  // AeadSeal output
};

// Stage 2 output of a site.
struct MaskedInput {
  std::vector<uint32_t> masked;      // num_values + 1 words
  std::vector<uint32_t> complaints;  // senders whose share failed authentication
};

// Stage 3: one revealed share.
struct UnmaskShare {
  uint32_t owner = 0;     // whose secret it is a share of
  bool self_mask = true;  // true: of b_owner (owner survived); false: of s_sk_owner (dropped)
  std::string share;      // EncodeShamirShare bytes; as secret as the secret
};

// The unmasked result.
struct SecAggSum {
  std::vector<double> weighted_sum;    // sum over U3 of x_u, num_values entries
  int64_t total_samples = 0;           // N = sum over U3 of n_u
  std::vector<std::string> contributors;  // U3 by name
  double max_abs_error = 0;            // quantisation bound per value of weighted_sum
};

// ---- domain separation ----
//
// Every string below starts with "fedmed-secagg-v1", then the length-prefixed `purpose`, round
// and attempt (4 bytes each, big-endian).

// Appends the 4-byte big-endian length of `bytes`, then `bytes`, to *out.
void AppendLengthPrefixed(std::string* out, std::string_view bytes);

// The context of `purpose` ("advertise", "share", ...) in `config`'s round attempt.
std::string SecAggContext(const SecAggRoundConfig& config, const char* purpose);

// HKDF info / AEAD associated data for the pair (a, b): SecAggContext, then min(a, b) and
// max(a, b); the same at both ends. Purposes: "share-encryption", "pairwise-mask".
std::string SecAggPairContext(const SecAggRoundConfig& config, const char* purpose, uint32_t a,
                              uint32_t b);

// Associated data of the share sealed by `from` for `to` (directional): SecAggContext of
// "share", then from and to.
std::string SecAggShareAad(const SecAggRoundConfig& config, uint32_t from, uint32_t to);

}  // namespace fedmed

#endif  // FEDMED_COMMON_SECAGG_STAGE_MESSAGES_H_
