#include "common/secagg/server.h"

#include <openssl/crypto.h>

#include <algorithm>

#include "common/secagg/key_agreement.h"
#include "common/secagg/shamir.h"

namespace fedmed {
namespace {

bool Contains(const std::vector<uint32_t>& sorted, uint32_t v) {
  return std::binary_search(sorted.begin(), sorted.end(), v);
}

}  // namespace

SecAggServer::SecAggServer(SecAggRoundConfig config, std::string ca_pem, std::time_t now)
    : config_(std::move(config)), ca_pem_(std::move(ca_pem)), now_(now) {
  config_.Validate();
}

uint32_t SecAggServer::CheckSender(const std::string& site, Stage stage, std::string* why) const {
  const uint32_t index = config_.IndexOf(site);
  if (index == 0) {
    *why = site + " is not a participant of this secure round";
  } else if (excluded_.count(site)) {
    *why = site + " was excluded from this secure round: " + excluded_.at(site);
  } else if (stage_ != stage) {
    *why = site + ": this secure round is no longer (or not yet) at that stage";
  } else {
    return index;
  }
  return 0;
}

std::string SecAggServer::AddKeys(const std::string& site, const AdvertisedKeys& keys) {
  std::string why;
  const uint32_t index = CheckSender(site, Stage::kKeys, &why);
  if (index == 0) return why;
  if (keys_.count(index)) return site + " already advertised its keys";
  if (keys.site != site) {
    why = "keys sent by " + site + " claim to be those of '" + keys.site + "'";
  } else {
    why = CheckAdvertisedKeys(config_, keys, ca_pem_, now_);
  }
  if (!why.empty()) {
    excluded_[site] = why;
    return why;
  }
  keys_.emplace(index, keys);
  return "";
}

bool SecAggServer::Advertised(const std::string& site) const {
  const uint32_t index = config_.IndexOf(site);
  return excluded_.count(site) != 0 || (index != 0 && keys_.count(index) != 0);
}

void SecAggServer::MarkGone(const std::string& site) {
  if (const uint32_t index = config_.IndexOf(site); index != 0) gone_.insert(index);
}

bool SecAggServer::KeysComplete() const {
  for (uint32_t v = 1; v <= config_.participants.size(); ++v) {
    const bool waited_for = !gone_.count(v) && !excluded_.count(config_.participants[v - 1]);
    if (waited_for && !keys_.count(v)) return false;
  }
  return true;
}

std::vector<AdvertisedKeys> SecAggServer::CloseKeys() {
  if (stage_ != Stage::kKeys) throw SecAggAborted("secure aggregation: key stage already closed");
  u1_.clear();
  for (const auto& [index, keys] : keys_) u1_.push_back(keys);
  stage_ = Stage::kShares;
  config_.CheckQuorum(u1_.size(), "key advertisement");
  return u1_;
}

std::string SecAggServer::AddShares(const std::string& site, std::vector<EncryptedShare> shares) {
  std::string why;
  const uint32_t index = CheckSender(site, Stage::kShares, &why);
  if (index == 0) return why;
  if (!keys_.count(index)) return site + " did not advertise keys in this secure round";
  if (shares_.count(index)) return site + " already sent its shares";
  std::set<uint32_t> to;
  for (const EncryptedShare& e : shares) {
    if (e.from != index || !keys_.count(e.to) ||
        (e.to != index && !config_.AreNeighbours(index, e.to)) || !to.insert(e.to).second) {
      return site + " sent a share that is not from it to one member of U1 among its "
             "neighbours each";
    }
  }
  size_t expected = 1;  // itself
  for (uint32_t v : config_.Neighbours(index)) expected += keys_.count(v);
  if (to.size() != expected) {
    return site + " sent " + std::to_string(to.size()) + " shares, expected one for each of the " +
           std::to_string(expected) + " sites (itself and its neighbours) that advertised keys";
  }
  shares_.emplace(index, std::move(shares));
  return "";
}

bool SecAggServer::SharesComplete() const {
  for (const auto& [v, keys] : keys_) {
    if (!shares_.count(v) && !gone_.count(v)) return false;
  }
  return true;
}

std::vector<uint32_t> SecAggServer::CloseShares() {
  if (stage_ != Stage::kShares) throw SecAggAborted("secure aggregation: share stage not open");
  u2_.clear();
  for (const auto& [index, shares] : shares_) u2_.push_back(index);
  stage_ = Stage::kMaskedInput;
  config_.CheckQuorum(u2_.size(), "key sharing");
  return u2_;
}

std::vector<EncryptedShare> SecAggServer::InboxFor(uint32_t to) const {
  std::vector<EncryptedShare> inbox;
  for (uint32_t from : u2_) {
    for (const EncryptedShare& e : shares_.at(from)) {
      if (e.to == to) inbox.push_back(e);
    }
  }
  return inbox;
}

std::string SecAggServer::AddMaskedInput(const std::string& site, MaskedInput input) {
  std::string why;
  const uint32_t index = CheckSender(site, Stage::kMaskedInput, &why);
  if (index == 0) return why;
  if (!Contains(u2_, index)) return site + " did not share its keys in this secure round";
  if (masked_.count(index)) return site + " already sent its masked input";
  if (static_cast<int64_t>(input.masked.size()) != config_.num_values + 1) {
    return site + " sent a masked input of " + std::to_string(input.masked.size()) +
           " words, expected " + std::to_string(config_.num_values + 1);
  }
  for (uint32_t v : input.complaints) {
    if (!Contains(u2_, v) || !config_.AreNeighbours(index, v)) {
      return site + " complains about index " + std::to_string(v) + ", not a neighbour in U2";
    }
  }
  for (uint32_t v : input.complaints) {
    accused_.insert(v);
    const std::string& name = config_.SiteAt(v);
    if (!excluded_.count(name)) {
      excluded_[name] = "its key share for " + site + " failed authentication (or never came)";
    }
  }
  masked_.emplace(index, std::move(input.masked));
  return "";
}

bool SecAggServer::MaskedInputComplete() const {
  for (uint32_t v : u2_) {
    if (!masked_.count(v) && !accused_.count(v) && !gone_.count(v)) return false;
  }
  return true;
}

std::vector<uint32_t> SecAggServer::CloseMaskedInput() {
  if (stage_ != Stage::kMaskedInput) {
    throw SecAggAborted("secure aggregation: masked-input stage not open");
  }
  u3_.clear();
  for (const auto& [index, masked] : masked_) {
    if (!accused_.count(index)) u3_.push_back(index);
  }
  stage_ = Stage::kUnmasking;
  config_.CheckQuorum(u3_.size(), "masked input collection");
  return u3_;
}

std::string SecAggServer::AddUnmaskShares(const std::string& site,
                                          std::vector<UnmaskShare> shares) {
  std::string why;
  const uint32_t index = CheckSender(site, Stage::kUnmasking, &why);
  if (index == 0) return why;
  if (!Contains(u3_, index)) return site + " is not among this secure round's survivors";
  if (unmask_.count(index)) return site + " already sent its unmasking shares";
  std::set<uint32_t> owners;
  for (const UnmaskShare& s : shares) {
    if (!Contains(u2_, s.owner) || (s.owner != index && !config_.AreNeighbours(index, s.owner)) ||
        !owners.insert(s.owner).second) {
      return site + " revealed a share of index " + std::to_string(s.owner) +
             ", not one share per member of U2";
    }
    if (s.self_mask != Contains(u3_, s.owner)) {
      return site + " revealed the wrong kind of share for " + config_.SiteAt(s.owner);
    }
  }
  unmask_.emplace(index, std::move(shares));
  return "";
}

bool SecAggServer::UnmaskComplete() const {
  for (uint32_t v : u3_) {
    if (!unmask_.count(v) && !gone_.count(v)) return false;
  }
  return true;
}

SecAggSum SecAggServer::Unmask() {
  if (stage_ != Stage::kUnmasking) throw SecAggAborted("secure aggregation: not unmasking");
  config_.CheckQuorum(unmask_.size(), "unmasking (answers)");
  stage_ = Stage::kDone;
  // Shares of each U2 member's secret, by owner.
  std::map<uint32_t, std::vector<ShamirShare>> by_owner;
  for (auto& [from, shares] : unmask_) {
    for (UnmaskShare& s : shares) {
      try {
        ShamirShare share = DecodeShamirShare(s.share);
        if (share.x != from) {
          throw FormatError("its share is for point " + std::to_string(share.x));
        }
        by_owner[s.owner].push_back(std::move(share));
      } catch (const FormatError& e) {
        throw SecAggAborted("secure aggregation: " + config_.SiteAt(from) +
                            " revealed a malformed share of " + config_.SiteAt(s.owner) + ": " +
                            e.what());
      }
      OPENSSL_cleanse(s.share.data(), s.share.size());
    }
  }
  std::vector<uint32_t> sum(static_cast<size_t>(config_.num_values) + 1, 0);
  for (uint32_t u : u3_) AddMask(sum, masked_.at(u));
  for (uint32_t u : u2_) {
    std::vector<ShamirShare>& shares = by_owner[u];
    if (static_cast<int>(shares.size()) < config_.threshold) {
      throw SecAggAborted("secure aggregation: only " + std::to_string(shares.size()) +
                          " share(s) of " + config_.SiteAt(u) + "'s secret, below the threshold");
    }
    SecretBytes secret;
    try {
      secret = SecretBytes(ShamirCombine(shares, config_.threshold, kMaskSeedBytes));
    } catch (const FormatError& e) {
      throw SecAggAborted("secure aggregation: the shares of " + config_.SiteAt(u) +
                          "'s secret do not combine: " + e.what());
    }
    for (ShamirShare& s : shares) OPENSSL_cleanse(s.y.data(), s.y.size());
    if (Contains(u3_, u)) {  // b_u: remove the self mask
      MaskSeed seed = secret.AsSeed();
      SubtractPrgMask(sum, seed);
      OPENSSL_cleanse(seed.data(), seed.size());
    } else {  // s_sk_u of a dropped site: remove the masks each survivor applied with it
      for (uint32_t v : u3_) {
        if (!config_.AreNeighbours(u, v)) continue;
        const AdvertisedKeys& peer = keys_.at(v);
        const SecretBytes pair = AgreeKey(secret, peer.s_public_key,
                                          SecAggPairContext(config_, "pairwise-mask", u, v),
                                          "the pairwise mask key of " + peer.site);
        MaskSeed seed = pair.AsSeed();
        // v added sign(v, u) * PRG(s_uv); adding sign(u, v) * PRG(s_uv) cancels it.
        ApplyPairwiseMask(sum, u, v, seed);
        OPENSSL_cleanse(seed.data(), seed.size());
      }
    }
  }
  unmask_.clear();
  SecAggSum result;
  result.total_samples = sum.back();
  sum.pop_back();
  const FixedPointCodec codec = config_.Codec();
  const int n = static_cast<int>(u3_.size());
  result.weighted_sum = codec.DequantizeSum(sum, n);
  result.max_abs_error = codec.ErrorBound(n);
  for (uint32_t u : u3_) result.contributors.push_back(config_.SiteAt(u));
  if (result.total_samples < n) {
    throw SecAggAborted("secure aggregation: the unmasked sample count " +
                        std::to_string(result.total_samples) + " is below the " +
                        std::to_string(n) + " contributors (inconsistent masks)");
  }
  return result;
}

}  // namespace fedmed
