// The compressed update encodings (common/model/quantization.h) and their model-state format
// (dtype tags 2 and 3 of common/model/model_state.h): float16 rounding, the int8 error bound
// |q s - x| < s and its unbiasedness, and that a decoder refuses what does not fit.
#include "common/model/quantization.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "common/model/model_state.h"
#include "common/util/error.h"

namespace fedmed {
namespace {

ModelState RandomState(uint64_t seed, float stddev) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  ModelState s;
  s.tensors.push_back({"conv.weight", {8, 1, 3, 3}, std::vector<float>(72)});
  s.tensors.push_back({"conv.bias", {8}, std::vector<float>(8)});
  s.tensors.push_back({"fc.weight", {20, 500}, std::vector<float>(10000)});
  s.tensors.push_back({"zero", {3}, {0.0f, 0.0f, 0.0f}});
  for (NamedTensor& t : s.tensors) {
    if (t.name == "zero") continue;
    for (float& v : t.values) v = normal(rng);
  }
  return s;
}

TEST(QuantizationTest, EncodingNames) {
  for (UpdateEncoding e : {UpdateEncoding::kFloat32, UpdateEncoding::kFloat16,
                           UpdateEncoding::kInt8}) {
    EXPECT_EQ(ParseUpdateEncoding(UpdateEncodingName(e)), e);
  }
  EXPECT_FALSE(ParseUpdateEncoding("int4").has_value());
  EXPECT_FALSE(ParseUpdateEncoding("").has_value());
}

TEST(QuantizationTest, EveryFiniteHalfRoundTripsExactly) {
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    if ((h & 0x7c00u) == 0x7c00u) continue;  // infinities and NaNs
    const float f = HalfToFloat(static_cast<uint16_t>(h));
    ASSERT_EQ(FloatToHalf(f), h) << "half bits " << h << " = " << f;
  }
  EXPECT_EQ(HalfToFloat(0x3c00), 1.0f);
  EXPECT_EQ(HalfToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isinf(HalfToFloat(0x7c00)));
}

TEST(QuantizationTest, HalfRoundsToNearestTiesToEven) {
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie: to even (1.0)
  EXPECT_EQ(FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie: to even (up)
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.5f, -11)), 0x3c01);      // above the tie: up
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);             // subnormal tie: to 0
  EXPECT_EQ(FloatToHalf(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(65519.0f), 0x7bff);  // just below the tie with 65536
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);  // rounds beyond 65504: infinity
  // Relative error at most 2^-11 in the normal range.
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> exponent(-14, 15.99);
  for (int i = 0; i < 100000; ++i) {
    const auto x = static_cast<float>(std::pow(2.0, exponent(rng)));
    if (x > 65504.0f) continue;
    const float back = HalfToFloat(FloatToHalf(x));
    ASSERT_LE(std::fabs(back - x), std::ldexp(x, -11)) << x;
  }
}

TEST(QuantizationTest, Int8ErrorIsBelowTheScaleAndCodesInRange) {
  std::mt19937_64 rng = QuantizationRng(3);
  for (const float stddev : {1e-6f, 0.01f, 3.0f}) {
    const ModelState s = RandomState(11, stddev);
    for (const NamedTensor& t : s.tensors) {
      const Int8Tensor q = QuantizeInt8(t.values, rng);
      float max_abs = 0;
      for (float v : t.values) max_abs = std::max(max_abs, std::fabs(v));
      EXPECT_FLOAT_EQ(q.scale, max_abs / 127.0f);
      for (size_t i = 0; i < t.values.size(); ++i) {
        ASSERT_GE(q.q[i], -127);
        const float decoded = static_cast<float>(q.q[i]) * q.scale;
        if (q.scale == 0) {  // a tensor of zeros: exact
          ASSERT_EQ(decoded, t.values[i]);
          continue;
        }
        // |q s - x| < s exactly; the float32 product adds at most 2^-17 s.
        ASSERT_LT(std::fabs(decoded - t.values[i]), q.scale * (1 + std::ldexp(1.0f, -17)))
            << t.name << "[" << i << "]";
      }
    }
  }
}

// E[q s] = x: averaged over many independent quantisations, each value comes out within a few
// standard errors of itself. Round-to-nearest (biased) would miss by 0.3 s for the values below.
TEST(QuantizationTest, Int8StochasticRoundingIsUnbiased) {
  std::vector<float> x = {1.27f};  // scale s = 0.01
  for (int i = 0; i < 63; ++i) x.push_back(0.01f * (static_cast<float>(i % 7) - 3.0f + 0.3f));
  constexpr int kTrials = 4000;
  std::vector<double> sum(x.size(), 0.0);
  std::mt19937_64 rng = QuantizationRng(42);
  float scale = 0;
  for (int t = 0; t < kTrials; ++t) {
    const Int8Tensor q = QuantizeInt8(x, rng);
    scale = q.scale;
    for (size_t i = 0; i < x.size(); ++i) sum[i] += static_cast<double>(q.q[i]) * q.scale;
  }
  // Each draw is q s with q one of two neighbours: variance <= s^2 / 4; the mean of kTrials
  // draws has standard error <= s / (2 sqrt(kTrials)) = 0.0079 s. Allow 5 standard errors.
  const double tolerance = 5 * scale / (2 * std::sqrt(static_cast<double>(kTrials)));
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(sum[i] / kTrials, x[i], tolerance) << "value " << i;
  }
}

TEST(QuantizationTest, ModelStateRoundTripsInEveryEncodingWithTheAnnouncedSize) {
  const ModelState s = RandomState(5, 0.02f);
  const int64_t float32_size = EncodedModelStateSize(s, UpdateEncoding::kFloat32);
  for (UpdateEncoding e : {UpdateEncoding::kFloat32, UpdateEncoding::kFloat16,
                           UpdateEncoding::kInt8}) {
    SCOPED_TRACE(UpdateEncodingName(e));
    const std::string bytes = EncodeModelState(s, e, 9);
    EXPECT_EQ(static_cast<int64_t>(bytes.size()), EncodedModelStateSize(s, e));
    EXPECT_EQ(bytes, EncodeModelState(s, e, 9));  // deterministic for a seed
    const ModelState back = DecodeModelState(bytes, "update", e);
    CheckSameLayout(s, back, "update");
    // Every truncation is refused.
    for (size_t n = 0; n < bytes.size(); n += 7) {
      EXPECT_THROW(DecodeModelState(bytes.substr(0, n), "update", e), FormatError) << n;
    }
    // A decoder told another encoding refuses the bytes, naming the dtype tag.
    const UpdateEncoding other =
        e == UpdateEncoding::kInt8 ? UpdateEncoding::kFloat32 : UpdateEncoding::kInt8;
    try {
      DecodeModelState(bytes, "update", other);
      ADD_FAILURE() << "decoded as " << UpdateEncodingName(other);
    } catch (const FormatError& err) {
      EXPECT_NE(std::string(err.what()).find("dtype tag"), std::string::npos) << err.what();
    }
  }
  EXPECT_LE(static_cast<double>(EncodedModelStateSize(s, UpdateEncoding::kInt8)),
            0.26 * static_cast<double>(float32_size));
  EXPECT_NE(EncodeModelState(s, UpdateEncoding::kInt8, 1),
            EncodeModelState(s, UpdateEncoding::kInt8, 2));
}

TEST(QuantizationTest, DecoderRefusesBadInt8ScalesAndCodes) {
  ModelState s;
  s.tensors.push_back({"w", {2}, {1.0f, -1.0f}});
  const std::string good = EncodeModelState(s, UpdateEncoding::kInt8, 0);
  // Layout: 12 header bytes, name length 4, name 1, rank 4, dim 8, tag 1, scale 4, values 2.
  const size_t scale_at = 12 + 4 + 1 + 4 + 8 + 1;
  ASSERT_EQ(good.size(), scale_at + 4 + 2);
  const auto with_scale = [&](float scale) {
    std::string b = good;
    std::memcpy(b.data() + scale_at, &scale, 4);
    return b;
  };
  EXPECT_NO_THROW(DecodeModelState(with_scale(0.0f), "u", UpdateEncoding::kInt8));
  for (const float bad : {-1.0f, std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN()}) {
    EXPECT_THROW(DecodeModelState(with_scale(bad), "u", UpdateEncoding::kInt8), FormatError)
        << bad;
  }
  // A huge finite scale makes q s overflow: refused as not finite.
  std::string huge = with_scale(std::numeric_limits<float>::max());
  EXPECT_THROW(DecodeModelState(huge, "u", UpdateEncoding::kInt8), FormatError);
  std::string minus128 = good;
  minus128[scale_at + 4] = static_cast<char>(0x80);
  try {
    DecodeModelState(minus128, "u", UpdateEncoding::kInt8);
    ADD_FAILURE() << "accepted -128";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("-128"), std::string::npos) << e.what();
  }
}

TEST(QuantizationTest, Float16RefusesWhatItCannotHold) {
  ModelState s;
  s.tensors.push_back({"w", {2}, {1.0f, 70000.0f}});
  EXPECT_THROW(EncodeModelState(s, UpdateEncoding::kFloat16), FormatError);
  s.tensors[0].values[1] = 65504.0f;
  const std::string bytes = EncodeModelState(s, UpdateEncoding::kFloat16);
  // A half infinity on the wire is refused as not finite.
  std::string inf = bytes;
  inf[inf.size() - 2] = 0x00;
  inf[inf.size() - 1] = 0x7c;
  EXPECT_THROW(DecodeModelState(inf, "u", UpdateEncoding::kFloat16), FormatError);
  EXPECT_EQ(DecodeModelState(bytes, "u", UpdateEncoding::kFloat16).tensors[0].values[1],
            65504.0f);
}

}  // namespace
}  // namespace fedmed
