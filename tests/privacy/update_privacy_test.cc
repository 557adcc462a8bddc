// Site-level DP on the update: the clipped norm is at most S and the noise has std z * S.
#include "common/privacy/update_privacy.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/util/error.h"

namespace fedmed {
namespace {

ModelState Update(float value, int64_t n1, int64_t n2) {
  ModelState s;
  s.tensors.push_back({"a.weight", {n1}, std::vector<float>(static_cast<size_t>(n1), value)});
  s.tensors.push_back({"b.bias", {n2}, std::vector<float>(static_cast<size_t>(n2), -value)});
  return s;
}

TEST(UpdatePrivacyTest, ClipsTheWholeUpdateToTheClippingNorm) {
  ModelState big = Update(1.0f, 60, 40);  // norm 10
  const UpdatePrivacyResult r = PrivatizeUpdate(&big, 2.0, 0.0, 1);
  EXPECT_NEAR(r.norm, 10.0, 1e-9);
  EXPECT_NEAR(r.scale, 0.2, 1e-12);
  EXPECT_NEAR(L2Norm(big), 2.0, 1e-6);
  EXPECT_FLOAT_EQ(big.tensors[0].values[0], 0.2f);  // direction kept
  EXPECT_FLOAT_EQ(big.tensors[1].values[0], -0.2f);

  ModelState small = Update(0.05f, 60, 40);  // norm 0.5 < S: untouched
  const ModelState before = small;
  EXPECT_EQ(PrivatizeUpdate(&small, 2.0, 0.0, 1).scale, 1.0);
  EXPECT_EQ(small.tensors[0].values, before.tensors[0].values);
}

TEST(UpdatePrivacyTest, NoiseHasStandardDeviationZTimesS) {
  ModelState zero = Update(0.0f, 600000, 400000);  // a million coordinates
  PrivatizeUpdate(&zero, 0.5, 1.3, 42);
  double sum = 0, squares = 0;
  int64_t n = 0;
  for (const NamedTensor& t : zero.tensors) {
    for (const float v : t.values) {
      sum += v;
      squares += static_cast<double>(v) * v;
      ++n;
    }
  }
  const double mean = sum / static_cast<double>(n);
  const double std = std::sqrt(squares / static_cast<double>(n) - mean * mean);
  // The sample std of 1e6 normals has relative standard error 1/sqrt(2e6) = 0.07%.
  EXPECT_NEAR(std, 1.3 * 0.5, 0.01 * 1.3 * 0.5);
  EXPECT_NEAR(mean, 0.0, 5 * 0.65 / std::sqrt(1e6));
}

TEST(UpdatePrivacyTest, TheSeedFixesTheNoise) {
  ModelState a = Update(0.1f, 100, 10), b = Update(0.1f, 100, 10), c = Update(0.1f, 100, 10);
  PrivatizeUpdate(&a, 1.0, 1.0, 7);
  PrivatizeUpdate(&b, 1.0, 1.0, 7);
  PrivatizeUpdate(&c, 1.0, 1.0, 8);
  EXPECT_EQ(a.tensors[0].values, b.tensors[0].values);
  EXPECT_NE(a.tensors[0].values, c.tensors[0].values);
}

TEST(UpdatePrivacyTest, BadSettingsAreRefused) {
  ModelState s = Update(1.0f, 3, 3);
  EXPECT_THROW(PrivatizeUpdate(&s, 0.0, 1.0, 1), ConfigError);
  EXPECT_THROW(PrivatizeUpdate(&s, 1.0, -1.0, 1), ConfigError);
  EXPECT_THROW(PrivatizeUpdate(&s, NAN, 1.0, 1), ConfigError);
}

}  // namespace
}  // namespace fedmed
