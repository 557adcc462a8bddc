// The parameters of one secure-aggregation round attempt, as the coordinator announces them with
// the training task and both ends check them (common/secagg/protocol.h describes the protocol):
// participants and their 1-based indices, threshold t, the fixed-point codec, and SecAgg+'s
// neighbourhoods; and SecAggAborted, the error every stage throws when the round cannot go on.
#ifndef FEDMED_COMMON_SECAGG_ROUND_CONFIG_H_
#define FEDMED_COMMON_SECAGG_ROUND_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

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
  // Throws SecAggAborted naming the round, `stage` and the count when `have` (the sites left at
  // that stage) is below the threshold t.
  void CheckQuorum(size_t have, const char* stage) const;
  // True when `a` and `b` are distinct participants and neighbours. O(1) once the ring of this
  // round and attempt has been drawn (O(n), kept per thread); Neighbours is O(k log k) then.
  bool AreNeighbours(uint32_t a, uint32_t b) const;
};

}  // namespace fedmed

#endif  // FEDMED_COMMON_SECAGG_ROUND_CONFIG_H_
