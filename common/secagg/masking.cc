#include "common/secagg/masking.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "common/crypto/openssl_util.h"
#include "common/util/byte_order.h"
#include "common/util/error.h"

namespace fedmed {
namespace {

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

// Keystream words per block of the streamed mask: 64 KiB.
constexpr size_t kBlockWords = 16384;

// AES-256-CTR keystream generator with an all-zero IV under `seed`.
class AesCtrStream {
 public:
  explicit AesCtrStream(const MaskSeed& seed) : ctx_(EVP_CIPHER_CTX_new()) {
    if (!ctx_) ThrowOpenSslError("allocating an AES-256-CTR context for a mask");
    const unsigned char iv[16] = {0};
    if (EVP_EncryptInit_ex(ctx_.get(), EVP_aes_256_ctr(), nullptr, seed.data(), iv) != 1) {
      ThrowOpenSslError("initialising AES-256-CTR for a mask");
    }
  }

  // Fills `words` with the next `n` keystream words (little-endian).
  void Next(uint32_t* words, size_t n) {
    unsigned char* bytes = reinterpret_cast<unsigned char*>(words);
    const size_t total = n * sizeof(uint32_t);
    std::fill(bytes, bytes + total, 0);
    size_t done = 0;
    while (done < total) {
      const int len = static_cast<int>(std::min<size_t>(total - done, 1 << 30));
      int out_len = 0;
      if (EVP_EncryptUpdate(ctx_.get(), bytes + done, &out_len, bytes + done, len) != 1 ||
          out_len != len) {
        ThrowOpenSslError("generating an AES-256-CTR mask");
      }
      done += static_cast<size_t>(len);
    }
    // Byte order: little-endian words on every host.
    for (size_t i = 0; i < n; ++i) words[i] = LoadLittleEndian32(bytes + 4 * i);
  }

 private:
  CipherCtxPtr ctx_;
};

void CheckSameSize(const std::vector<uint32_t>& values, const std::vector<uint32_t>& mask) {
  if (values.size() != mask.size()) {
    throw FormatError("mask of " + std::to_string(mask.size()) + " words applied to a vector of " +
                      std::to_string(values.size()) + " words");
  }
}

template <bool kAdd>
void ApplyPrgMask(std::vector<uint32_t>& values, const MaskSeed& seed) {
  AesCtrStream stream(seed);
  std::vector<uint32_t> block(std::min(kBlockWords, values.size()));
  for (size_t off = 0; off < values.size(); off += block.size()) {
    const size_t n = std::min(block.size(), values.size() - off);
    stream.Next(block.data(), n);
    uint32_t* v = values.data() + off;
    for (size_t i = 0; i < n; ++i) v[i] = kAdd ? v[i] + block[i] : v[i] - block[i];
  }
  if (!block.empty()) OPENSSL_cleanse(block.data(), block.size() * sizeof(uint32_t));
}

}  // namespace

FixedPointCodec::FixedPointCodec(double clip_range, int max_sites, int quantization_bits)
    : clip_range_(clip_range),
      max_sites_(max_sites),
      quantization_bits_(quantization_bits),
      scale_(0),
      max_code_(0) {
  if (quantization_bits < 8 || quantization_bits > 32) {
    throw ConfigError("secure aggregation quantization_bits must be in 8..32, got " +
                      std::to_string(quantization_bits));
  }
  if (!std::isfinite(clip_range) || clip_range <= 0) {
    throw ConfigError("secure aggregation clip range must be a finite number > 0, got " +
                      std::to_string(clip_range));
  }
  if (max_sites < 1 || max_sites > (1 << 16)) {
    throw ConfigError("secure aggregation supports 1..65536 sites, got " +
                      std::to_string(max_sites));
  }
  const double top = std::ldexp(1.0, quantization_bits) - 1;  // 2^bits - 1
  const double room = top - max_sites;                           // 2^bits - 1 - n
  scale_ = std::floor(room / (2.0 * max_sites * clip_range));
  if (!(scale_ >= 1)) {
    throw ConfigError("secure aggregation clip range " + std::to_string(clip_range) +
                      " is too large for " + std::to_string(max_sites) +
                      " sites: the fixed-point scale would be below 1 (need 2 * sites * range <= "
                      "2^" + std::to_string(quantization_bits) + " - 1 - sites)");
  }
  max_code_ = static_cast<uint32_t>(std::floor(top / max_sites));
}

std::vector<uint32_t> FixedPointCodec::Quantize(const float* values, size_t count) const {
  std::vector<uint32_t> out(count);
  const double r = clip_range_;
  for (size_t i = 0; i < count; ++i) {
    const double x = values[i];
    if (std::isnan(x)) {
      throw DataError("cannot quantise the update for secure aggregation: value " +
                      std::to_string(i) + " is NaN");
    }
    const double clipped = std::min(r, std::max(-r, x));
    const double code = std::nearbyint((clipped + r) * scale_);
    out[i] = std::min(max_code_, static_cast<uint32_t>(code));
  }
  return out;
}

std::vector<double> FixedPointCodec::DequantizeSum(const std::vector<uint32_t>& sum,
                                                   int num_sites) const {
  if (num_sites < 1 || num_sites > max_sites_) {
    throw ConfigError("cannot decode a sum over " + std::to_string(num_sites) +
                      " sites with a fixed-point code for 1.." + std::to_string(max_sites_));
  }
  std::vector<double> out(sum.size());
  const double offset = num_sites * clip_range_;
  for (size_t i = 0; i < sum.size(); ++i) out[i] = sum[i] / scale_ - offset;
  return out;
}

std::vector<uint32_t> PrgExpand(const MaskSeed& seed, size_t num_words) {
  std::vector<uint32_t> words(num_words);
  if (num_words != 0) AesCtrStream(seed).Next(words.data(), num_words);
  return words;
}

void AddMask(std::vector<uint32_t>& values, const std::vector<uint32_t>& mask) {
  CheckSameSize(values, mask);
  for (size_t i = 0; i < values.size(); ++i) values[i] += mask[i];
}

void SubtractMask(std::vector<uint32_t>& values, const std::vector<uint32_t>& mask) {
  CheckSameSize(values, mask);
  for (size_t i = 0; i < values.size(); ++i) values[i] -= mask[i];
}

void AddPrgMask(std::vector<uint32_t>& values, const MaskSeed& seed) {
  ApplyPrgMask<true>(values, seed);
}

void SubtractPrgMask(std::vector<uint32_t>& values, const MaskSeed& seed) {
  ApplyPrgMask<false>(values, seed);
}

int PairwiseMaskSign(uint32_t self, uint32_t peer) {
  if (self == peer) {
    throw ConfigError("a site has no pairwise mask with itself (site " + std::to_string(self) +
                      ")");
  }
  return peer > self ? 1 : -1;
}

void ApplyPairwiseMask(std::vector<uint32_t>& values, uint32_t self, uint32_t peer,
                       const MaskSeed& pair_seed) {
  if (PairwiseMaskSign(self, peer) > 0) {
    AddPrgMask(values, pair_seed);
  } else {
    SubtractPrgMask(values, pair_seed);
  }
}

}  // namespace fedmed
