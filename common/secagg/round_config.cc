#include "common/secagg/round_config.h"

#include <algorithm>
#include <string>

#include "common/secagg/shamir.h"
#include "common/util/seeded_shuffle.h"

namespace fedmed {

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

void SecAggRoundConfig::CheckQuorum(size_t have, const char* stage) const {
  if (static_cast<int>(have) < threshold) {
    throw SecAggAborted(std::string("secure aggregation, round ") + std::to_string(round) +
                        ", " + stage + ": " + std::to_string(have) + " site(s) left, below the " +
                        "threshold of " + std::to_string(threshold));
  }
}

}  // namespace fedmed
