// The coordinator's side of a secure-aggregation round attempt (common/secagg/protocol.h
// describes the protocol; coordinator/secure_round.h drives it from the round flow): it checks
// and collects each stage's messages, closes the stages into U1, U2 and U3, relays the sealed
// shares, and unmasks the sum from the survivors' revealed shares.
//
// Refusals are answers, not exceptions: the Add* calls return "" or why a message was refused
// (and exclude a site whose keys or shares fail); the Close* calls and Unmask throw
// SecAggAborted when fewer than t sites are left.
#ifndef FEDMED_COMMON_SECAGG_SERVER_H_
#define FEDMED_COMMON_SECAGG_SERVER_H_

#include <cstdint>
#include <ctime>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/secagg/round_config.h"
#include "common/secagg/stage_messages.h"

namespace fedmed {

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

#endif  // FEDMED_COMMON_SECAGG_SERVER_H_
