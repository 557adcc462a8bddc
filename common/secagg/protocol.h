// The secure-aggregation round of Bonawitz et al., "Practical Secure Aggregation for
// Privacy-Preserving Machine Learning" (CCS 2017, section 4, Figure 4), as transport-free state
// machines: SecAggClient (one per site and round attempt) and SecAggServer (the coordinator's).
// coordinator/ and site_agent/ carry their messages over gRPC (proto/fedmed.proto, SecAggSend /
// SecAggReceive; the masked input travels as an update upload); docs/SECURE_AGGREGATION.md
// explains the protocol to a privacy officer.
//
// Participants are the round's selected sites, sorted by name; site i (1-based position) is
// Shamir evaluation point x = i. Threshold t: any t survivors can unmask; t - 1 colluding sites
// together with the coordinator learn nothing about an honest site's update (the semi-honest
// model of the paper's Theorem 6.2 with t > n/2 recommended: see the docs).
//
//   stage 0  AdvertiseKeys   site u -> coordinator: c_pk_u, s_pk_u (X25519), signed with u's
//                            long-term Ed25519 key (its audit key, certified by the federation CA
//                            with CN = u); the coordinator checks certificate and signature,
//                            excludes (and names) a site whose check fails, and broadcasts U1.
//   stage 1  ShareKeys       u checks every signature in U1 again, draws its self-mask seed b_u,
//                            Shamir-shares b_u and s_sk_u (t of |U1|), and sends each peer v its
//                            two shares encrypted with AES-256-GCM under
//                            HKDF(X25519(c_sk_u, c_pk_v)); the coordinator relays them: U2.
//   stage 2  MaskedInput     u decrypts the shares sent to it (a share that fails authentication
//                            is reported, naming its sender, who is then treated as dropped) and
//                            sends y_u = q_u + PRG(b_u) + sum_{v in U2, v != u} +-PRG(s_uv), where
//                            s_uv = HKDF(X25519(s_sk_u, s_pk_v)) and q_u is the quantised
//                            weighted update followed by the sample count: U3.
//   stage 3  Unmasking       every u in U3 reveals, for each v in U2, its share of b_v when v is
//                            in U3 and of s_sk_v when v is not (never both for one v); from t
//                            answers the coordinator rebuilds them and removes the masks.
//
// Weighted FedAvg stays exact up to quantisation: site u codes x_u = (n_u / n_ref) * delta_u
// (n_ref = weight_normalizer, the largest registered training-set size, public) with
// FixedPointCodec(clip_range, |participants|, quantization_bits), and appends its sample count
// n_u as one more word (added mod 2^32 as an integer). The unmasked sum gives sum_u x_u and
// N = sum_u n_u, and the weighted mean update is sum_u x_u * n_ref / N.
//
// Errors: SecAggAborted when the round cannot go on (fewer than t sites left at a stage, or a
// message that does not fit the protocol); the coordinator then fails the round attempt cleanly.
#ifndef FEDMED_COMMON_SECAGG_PROTOCOL_H_
#define FEDMED_COMMON_SECAGG_PROTOCOL_H_

#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/crypto/audit_key.h"
#include "common/secagg/key_agreement.h"
#include "common/secagg/masking.h"
#include "common/util/error.h"

namespace fedmed {

// The round cannot complete under secure aggregation (the message says which stage and why).
class SecAggAborted : public Error {
 public:
  using Error::Error;
};

// What the coordinator announces with a secure round (part of the training task).
struct SecAggRoundConfig {
  int round = 0;                          // >= 1
  int attempt = 1;                        // >= 1; keys are fresh for every attempt
  int threshold = 0;                      // t, 2 <= t <= participants.size()
  double clip_range = 1.0;                // R of FixedPointCodec: |x_u| is clipped to R
  int quantization_bits = 32;             // b of FixedPointCodec, 8..32
  std::vector<std::string> participants;  // sorted, distinct site names; index = position + 1
  int64_t weight_normalizer = 1;          // n_ref >= 1
  int64_t num_values = 0;                 // model values; masked vectors have num_values + 1 words
  // SecAgg+ (Bell et al., "Secure Single-Server Aggregation with (Poly)Logarithmic Overhead",
  // CCS 2020): k > 0 makes each site share keys and pairwise masks only with its k neighbours on
  // a k-regular graph (a ring over a permutation of the participants drawn from round and
  // attempt, each site joined to the k/2 sites on either side); threshold t then applies per
  // neighbourhood (2 <= t <= k + 1). k must be even; 0 (or k >= n - 1) = every other site, the
  // original protocol.
  int neighbours = 0;

  // Throws ConfigError naming the field when a value is out of range or participants are not
  // sorted and distinct.
  void Validate() const;
  // 1-based index of `site`, or 0 when it is not a participant.
  uint32_t IndexOf(const std::string& site) const;
  // The participant at 1-based `index`. Throws SecAggAborted when out of range.
  const std::string& SiteAt(uint32_t index) const;
  // The codec of this round (max_sites = participants.size()).
  FixedPointCodec Codec() const;
  // The sites `index` exchanges keys and masks with (sorted, itself excluded): every other
  // participant, or its SecAgg+ neighbours. Symmetric: v is in Neighbours(u) iff u is in
  // Neighbours(v).
  std::vector<uint32_t> Neighbours(uint32_t index) const;
  // True when `a` and `b` are distinct participants and neighbours. O(1) once the ring of this
  // round and attempt has been drawn (O(n), kept per thread); Neighbours is O(k log k) then.
  bool AreNeighbours(uint32_t a, uint32_t b) const;
};

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
  // share for each member of U1 that is this site or one of its neighbours. Throws SecAggAborted when U1 has fewer
  // than t members, does not include this site, has an entry whose check fails (naming it: the
  // coordinator must have relayed something the peer did not sign) or repeats an index.
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

// The coordinator's side of one round attempt. Not thread-safe (the coordinator calls it under
// its mutex). Stages: kKeys -> kShares -> kMaskedInput -> kUnmasking -> kDone.
class SecAggServer {
 public:
  enum class Stage { kKeys, kShares, kMaskedInput, kUnmasking, kDone };

  // Throws ConfigError when config is invalid.
  SecAggServer(SecAggRoundConfig config, std::string ca_pem, std::time_t now);

  const SecAggRoundConfig& config() const { return config_; }
  Stage stage() const { return stage_; }
  // Sites excluded for misbehaving, by name: why (bad certificate or signature, a share that
  // failed authentication at a peer).
  const std::map<std::string, std::string>& excluded() const { return excluded_; }

  // Stage 0: records `keys` of participant `site`. Returns "" when accepted; otherwise why it
  // was refused (the site is excluded when its certificate or signature fails; a late or
  // duplicate message is refused without exclusion).
  std::string AddKeys(const std::string& site, const AdvertisedKeys& keys);
  // `site` is gone (its process or connection ended): the Complete checks below no longer wait
  // for it. What it already sent stays; a member of U2 that is gone is recovered as a dropout.
  void MarkGone(const std::string& site);

  bool KeysComplete() const;  // every participant not excluded or gone has advertised
  // True once `site` has advertised keys or been excluded in this attempt.
  bool Advertised(const std::string& site) const;
  // Ends stage 0: U1. Throws SecAggAborted when |U1| < t.
  std::vector<AdvertisedKeys> CloseKeys();
  const std::vector<AdvertisedKeys>& u1() const { return u1_; }

  // Stage 1: `site`'s sealed shares, one per member of U1 among itself and its neighbours.
  // Returns "" or why refused.
  std::string AddShares(const std::string& site, std::vector<EncryptedShare> shares);
  bool SharesComplete() const;  // every member of U1 has sent its shares
  // Ends stage 1: U2 (indices, sorted). Throws SecAggAborted when |U2| < t.
  std::vector<uint32_t> CloseShares();
  const std::vector<uint32_t>& u2() const { return u2_; }
  // The shares addressed to `to` by members of U2.
  std::vector<EncryptedShare> InboxFor(uint32_t to) const;

  // Stage 2: `site`'s masked vector (num_values + 1 words) and complaints. Returns "" or why
  // refused. A complaint excludes the accused sender (treated as dropped: its pairwise masks
  // are removed through its s_sk, its own input is discarded and its b is never revealed).
  std::string AddMaskedInput(const std::string& site, MaskedInput input);
  bool MaskedInputComplete() const;  // every member of U2 has sent its masked input
  // Ends stage 2: U3 = senders of stage 2, less the accused. Throws SecAggAborted when
  // |U3| < t.
  std::vector<uint32_t> CloseMaskedInput();
  const std::vector<uint32_t>& u3() const { return u3_; }

  // Stage 3: the shares `site` (a member of U3) reveals. Returns "" or why refused (a share of
  // the wrong kind for its owner is refused: b-shares only of U3, s_sk-shares only of U2 \ U3).
  std::string AddUnmaskShares(const std::string& site, std::vector<UnmaskShare> shares);
  bool UnmaskComplete() const;  // every member of U3 has answered
  int unmask_answers() const { return static_cast<int>(unmask_.size()); }
  // Rebuilds the secrets from the answers (at least t), removes every mask and decodes the sum.
  // Throws SecAggAborted with fewer than t answers or when a secret cannot be rebuilt (a
  // share that does not combine; the message names the owner).
  SecAggSum Unmask();

 private:
  uint32_t CheckSender(const std::string& site, Stage stage, std::string* why) const;

  SecAggRoundConfig config_;
  std::string ca_pem_;
  std::time_t now_;
  Stage stage_ = Stage::kKeys;
  std::map<std::string, std::string> excluded_;
  std::map<uint32_t, AdvertisedKeys> keys_;
  std::vector<AdvertisedKeys> u1_;
  std::map<uint32_t, std::vector<EncryptedShare>> shares_;  // by sender
  std::vector<uint32_t> u2_;
  std::map<uint32_t, std::vector<uint32_t>> masked_;  // by sender
  std::set<uint32_t> accused_;
  std::set<uint32_t> gone_;
  std::vector<uint32_t> u3_;
  std::map<uint32_t, std::vector<UnmaskShare>> unmask_;  // by answering site
};

}  // namespace fedmed

#endif  // FEDMED_COMMON_SECAGG_PROTOCOL_H_
