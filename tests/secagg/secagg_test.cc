// Secure aggregation's pure pieces (Bonawitz et al., CCS 2017): Shamir sharing over
// GF(2^127 - 1), fixed-point quantisation, AES-256-CTR masks and their cancellation in the sum.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/secagg/masking.h"
#include "common/secagg/shamir.h"
#include "common/util/error.h"

namespace fedmed {
namespace {

std::string RandomBytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

MaskSeed RandomSeed(std::mt19937_64& rng) {
  MaskSeed seed;
  for (uint8_t& b : seed) b = static_cast<uint8_t>(rng() & 0xff);
  return seed;
}

// The secret rebuilt from `shares`, or "<error>" when ShamirCombine rejects them as malformed.
std::string CombineOrError(const std::vector<ShamirShare>& shares, int t, size_t size) {
  try {
    return ShamirCombine(shares, t, size);
  } catch (const FormatError&) {
    return "<error>";
  }
}

// ---------------------------------------------------------------- Shamir

TEST(ShamirTest, AnyThresholdSubsetRebuildsTheSecret) {
  std::mt19937_64 rng(1);
  const std::vector<std::pair<int, int>> params = {{1, 1}, {1, 5}, {2, 3}, {3, 5},
                                                   {5, 5}, {4, 10}, {10, 10}, {7, 30}};
  for (const auto& [t, n] : params) {
    for (const size_t size : {size_t{1}, size_t{15}, size_t{16}, size_t{32}, size_t{100}}) {
      const std::string secret = RandomBytes(rng, size);
      const auto shares = ShamirSplit(secret, t, n);
      ASSERT_EQ(shares.size(), static_cast<size_t>(n));
      for (int trial = 0; trial < 5; ++trial) {
        auto subset = shares;
        std::shuffle(subset.begin(), subset.end(), rng);
        subset.resize(static_cast<size_t>(t));
        EXPECT_EQ(ShamirCombine(subset, t, size), secret) << "t=" << t << " n=" << n;
      }
      EXPECT_EQ(ShamirCombine(shares, t, size), secret);  // all n: uses the first t
    }
  }
}

TEST(ShamirTest, MaximumSizeSecretAndEmptySecret) {
  std::mt19937_64 rng(2);
  const std::string secret = RandomBytes(rng, kShamirMaxSecretBytes);
  auto shares = ShamirSplit(secret, 3, 4);
  EXPECT_EQ(shares[0].y.size(), ShamirNumChunks(1024) * kShamirElementBytes);
  EXPECT_EQ(ShamirCombine({shares[3], shares[1], shares[0]}, 3, secret.size()), secret);
  EXPECT_EQ(ShamirCombine(ShamirSplit("", 2, 3), 2, 0), "");
}

TEST(ShamirTest, AllOnesSecretNearChunkLimit) {
  const std::string secret(45, '\xff');  // chunks of 2^120 - 1
  const auto shares = ShamirSplit(secret, 2, 3);
  EXPECT_EQ(ShamirCombine({shares[2], shares[0]}, 2, secret.size()), secret);
}

TEST(ShamirTest, FewerThanThresholdSharesDoNotRebuildTheSecret) {
  std::mt19937_64 rng(3);
  for (const auto& [t, n] : std::vector<std::pair<int, int>>{{2, 3}, {3, 5}, {5, 5}, {6, 10}}) {
    const std::string secret = RandomBytes(rng, 32);
    auto shares = ShamirSplit(secret, t, n);
    shares.resize(static_cast<size_t>(t - 1));
    EXPECT_NE(CombineOrError(shares, t - 1, secret.size()), secret);
    EXPECT_THROW(ShamirCombine(shares, t, secret.size()), FormatError);
  }
}

TEST(ShamirTest, SharesAreFreshRandomEachTime) {
  const std::string secret(32, 'k');
  EXPECT_NE(ShamirSplit(secret, 3, 5)[0].y, ShamirSplit(secret, 3, 5)[0].y);
}

TEST(ShamirTest, TamperedShareDoesNotRebuildTheSecret) {
  std::mt19937_64 rng(4);
  const std::string secret = RandomBytes(rng, 32);
  const auto shares = ShamirSplit(secret, 3, 5);
  for (size_t byte = 0; byte < shares[1].y.size(); byte += 5) {
    auto subset = std::vector<ShamirShare>{shares[0], shares[1], shares[2]};
    subset[1].y[byte] ^= 0x01;
    if (byte % kShamirElementBytes == kShamirElementBytes - 1) subset[1].y[byte] ^= 0x01 | 0x02;
    EXPECT_NE(CombineOrError(subset, 3, secret.size()), secret) << "byte " << byte;
  }
  auto wrong_x = std::vector<ShamirShare>{shares[0], shares[1], shares[2]};
  wrong_x[2].x = 4;
  EXPECT_NE(CombineOrError(wrong_x, 3, secret.size()), secret);
}

TEST(ShamirTest, EncodeDecodeRoundTrip) {
  const auto shares = ShamirSplit("a 32-byte self-mask seed.......!", 2, 3);
  for (const auto& s : shares) {
    const std::string bytes = EncodeShamirShare(s);
    EXPECT_EQ(bytes.size(), 4 + s.y.size());
    const ShamirShare back = DecodeShamirShare(bytes);
    EXPECT_EQ(back.x, s.x);
    EXPECT_EQ(back.y, s.y);
  }
  EXPECT_THROW(DecodeShamirShare("abc"), FormatError);
  EXPECT_THROW(DecodeShamirShare(EncodeShamirShare(shares[0]) + "x"), FormatError);
  std::string zero_x = EncodeShamirShare(shares[0]);
  zero_x[3] = 0;
  EXPECT_THROW(DecodeShamirShare(zero_x), FormatError);
  std::string out_of_field = EncodeShamirShare(shares[0]);
  std::fill(out_of_field.begin() + 4, out_of_field.begin() + 20, '\xff');
  EXPECT_THROW(DecodeShamirShare(out_of_field), FormatError);
}

TEST(ShamirTest, RejectsBadParametersAndShares) {
  EXPECT_THROW(ShamirSplit("s", 0, 3), ConfigError);
  EXPECT_THROW(ShamirSplit("s", 4, 3), ConfigError);
  EXPECT_THROW(ShamirSplit("s", 2, kShamirMaxShares + 1), ConfigError);
  EXPECT_THROW(ShamirSplit(std::string(kShamirMaxSecretBytes + 1, 'x'), 2, 3), ConfigError);
  const auto shares = ShamirSplit("secret", 2, 3);
  EXPECT_THROW(ShamirCombine(shares, 0, 6), ConfigError);
  EXPECT_THROW(ShamirCombine(shares, 2, kShamirMaxSecretBytes + 1), ConfigError);
  EXPECT_THROW(ShamirCombine({shares[0]}, 2, 6), FormatError);
  EXPECT_THROW(ShamirCombine({shares[0], shares[0]}, 2, 6), FormatError);
  auto zero = shares;
  zero[1].x = 0;
  EXPECT_THROW(ShamirCombine(zero, 2, 6), FormatError);
  auto ragged = shares;
  ragged[1].y.push_back(0);
  EXPECT_THROW(ShamirCombine(ragged, 2, 6), FormatError);
  EXPECT_THROW(ShamirCombine(shares, 2, 16), FormatError);  // 2 chunks expected, 1 given
  EXPECT_EQ(ShamirCombine(shares, 2, 6), "secret");
}

// ---------------------------------------------------------------- quantisation

TEST(FixedPointCodecTest, ScaleLeavesRoomForTheSumOfAllSites) {
  const FixedPointCodec codec(1.0, 10);
  EXPECT_EQ(codec.scale(), 214748364.0);  // floor((2^32 - 1 - 10) / 20)
  EXPECT_DOUBLE_EQ(codec.ErrorBound(10), 10 * 0.5 / 214748364.0);
  // The largest code times max_sites stays below 2^32.
  const std::vector<uint32_t> top = codec.Quantize(std::vector<float>{1.0f, 5.0f});
  EXPECT_EQ(top[0], top[1]);
  EXPECT_LT(static_cast<uint64_t>(top[0]) * 10, uint64_t{1} << 32);
  EXPECT_EQ(codec.Quantize(std::vector<float>{-3.0f})[0], 0u);
  EXPECT_THROW(FixedPointCodec(0.0, 3), ConfigError);
  EXPECT_THROW(FixedPointCodec(std::nan(""), 3), ConfigError);
  EXPECT_THROW(FixedPointCodec(1.0, 0), ConfigError);
  EXPECT_THROW(FixedPointCodec(1e9, 10), ConfigError);
  EXPECT_THROW(codec.Quantize(std::vector<float>{std::nanf("")}), DataError);
  EXPECT_THROW(codec.DequantizeSum({0}, 11), ConfigError);
}

void CheckDequantizedSum(int num_sites, int max_sites, double range) {
  std::mt19937_64 rng(100 + num_sites);
  std::uniform_real_distribution<float> dist(static_cast<float>(-1.2 * range),
                                             static_cast<float>(1.2 * range));
  const FixedPointCodec codec(range, max_sites);
  const size_t dim = 5000;
  std::vector<double> exact(dim, 0.0);
  std::vector<uint32_t> sum(dim, 0);
  for (int s = 0; s < num_sites; ++s) {
    std::vector<float> update(dim);
    for (float& v : update) v = dist(rng);
    update[0] = static_cast<float>(range);  // extremes: every site at the top and bottom
    update[1] = static_cast<float>(-range);
    for (size_t i = 0; i < dim; ++i) {
      exact[i] += std::clamp(static_cast<double>(update[i]), -range, range);
    }
    AddMask(sum, codec.Quantize(update));
  }
  const std::vector<double> decoded = codec.DequantizeSum(sum, num_sites);
  // The documented bound, plus the double rounding of the decode (a few ulps of n * R).
  const double bound = codec.ErrorBound(num_sites) + 8e-16 * num_sites * range;
  double worst = 0;
  for (size_t i = 0; i < dim; ++i) worst = std::max(worst, std::abs(decoded[i] - exact[i]));
  EXPECT_LE(worst, bound)
      << num_sites << " sites, scale " << codec.scale();
  EXPECT_NEAR(decoded[0], num_sites * range, bound);
  EXPECT_NEAR(decoded[1], -num_sites * range, bound);
}

TEST(FixedPointCodecTest, DequantizedSumWithinBoundFor3And10Sites) {
  CheckDequantizedSum(3, 3, 1.0);
  CheckDequantizedSum(10, 10, 1.0);
  CheckDequantizedSum(3, 10, 0.05);
  CheckDequantizedSum(10, 10, 7.5);
}

// ---------------------------------------------------------------- PRG and masks

TEST(PrgTest, DeterministicPerSeedAndDistinctAcrossSeeds) {
  std::mt19937_64 rng(7);
  const MaskSeed a = RandomSeed(rng), b = RandomSeed(rng);
  const auto wa = PrgExpand(a, 100000);
  EXPECT_EQ(wa, PrgExpand(a, 100000));
  const auto prefix = PrgExpand(a, 37);
  EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), wa.begin()));
  const auto wb = PrgExpand(b, 100000);
  size_t equal = 0;
  for (size_t i = 0; i < wa.size(); ++i) equal += wa[i] == wb[i];
  EXPECT_LT(equal, 5u);
  EXPECT_TRUE(PrgExpand(a, 0).empty());
}

TEST(PrgTest, AesCtrKnownAnswer) {
  // AES-256 of the all-zero block under the all-zero key (the first CTR block with a zero IV):
  // dc95c078a2408989ad48a21492842087.
  const auto w = PrgExpand(MaskSeed{}, 4);
  EXPECT_EQ(w[0], 0x78c095dcu);
  EXPECT_EQ(w[1], 0x898940a2u);
  EXPECT_EQ(w[2], 0x14a248adu);
  EXPECT_EQ(w[3], 0x87208492u);
}

TEST(PrgTest, StreamedMaskEqualsExpandedMask) {
  std::mt19937_64 rng(8);
  const MaskSeed seed = RandomSeed(rng);
  const size_t n = 100003;  // several 16384-word blocks and a partial one
  std::vector<uint32_t> v(n), w(n);
  for (size_t i = 0; i < n; ++i) v[i] = w[i] = static_cast<uint32_t>(rng());
  AddPrgMask(v, seed);
  AddMask(w, PrgExpand(seed, n));
  EXPECT_EQ(v, w);
  SubtractPrgMask(v, seed);
  SubtractMask(w, PrgExpand(seed, n));
  EXPECT_EQ(v, w);
  std::vector<uint32_t> short_mask(3);
  EXPECT_THROW(AddMask(v, short_mask), FormatError);
  EXPECT_THROW(SubtractMask(v, short_mask), FormatError);
}

TEST(MaskTest, PairwiseSignConvention) {
  EXPECT_EQ(PairwiseMaskSign(1, 2), 1);
  EXPECT_EQ(PairwiseMaskSign(2, 1), -1);
  EXPECT_THROW(PairwiseMaskSign(3, 3), ConfigError);
  std::vector<uint32_t> v(10, 0);
  EXPECT_THROW(ApplyPairwiseMask(v, 3, 3, MaskSeed{}), ConfigError);
}

// Every site's masked update (quantised + self mask + pairwise masks), as in Bonawitz et al.
std::vector<std::vector<uint32_t>> MaskAll(const std::vector<std::vector<uint32_t>>& quantised,
                                           const std::vector<MaskSeed>& self_seeds,
                                           const std::vector<std::vector<MaskSeed>>& pair) {
  const size_t n = quantised.size();
  std::vector<std::vector<uint32_t>> masked = quantised;
  for (size_t u = 0; u < n; ++u) {
    AddPrgMask(masked[u], self_seeds[u]);
    for (size_t v = 0; v < n; ++v) {
      if (v != u) {
        ApplyPairwiseMask(masked[u], static_cast<uint32_t>(u + 1), static_cast<uint32_t>(v + 1),
                          pair[u][v]);
      }
    }
  }
  return masked;
}

void CheckMasksCancel(int num_sites) {
  std::mt19937_64 rng(200 + num_sites);
  const size_t n = static_cast<size_t>(num_sites), dim = 20000;
  const FixedPointCodec codec(1.0, num_sites);
  std::normal_distribution<float> dist(0.0f, 0.3f);
  std::vector<std::vector<uint32_t>> quantised(n);
  std::vector<uint32_t> plain_sum(dim, 0);
  for (auto& q : quantised) {
    std::vector<float> update(dim);
    for (float& x : update) x = dist(rng);
    q = codec.Quantize(update);
    AddMask(plain_sum, q);
  }
  std::vector<MaskSeed> self_seeds(n);
  for (auto& s : self_seeds) s = RandomSeed(rng);
  std::vector<std::vector<MaskSeed>> pair(n, std::vector<MaskSeed>(n));
  for (size_t u = 0; u < n; ++u) {
    for (size_t v = u + 1; v < n; ++v) pair[u][v] = pair[v][u] = RandomSeed(rng);
  }
  const auto masked = MaskAll(quantised, self_seeds, pair);
  std::vector<uint32_t> sum(dim, 0);
  for (size_t u = 0; u < n; ++u) {
    EXPECT_NE(masked[u], quantised[u]);
    AddMask(sum, masked[u]);
  }
  for (size_t u = 0; u < n; ++u) SubtractPrgMask(sum, self_seeds[u]);
  EXPECT_EQ(sum, plain_sum) << num_sites << " sites";
}

TEST(MaskTest, UnmaskedSumEqualsPlainQuantisedSumFor3And10Sites) {
  CheckMasksCancel(3);
  CheckMasksCancel(10);
}

TEST(MaskTest, MaskedUpdateLooksUniformChiSquare) {
  // A site's masked update of 1e5 words (a highly non-uniform quantised update: mostly zeros
  // around the code of 0.0), top 8 bits in 256 bins. Chi-square with 255 degrees of freedom: the
  // 0.999 quantile is about 330.5. Seeded, so deterministic.
  std::mt19937_64 rng(12345);
  const size_t dim = 100000;
  const FixedPointCodec codec(1.0, 10);
  std::vector<float> update(dim, 0.0f);
  for (size_t i = 0; i < dim; i += 97) update[i] = 0.5f;
  std::vector<uint32_t> masked = codec.Quantize(update);
  AddPrgMask(masked, RandomSeed(rng));
  for (uint32_t peer : {1u, 3u, 4u}) ApplyPairwiseMask(masked, 2, peer, RandomSeed(rng));
  std::vector<double> bins(256, 0.0);
  for (const uint32_t w : masked) bins[w >> 24] += 1;
  const double expected = static_cast<double>(dim) / 256;
  double chi2 = 0;
  for (const double c : bins) chi2 += (c - expected) * (c - expected) / expected;
  EXPECT_LT(chi2, 330.5);
  // And the unmasked quantised update is caught by the same test.
  std::vector<double> raw(256, 0.0);
  for (const uint32_t w : codec.Quantize(update)) raw[w >> 24] += 1;
  double chi2_raw = 0;
  for (const double c : raw) chi2_raw += (c - expected) * (c - expected) / expected;
  EXPECT_GT(chi2_raw, 330.5);
}

}  // namespace
}  // namespace fedmed
