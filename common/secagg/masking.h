// Masking arithmetic of secure aggregation (Bonawitz et al., "Practical Secure Aggregation for
// Privacy-Preserving Machine Learning", CCS 2017, section 4): fixed-point quantisation of a float
// update into Z_2^32, a PRG that expands a 32-byte seed into mask words (AES-256-CTR through
// OpenSSL's EVP API), and the mask arithmetic mod 2^32, including the pairwise sign convention
// under which the pairwise masks of all sites cancel in the sum.
//
// Site u sends y_u = q_u + PRG(b_u) + sum_{v > u} PRG(s_uv) - sum_{v < u} PRG(s_uv)  (mod 2^32),
// where q_u is its quantised update, b_u its self-mask seed and s_uv = s_vu the seed it agreed
// with site v. Summing y_u over all sites cancels every PRG(s_uv); the coordinator then subtracts
// PRG(b_u) for each surviving u (seeds rebuilt from Shamir shares) and gets sum_u q_u mod 2^32,
// which FixedPointCodec::DequantizeSum turns back into the float sum.
#ifndef FEDMED_COMMON_SECAGG_MASKING_H_
#define FEDMED_COMMON_SECAGG_MASKING_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace fedmed {

// Size of a mask seed (self-mask seed b_u or agreed pairwise seed s_uv) in bytes: an AES-256 key.
inline constexpr size_t kMaskSeedBytes = 32;
using MaskSeed = std::array<uint8_t, kMaskSeedBytes>;

// Fixed-point code of float updates in Z_2^32 such that the sum of up to max_sites codes never
// wraps around 2^32 (indeed never exceeds 2^b - 1, b = quantization_bits).
//
// A value x is clipped to [-R, R] (R = clip_range) and coded as q = round((x + R) * scale), with
//   scale = floor((2^b - 1 - max_sites) / (max_sites * 2 * R)),   b = quantization_bits (8..32).
// Then q <= 2*R*scale + 1/2, so the sum of max_sites codes is at most
// max_sites * 2 * R * scale + max_sites / 2 <= 2^b - 1 - max_sites/2 < 2^b <= 2^32: no wrap.
// Words stay 32-bit on the wire and masks are uniform over Z_2^32 whatever b is; a smaller b
// only coarsens the code (b = 32 is the default and the finest). (The
// "- max_sites" pays for the rounding; without it the sum could exceed 2^32 - 1 by up to n/2.) As a
// last guard each code is also capped at floor((2^b - 1) / max_sites).
// The sum S of n <= max_sites codes decodes to S / scale - n * R, within n * 0.5 / scale of the
// sum of the clipped values (each code is off by at most 1/2 unit), plus the double rounding of the
// decode (a few ulps of n * R, i.e. ~1e-16 * n * R: negligible). Example: R = 1, max_sites = 10:
// scale = 214748364, error <= 2.4e-9 per site per coordinate. With weighted FedAvg the sites code
// n_k * update, so R must bound the weighted values.
class FixedPointCodec {
 public:
  // Throws ConfigError unless clip_range is finite and > 0, 1 <= max_sites <= 2^16,
  // 8 <= quantization_bits <= 32, and the resulting scale is at least 1 (i.e.
  // max_sites * 2 * clip_range <= 2^b - 1 - max_sites).
  FixedPointCodec(double clip_range, int max_sites, int quantization_bits = 32);

  double clip_range() const { return clip_range_; }
  int max_sites() const { return max_sites_; }
  int quantization_bits() const { return quantization_bits_; }
  // Units per 1.0 of the float value (an integer-valued double >= 1).
  double scale() const { return scale_; }
  // Largest absolute error of DequantizeSum for a sum over `num_sites` sites' clipped values, per
  // coordinate: num_sites * 0.5 / scale (plus a few ulps of num_sites * clip_range).
  double ErrorBound(int num_sites) const { return num_sites * 0.5 / scale_; }

  // Codes `count` floats at `values` (clipping each to [-R, R]). Throws DataError on a NaN
  // (named by index); +-infinity clips to +-R.
  std::vector<uint32_t> Quantize(const float* values, size_t count) const;
  std::vector<uint32_t> Quantize(const std::vector<float>& values) const {
    return Quantize(values.data(), values.size());
  }

  // Decodes the mod-2^32 sum of `num_sites` sites' codes into the sum of their (clipped) values:
  // sum[i] / scale - num_sites * R. Throws ConfigError unless 1 <= num_sites <= max_sites.
  std::vector<double> DequantizeSum(const std::vector<uint32_t>& sum, int num_sites) const;

 private:
  double clip_range_;
  int max_sites_;
  int quantization_bits_;
  double scale_;
  uint32_t max_code_;
};

// Expands `seed` into `num_words` pseudo-random 32-bit words: the AES-256-CTR keystream under key
// `seed` with an all-zero 16-byte IV, read as little-endian words. Deterministic per seed;
// distinct seeds give independent-looking streams. A seed must mask only one vector (a fresh seed
// per round), since reuse would reveal the difference of two masked vectors. Throws CryptoError
// if OpenSSL fails.
std::vector<uint32_t> PrgExpand(const MaskSeed& seed, size_t num_words);

// values[i] += mask[i] (mod 2^32). Throws FormatError if the sizes differ.
void AddMask(std::vector<uint32_t>& values, const std::vector<uint32_t>& mask);
// values[i] -= mask[i] (mod 2^32). Throws FormatError if the sizes differ.
void SubtractMask(std::vector<uint32_t>& values, const std::vector<uint32_t>& mask);

// values += PrgExpand(seed, values.size()) (mod 2^32), streamed in blocks without materialising
// the whole mask (the keystream buffer is wiped). Throws CryptoError if OpenSSL fails.
void AddPrgMask(std::vector<uint32_t>& values, const MaskSeed& seed);
// values -= PrgExpand(seed, values.size()) (mod 2^32), as AddPrgMask.
void SubtractPrgMask(std::vector<uint32_t>& values, const MaskSeed& seed);

// Sign with which site `self` applies the pairwise mask it shares with site `peer` (Bonawitz et al.
// 2017, section 4): +1 if peer > self (add), -1 if peer < self (subtract), so that the pair's two
// masks cancel in the sum. Throws ConfigError if self == peer.
int PairwiseMaskSign(uint32_t self, uint32_t peer);

// Applies the pairwise mask PRG(pair_seed) of sites `self` and `peer` to `values` with
// PairwiseMaskSign(self, peer). Throws ConfigError if self == peer, CryptoError if OpenSSL fails.
void ApplyPairwiseMask(std::vector<uint32_t>& values, uint32_t self, uint32_t peer,
                       const MaskSeed& pair_seed);

}  // namespace fedmed

#endif  // FEDMED_COMMON_SECAGG_MASKING_H_
