#include "common/secagg/client.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>

#include "common/crypto/openssl_util.h"
#include "common/secagg/shamir.h"
#include "common/util/byte_order.h"

namespace fedmed {
namespace {

bool Contains(const std::vector<uint32_t>& sorted, uint32_t v) {
  return std::binary_search(sorted.begin(), sorted.end(), v);
}

std::vector<uint32_t> SortedIndices(const std::vector<uint32_t>& v) {
  std::vector<uint32_t> s = v;
  std::sort(s.begin(), s.end());
  s.erase(std::unique(s.begin(), s.end()), s.end());
  return s;
}

}  // namespace

SecAggClient::SecAggClient(SecAggRoundConfig config, std::string site, AuditSigningKey signer,
                           std::string certificate_pem, std::string ca_pem)
    : config_(std::move(config)),
      site_(std::move(site)),
      index_(0),
      signer_(std::move(signer)),
      certificate_pem_(std::move(certificate_pem)),
      ca_pem_(std::move(ca_pem)) {
  config_.Validate();
  index_ = config_.IndexOf(site_);
  if (index_ == 0) {
    throw ConfigError("secure aggregation: site '" + site_ + "' is not a participant of round " +
                      std::to_string(config_.round));
  }
}

SecAggClient::~SecAggClient() = default;

AdvertisedKeys SecAggClient::AdvertiseKeys() {
  c_keys_ = GenerateX25519KeyPair();
  s_keys_ = GenerateX25519KeyPair();
  AdvertisedKeys keys;
  keys.index = index_;
  keys.site = site_;
  keys.c_public_key = c_keys_->public_key;
  keys.s_public_key = s_keys_->public_key;
  keys.certificate_pem = certificate_pem_;
  keys.signature = signer_.Sign(AdvertisedKeysMessage(config_, keys));
  return keys;
}

std::vector<EncryptedShare> SecAggClient::ShareKeys(const std::vector<AdvertisedKeys>& u1,
                                                    std::time_t now) {
  if (!c_keys_ || !s_keys_) throw SecAggAborted("secure aggregation: ShareKeys before AdvertiseKeys");
  u1_.clear();
  const std::vector<uint32_t> mine = config_.Neighbours(index_);
  for (const AdvertisedKeys& k : u1) {
    // Only the keys this site will use are checked: its own and its neighbours' (all others
    // without SecAgg+).
    const bool used = k.index == index_ || std::binary_search(mine.begin(), mine.end(), k.index);
    const std::string bad = used ? CheckAdvertisedKeys(config_, k, ca_pem_, now) : std::string();
    if (!bad.empty()) {
      throw SecAggAborted("secure aggregation, round " + std::to_string(config_.round) +
                          ": the coordinator relayed keys that fail their check: " + bad);
    }
    if (!u1_.emplace(k.index, k).second) {
      throw SecAggAborted("secure aggregation: the coordinator relayed two key sets of " + k.site);
    }
  }
  config_.CheckQuorum(u1_.size(), "key sharing");
  const auto self = u1_.find(index_);
  if (self == u1_.end() || self->second.c_public_key != c_keys_->public_key ||
      self->second.s_public_key != s_keys_->public_key) {
    throw SecAggAborted("secure aggregation: the coordinator's list of advertised keys lacks "
                        "this site's own keys");
  }
  // b_u, and the Shamir shares of b_u and s_sk_u among U1 (x = each member's index).
  MaskSeed b;
  if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1) ThrowOpenSslError("drawing b_u");
  b_seed_ = SecretBytes(b);
  const SecretBytes& b_secret = b_seed_;
  OPENSSL_cleanse(b.data(), b.size());
  const int n = static_cast<int>(config_.participants.size());
  std::vector<ShamirShare> b_shares = ShamirSplit(b_secret.view(), config_.threshold, n);
  std::vector<ShamirShare> s_shares =
      ShamirSplit(s_keys_->private_key.view(), config_.threshold, n);
  std::vector<EncryptedShare> out;
  for (const auto& [v, keys] : u1_) {
    if (v != index_ && !std::binary_search(mine.begin(), mine.end(), v)) continue;
    std::string plain;
    AppendBigEndian32(&plain, index_);
    AppendBigEndian32(&plain, v);
    const std::string bs = EncodeShamirShare(b_shares[v - 1]);
    const std::string ss = EncodeShamirShare(s_shares[v - 1]);
    AppendLengthPrefixed(&plain, bs);
    AppendLengthPrefixed(&plain, ss);
    const SecretBytes key = AgreeKey(c_keys_->private_key, keys.c_public_key,
                                     SecAggPairContext(config_, "share-encryption", index_, v),
                                     "the share-encryption key of " + keys.site);
    EncryptedShare e;
    e.from = index_;
    e.to = v;
    e.ciphertext = AeadSeal(key, plain, SecAggShareAad(config_, index_, v));
    out.push_back(std::move(e));
    OPENSSL_cleanse(plain.data(), plain.size());
  }
  for (auto* shares : {&b_shares, &s_shares}) {
    for (ShamirShare& s : *shares) OPENSSL_cleanse(s.y.data(), s.y.size());
  }
  return out;
}

MaskedInput SecAggClient::MaskInput(const std::vector<EncryptedShare>& inbox,
                                    const std::vector<uint32_t>& u2,
                                    const std::vector<float>& values, int64_t num_samples) {
  if (u1_.empty()) throw SecAggAborted("secure aggregation: MaskInput before ShareKeys");
  u2_ = SortedIndices(u2);
  config_.CheckQuorum(u2_.size(), "masked input collection");
  if (!Contains(u2_, index_)) {
    throw SecAggAborted("secure aggregation: this site is not in the coordinator's U2");
  }
  for (uint32_t v : u2_) {  // this site holds keys of itself and its neighbours only
    if ((v == index_ || config_.AreNeighbours(index_, v)) && !u1_.count(v)) {
      throw SecAggAborted("secure aggregation: U2 names index " + std::to_string(v) +
                          ", which did not advertise keys");
    }
  }
  if (static_cast<int64_t>(values.size()) != config_.num_values) {
    throw DataError("secure aggregation: the update has " + std::to_string(values.size()) +
                    " values, the round expects " + std::to_string(config_.num_values));
  }
  const int64_t max_count = 4294967295LL / static_cast<int64_t>(config_.participants.size());
  if (num_samples < 1 || num_samples > max_count) {
    throw DataError("secure aggregation: sample count " + std::to_string(num_samples) +
                    " is outside 1.." + std::to_string(max_count));
  }
  MaskedInput out;
  received_.clear();
  for (const EncryptedShare& e : inbox) {
    if (e.to != index_ || !Contains(u2_, e.from) || received_.count(e.from) ||
        !u1_.count(e.from)) {
      continue;  // not for this site, from outside U2 or its neighbourhood, or a duplicate
    }
    const AdvertisedKeys& sender = u1_.at(e.from);
    const SecretBytes key = AgreeKey(c_keys_->private_key, sender.c_public_key,
                                     SecAggPairContext(config_, "share-encryption", index_, e.from),
                                     "the share-encryption key of " + sender.site);
    SecretBytes plain;
    bool ok = AeadOpen(key, e.ciphertext, SecAggShareAad(config_, e.from, index_), &plain);
    if (ok) {
      const std::string_view p = plain.view();
      ok = p.size() >= 12 && LoadBigEndian32(p.data()) == e.from &&
           LoadBigEndian32(p.data() + 4) == index_;
      if (ok) {
        const uint32_t bl = LoadBigEndian32(p.data() + 8);
        ok = p.size() >= 12 + static_cast<size_t>(bl) + 4;
        if (ok) {
          const uint32_t sl = LoadBigEndian32(p.data() + 12 + bl);
          ok = p.size() == 16 + static_cast<size_t>(bl) + sl;
          if (ok) {
            received_.emplace(e.from, std::make_pair(SecretBytes(std::string(p.substr(12, bl))),
                                                     SecretBytes(std::string(p.substr(16 + bl, sl)))));
          }
        }
      }
    }
    if (!ok) out.complaints.push_back(e.from);
  }
  for (uint32_t v : u2_) {  // a neighbour in U2 whose share never arrived is reported too
    if ((v == index_ || config_.AreNeighbours(index_, v)) && !received_.count(v) &&
        std::find(out.complaints.begin(), out.complaints.end(), v) == out.complaints.end()) {
      out.complaints.push_back(v);
    }
  }
  std::sort(out.complaints.begin(), out.complaints.end());
  if (std::binary_search(out.complaints.begin(), out.complaints.end(), index_)) {
    throw SecAggAborted("secure aggregation: this site's own share did not come back intact");
  }
  // q_u, then + PRG(b_u) and the pairwise masks.
  out.masked = config_.Codec().Quantize(values.data(), values.size());
  out.masked.push_back(static_cast<uint32_t>(num_samples));
  MaskSeed seed = b_seed_.AsSeed();
  AddPrgMask(out.masked, seed);
  OPENSSL_cleanse(seed.data(), seed.size());
  for (uint32_t v : u2_) {
    if (v == index_ || !config_.AreNeighbours(index_, v)) continue;
    const AdvertisedKeys& peer = u1_.at(v);
    const SecretBytes pair = AgreeKey(s_keys_->private_key, peer.s_public_key,
                                      SecAggPairContext(config_, "pairwise-mask", index_, v),
                                      "the pairwise mask key of " + peer.site);
    MaskSeed pair_seed = pair.AsSeed();
    ApplyPairwiseMask(out.masked, index_, v, pair_seed);
    OPENSSL_cleanse(pair_seed.data(), pair_seed.size());
  }
  return out;
}

std::vector<UnmaskShare> SecAggClient::Unmask(const std::vector<uint32_t>& u3) {
  if (u2_.empty()) throw SecAggAborted("secure aggregation: Unmask before MaskInput");
  const std::vector<uint32_t> survivors = SortedIndices(u3);
  config_.CheckQuorum(survivors.size(), "unmasking");
  if (!Contains(survivors, index_)) {
    throw SecAggAborted("secure aggregation: this site is not among the survivors it is asked "
                        "to unmask for");
  }
  for (uint32_t v : survivors) {
    if (!Contains(u2_, v)) {
      throw SecAggAborted("secure aggregation: the coordinator names " + config_.SiteAt(v) +
                          " a survivor, but it was not in U2");
    }
  }
  // For each v in U2: the share of b_v if v survived, of s_sk_v if not; never both.
  std::vector<UnmaskShare> out;
  for (auto& [v, shares] : received_) {
    UnmaskShare s;
    s.owner = v;
    s.self_mask = Contains(survivors, v);
    s.share = std::string(s.self_mask ? shares.first.view() : shares.second.view());
    out.push_back(std::move(s));
  }
  received_.clear();
  u2_.clear();  // a second call is refused: the secrets are gone
  b_seed_.Wipe();
  c_keys_.reset();
  s_keys_.reset();
  return out;
}

}  // namespace fedmed
