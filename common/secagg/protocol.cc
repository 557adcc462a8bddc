#include "common/secagg/protocol.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cmath>

#include "common/crypto/openssl_util.h"
#include "common/crypto/pki.h"
#include "common/secagg/shamir.h"
#include "common/util/byte_order.h"
#include "common/util/seeded_shuffle.h"

namespace fedmed {
namespace {

constexpr char kDomain[] = "fedmed-secagg-v1";

void PutBytes(std::string* out, std::string_view bytes) {
  AppendBigEndian32(out, static_cast<uint32_t>(bytes.size()));
  out->append(bytes.data(), bytes.size());
}

std::string Context(const SecAggRoundConfig& c, const char* purpose) {
  std::string s(kDomain);
  PutBytes(&s, purpose);
  AppendBigEndian32(&s, static_cast<uint32_t>(c.round));
  AppendBigEndian32(&s, static_cast<uint32_t>(c.attempt));
  return s;
}

// HKDF info / AEAD associated data for the pair (a, b), the same at both ends.
std::string PairContext(const SecAggRoundConfig& c, const char* purpose, uint32_t a, uint32_t b) {
  std::string s = Context(c, purpose);
  AppendBigEndian32(&s, std::min(a, b));
  AppendBigEndian32(&s, std::max(a, b));
  return s;
}

// Associated data of the share sealed by `from` for `to` (directional).
std::string ShareAad(const SecAggRoundConfig& c, uint32_t from, uint32_t to) {
  std::string s = Context(c, "share");
  AppendBigEndian32(&s, from);
  AppendBigEndian32(&s, to);
  return s;
}

bool Contains(const std::vector<uint32_t>& sorted, uint32_t v) {
  return std::binary_search(sorted.begin(), sorted.end(), v);
}

void CheckQuorum(const SecAggRoundConfig& c, size_t have, const char* stage) {
  if (static_cast<int>(have) < c.threshold) {
    throw SecAggAborted(std::string("secure aggregation, round ") + std::to_string(c.round) +
                        ", " + stage + ": " + std::to_string(have) + " site(s) left, below the " +
                        "threshold of " + std::to_string(c.threshold));
  }
}

std::vector<uint32_t> SortedIndices(const std::vector<uint32_t>& v) {
  std::vector<uint32_t> s = v;
  std::sort(s.begin(), s.end());
  s.erase(std::unique(s.begin(), s.end()), s.end());
  return s;
}

}  // namespace

// ---- SecAggRoundConfig ----

void SecAggRoundConfig::Validate() const {
  const std::string what = "secure aggregation round config: ";
  if (round < 1) throw ConfigError(what + "round must be >= 1");
  if (attempt < 1) throw ConfigError(what + "attempt must be >= 1");
  if (participants.size() < 2) {
    throw ConfigError(what + "needs at least 2 participants, got " +
                      std::to_string(participants.size()));
  }
  if (static_cast<int>(participants.size()) > kShamirMaxShares) {
    throw ConfigError(what + "at most " + std::to_string(kShamirMaxShares) + " participants");
  }
  for (size_t i = 1; i < participants.size(); ++i) {
    if (!(participants[i - 1] < participants[i])) {
      throw ConfigError(what + "participants must be sorted and distinct ('" +
                        participants[i - 1] + "', '" + participants[i] + "')");
    }
  }
  if (threshold < 2 || threshold > static_cast<int>(participants.size())) {
    throw ConfigError(what + "threshold must be in 2.." + std::to_string(participants.size()) +
                      " (the participants), got " + std::to_string(threshold));
  }
  if (weight_normalizer < 1) throw ConfigError(what + "weight_normalizer must be >= 1");
  if (neighbours < 0 || neighbours % 2 != 0) {
    throw ConfigError(what + "neighbours (SecAgg+ k) must be 0 or an even number, got " +
                      std::to_string(neighbours));
  }
  const int k = neighbours == 0 ? static_cast<int>(participants.size()) - 1
                                : std::min(neighbours, static_cast<int>(participants.size()) - 1);
  if (threshold > k + 1) {
    throw ConfigError(what + "threshold " + std::to_string(threshold) + " exceeds the " +
                      std::to_string(k + 1) + " holders of each site's shares (itself and its " +
                      std::to_string(k) + " neighbours)");
  }
  if (num_values < 1) throw ConfigError(what + "num_values must be >= 1");
  Codec();  // checks clip_range and quantization_bits
}

uint32_t SecAggRoundConfig::IndexOf(const std::string& site) const {
  const auto it = std::lower_bound(participants.begin(), participants.end(), site);
  if (it == participants.end() || *it != site) return 0;
  return static_cast<uint32_t>(it - participants.begin()) + 1;
}

const std::string& SecAggRoundConfig::SiteAt(uint32_t index) const {
  if (index < 1 || index > participants.size()) {
    throw SecAggAborted("secure aggregation: no participant with index " + std::to_string(index));
  }
  return participants[index - 1];
}

namespace {

// SecAgg+'s ring: a permutation of 1..n drawn from (round, attempt) with SeededShuffle (portable:
// the same at every party whatever its standard library), public and the same for all, and each
// index's position on it. Every stage asks for it once per pair of sites, so the last
// ring drawn is kept, per thread (no locking; a config is shared between threads).
struct Ring {
  int round = -1;
  int attempt = -1;
  uint32_t n = 0;
  std::vector<uint32_t> order;     // order[p] = index at position p
  std::vector<uint32_t> position;  // position[index] = p (position[0] unused)
};

const Ring& RingOf(int round, int attempt, uint32_t n) {
  thread_local Ring ring;
  if (ring.round == round && ring.attempt == attempt && ring.n == n) return ring;
  ring.order.resize(n);
  for (uint32_t i = 0; i < n; ++i) ring.order[i] = i + 1;
  SeededShuffle(&ring.order, 0x5ecA995ULL ^ (static_cast<uint64_t>(round) << 20) ^
                                 static_cast<uint64_t>(attempt));
  ring.position.assign(n + 1, 0);
  for (uint32_t p = 0; p < n; ++p) ring.position[ring.order[p]] = p;
  ring.round = round;
  ring.attempt = attempt;
  ring.n = n;
  return ring;
}

}  // namespace

std::vector<uint32_t> SecAggRoundConfig::Neighbours(uint32_t index) const {
  const uint32_t n = static_cast<uint32_t>(participants.size());
  std::vector<uint32_t> out;
  if (neighbours == 0 || static_cast<uint32_t>(neighbours) >= n - 1) {
    for (uint32_t v = 1; v <= n; ++v) {
      if (v != index) out.push_back(v);
    }
    return out;
  }
  if (index < 1 || index > n) return out;
  const Ring& ring = RingOf(round, attempt, n);
  const uint32_t pos = ring.position[index];
  const uint32_t half = static_cast<uint32_t>(neighbours) / 2;
  for (uint32_t d = 1; d <= half; ++d) {
    out.push_back(ring.order[(pos + d) % n]);
    out.push_back(ring.order[(pos + n - d) % n]);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool SecAggRoundConfig::AreNeighbours(uint32_t a, uint32_t b) const {
  const uint32_t n = static_cast<uint32_t>(participants.size());
  if (a == b || a < 1 || b < 1 || a > n || b > n) return false;
  if (neighbours == 0 || static_cast<uint32_t>(neighbours) >= n - 1) return true;
  const Ring& ring = RingOf(round, attempt, n);
  const uint32_t pa = ring.position[a], pb = ring.position[b];
  const uint32_t d = pa > pb ? pa - pb : pb - pa;
  return std::min(d, n - d) <= static_cast<uint32_t>(neighbours) / 2;
}

FixedPointCodec SecAggRoundConfig::Codec() const {
  return FixedPointCodec(clip_range, static_cast<int>(participants.size()), quantization_bits);
}

// ---- stage 0 checks ----

std::string AdvertisedKeysMessage(const SecAggRoundConfig& config, const AdvertisedKeys& keys) {
  std::string m = Context(config, "advertise");
  AppendBigEndian32(&m, keys.index);
  PutBytes(&m, keys.site);
  PutBytes(&m, keys.c_public_key);
  PutBytes(&m, keys.s_public_key);
  return m;
}

std::string CheckAdvertisedKeys(const SecAggRoundConfig& config, const AdvertisedKeys& keys,
                                const std::string& ca_pem, std::time_t now) {
  const std::string who = "site '" + keys.site + "'";
  if (keys.index == 0 || config.IndexOf(keys.site) != keys.index) {
    return who + " is not participant " + std::to_string(keys.index) + " of this round";
  }
  if (keys.c_public_key.size() != kX25519KeyBytes || keys.s_public_key.size() != kX25519KeyBytes) {
    return who + " advertised public keys that are not 32-byte X25519 keys";
  }
  const PeerCheck check =
      VerifyPeerCertificate(keys.certificate_pem, ca_pem, now, CertificatePurpose::kAuditLog);
  if (!check.ok) return who + ": its signing certificate is refused: " + check.reason;
  if (check.common_name != keys.site) {
    return who + " signed with the certificate of CN=" + check.common_name;
  }
  try {
    const AuditVerifyingKey key =
        AuditVerifyingKey::FromCertificate(keys.certificate_pem, "signing certificate of " + who);
    if (!key.Verify(AdvertisedKeysMessage(config, keys), keys.signature)) {
      return who + ": the signature of its advertised keys does not verify";
    }
  } catch (const Error& e) {
    return who + ": " + e.what();
  }
  return "";
}

// ---- SecAggClient ----

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
  CheckQuorum(config_, u1_.size(), "key sharing");
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
    PutBytes(&plain, bs);
    PutBytes(&plain, ss);
    const SecretBytes key = AgreeKey(c_keys_->private_key, keys.c_public_key,
                                     PairContext(config_, "share-encryption", index_, v),
                                     "the share-encryption key of " + keys.site);
    EncryptedShare e;
    e.from = index_;
    e.to = v;
    e.ciphertext = AeadSeal(key, plain, ShareAad(config_, index_, v));
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
  CheckQuorum(config_, u2_.size(), "masked input collection");
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
                                     PairContext(config_, "share-encryption", index_, e.from),
                                     "the share-encryption key of " + sender.site);
    SecretBytes plain;
    bool ok = AeadOpen(key, e.ciphertext, ShareAad(config_, e.from, index_), &plain);
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
                                      PairContext(config_, "pairwise-mask", index_, v),
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
  CheckQuorum(config_, survivors.size(), "unmasking");
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

// ---- SecAggServer ----

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
  CheckQuorum(config_, u1_.size(), "key advertisement");
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
  CheckQuorum(config_, u2_.size(), "key sharing");
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
  CheckQuorum(config_, u3_.size(), "masked input collection");
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
  CheckQuorum(config_, unmask_.size(), "unmasking (answers)");
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
                                          PairContext(config_, "pairwise-mask", u, v),
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
