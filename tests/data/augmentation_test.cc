// Training-time augmentation: seeded, identity when disabled, exact flips, each step's effect on
// hand-made images, validation, and its use in TrainLocal and DP-SGD training (never changing
// training when disabled).
#include "common/data/augmentation.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "common/model/local_training.h"
#include "common/privacy/dp_sgd.h"
#include "common/util/error.h"

namespace fedmed {
namespace {

const std::array<float, 3> kHalf{0.5f, 0.5f, 0.5f};

torch::Tensor RandomBatch(int64_t b, int64_t c, int64_t h, int64_t w, uint64_t seed) {
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(seed);
  return torch::rand({b, c, h, w}, g) * 2 - 1;  // normalised with mean = std = 0.5
}

AugmentationSpec Everything() {
  AugmentationSpec s;
  s.hflip_probability = 0.5;
  s.rotation_degrees = 15;
  s.crop_scale_min = 0.7;
  s.brightness = 0.3;
  s.contrast = 0.3;
  return s;
}

TEST(AugmentTest, SameSeedSameBatchDifferentSeedDifferentBatch) {
  const torch::Tensor x = RandomBatch(8, 3, 20, 20, 1);
  at::Generator a = MakeAugmentationGenerator(7), b = MakeAugmentationGenerator(7),
                c = MakeAugmentationGenerator(8);
  const torch::Tensor ya = Augment(x, Everything(), kHalf, kHalf, a);
  const torch::Tensor yb = Augment(x, Everything(), kHalf, kHalf, b);
  const torch::Tensor yc = Augment(x, Everything(), kHalf, kHalf, c);
  EXPECT_EQ(ya.sizes(), x.sizes());
  EXPECT_TRUE(torch::equal(ya, yb));
  EXPECT_FALSE(torch::equal(ya, yc));
  EXPECT_FALSE(torch::equal(ya, x));
  // The generator advances: the next batch is augmented differently.
  EXPECT_FALSE(torch::equal(Augment(x, Everything(), kHalf, kHalf, a), ya));
  // Values stay in the normalised range of [0, 1] images.
  EXPECT_GE(ya.min().item<float>(), -1.0f - 1e-5f);
  EXPECT_LE(ya.max().item<float>(), 1.0f + 1e-5f);
}

TEST(AugmentTest, DisabledIsTheIdentityAndDrawsNothing) {
  const torch::Tensor x = RandomBatch(4, 1, 10, 12, 2);
  at::Generator g = MakeAugmentationGenerator(3), fresh = MakeAugmentationGenerator(3);
  const torch::Tensor y = Augment(x, AugmentationSpec{}, kHalf, kHalf, g);
  EXPECT_TRUE(y.is_same(x));
  // g was not advanced: it still draws what a fresh generator draws.
  EXPECT_TRUE(torch::equal(torch::rand({5}, g), torch::rand({5}, fresh)));
}

TEST(AugmentTest, FlipProbabilityOneIsAnExactMirror) {
  const torch::Tensor x = RandomBatch(5, 3, 7, 9, 4);
  AugmentationSpec s;
  s.hflip_probability = 1;
  at::Generator g = MakeAugmentationGenerator(0);
  EXPECT_TRUE(torch::equal(Augment(x, s, kHalf, kHalf, g), x.flip({3})));
  // With probability 0.5 every image is either itself or its mirror, and both occur.
  s.hflip_probability = 0.5;
  const torch::Tensor big = RandomBatch(64, 1, 4, 4, 5);
  const torch::Tensor y = Augment(big, s, kHalf, kHalf, g);
  int flipped = 0;
  for (int64_t i = 0; i < 64; ++i) {
    const bool same = torch::equal(y[i], big[i]), mirror = torch::equal(y[i], big[i].flip({2}));
    EXPECT_TRUE(same || mirror) << i;
    flipped += mirror ? 1 : 0;
  }
  EXPECT_GT(flipped, 16);
  EXPECT_LT(flipped, 48);
}

TEST(AugmentTest, RotationKeepsTheCentreAndFillsCornersWithBlack) {
  // A constant grey image rotated by up to 45 degrees: the centre keeps its value, and some
  // corner pixels become black (pixel 0 -> -mean/std = -1 with mean = std = 0.5) for at least
  // one image of the batch.
  const torch::Tensor x = torch::full({16, 1, 21, 21}, 0.2f);
  AugmentationSpec s;
  s.rotation_degrees = 45;
  at::Generator g = MakeAugmentationGenerator(11);
  const torch::Tensor y = Augment(x, s, kHalf, kHalf, g);
  EXPECT_TRUE(torch::allclose(y.select(2, 10).select(2, 10), torch::full({16, 1}, 0.2f)));
  EXPECT_LT(y.select(2, 0).select(2, 0).min().item<float>(), -0.9f);
  // Black is -mean/std in normalised units: with mean 0.2 and std 0.4 it is -0.5.
  const torch::Tensor z = Augment(x, s, {0.2f, 0.2f, 0.2f}, {0.4f, 0.4f, 0.4f}, g);
  EXPECT_NEAR(z.min().item<float>(), -0.5f, 1e-5);
}

TEST(AugmentTest, CropOfAHorizontalRampStretchesIt) {
  // A ramp along x: a resized crop of scale < 1 covers a narrower range of x, so the range of
  // each augmented row is smaller than the original's (never larger), and no black fill appears.
  const int64_t w = 32;
  const torch::Tensor ramp =
      (torch::arange(w, torch::kFloat) / (w - 1) * 2 - 1).view({1, 1, 1, w}).expand({8, 1, w, w})
          .contiguous();
  AugmentationSpec s;
  s.crop_scale_min = 0.25;
  at::Generator g = MakeAugmentationGenerator(12);
  const torch::Tensor y = Augment(ramp, s, kHalf, kHalf, g);
  for (int64_t i = 0; i < 8; ++i) {
    const torch::Tensor row = y[i][0][w / 2];
    const float range = (row.max() - row.min()).item<float>();
    EXPECT_LT(range, 2.0f - 1e-3f) << i;
    EXPECT_GT(range, 0.5f) << i;  // area >= 1/4 and aspect <= 4/3: width >= 0.43
    EXPECT_GE(y[i].min().item<float>(), -1.0f - 1e-5f);
  }
}

TEST(AugmentTest, BrightnessAndContrastFollowColorJitter) {
  // Brightness only, amount 1: factor in [0, 2]; u -> clamp(b u). For u = 0.25 everywhere, the
  // output u' = b / 4 is constant per image, and b differs between images.
  const torch::Tensor x = torch::full({6, 3, 5, 5}, -0.5f);  // u = 0.25
  AugmentationSpec s;
  s.brightness = 1;
  at::Generator g = MakeAugmentationGenerator(13);
  const torch::Tensor y = Augment(x, s, kHalf, kHalf, g);
  std::vector<float> factors;
  for (int64_t i = 0; i < 6; ++i) {
    const torch::Tensor u = y[i] * 0.5 + 0.5;
    EXPECT_NEAR((u.max() - u.min()).item<float>(), 0, 1e-6);
    const float b = u.mean().item<float>() / 0.25f;
    EXPECT_GE(b, 0);
    EXPECT_LE(b, 2);
    factors.push_back(b);
  }
  EXPECT_NE(factors[0], factors[1]);
  // Contrast only: every image keeps its grey mean (no clamping here) and its values move
  // towards (c < 1) or away from (c > 1) it by one common factor.
  s = AugmentationSpec{};
  s.contrast = 0.5;
  torch::Tensor img = torch::zeros({4, 1, 2, 2});
  img.index_put_({torch::indexing::Slice(), 0, 0, 0}, -0.2f);  // u = 0.4
  img.index_put_({torch::indexing::Slice(), 0, 1, 1}, 0.2f);   // u = 0.6
  const torch::Tensor out = Augment(img, s, kHalf, kHalf, g);
  for (int64_t i = 0; i < 4; ++i) {
    const torch::Tensor u = out[i] * 0.5 + 0.5;
    EXPECT_NEAR(u.mean().item<float>(), 0.5f, 1e-6);
    const float c = (u[0][1][1].item<float>() - 0.5f) / 0.1f;
    EXPECT_GE(c, 0.5f - 1e-4f);
    EXPECT_LE(c, 1.5f + 1e-4f);
    EXPECT_NEAR(u[0][0][0].item<float>(), 0.5f - 0.1f * c, 1e-5);
  }
}

TEST(AugmentTest, SpecValidationNamesTheField) {
  const auto message = [](const AugmentationSpec& s) {
    try {
      ValidateAugmentationSpec(s, "x.");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  AugmentationSpec s;
  EXPECT_EQ(message(s), "no error");
  EXPECT_FALSE(s.enabled());
  s.hflip_probability = 1.5;
  EXPECT_EQ(message(s), "x.hflip_probability: expected a probability in [0, 1], got 1.5");
  s = {};
  s.crop_scale_min = 0;
  EXPECT_NE(message(s).find("x.crop_scale_min"), std::string::npos);
  s = {};
  s.rotation_degrees = std::nan("");
  EXPECT_NE(message(s).find("x.rotation_degrees"), std::string::npos);
  TrainSettings t;
  t.augmentation.contrast = -1;
  EXPECT_THROW(ValidateTrainSettings(t), ConfigError);
  const torch::Tensor wrong = torch::zeros({2, 2, 4, 4});
  at::Generator g = MakeAugmentationGenerator(0);
  EXPECT_THROW(Augment(wrong, Everything(), kHalf, kHalf, g), DataError);
}

bool Same(const ModelState& a, const ModelState& b) {
  if (a.tensors.size() != b.tensors.size()) return false;
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    if (a.tensors[i].name != b.tensors[i].name || a.tensors[i].values != b.tensors[i].values) {
      return false;
    }
  }
  return true;
}

// A small separable problem: class 1 images are brighter on the left half.
ImageSet TinyImages(int64_t n) {
  ImageSet set;
  set.height = set.width = 12;
  set.channels = 1;
  set.num_classes = 2;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = i % 2;
    for (int64_t y = 0; y < 12; ++y) {
      for (int64_t x = 0; x < 12; ++x) {
        const int v = (label == 1 && x < 6 ? 180 : 70) + static_cast<int>((i * 13 + y * 7 + x) % 40);
        set.pixels.push_back(static_cast<uint8_t>(v));
      }
    }
    set.labels.push_back(label);
  }
  return set;
}

// The cnn on 64 TinyImages with one compute thread, and the settings the tests augment: one
// epoch of batches of 16, seed 3.
class AugmentedTrainingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetComputeThreads(1);
    plain_.batch_size = 16;
    plain_.seed = 3;
  }

  const ModelSpec spec_{"cnn", 1, 2, 12};
  const ImageSet data_ = TinyImages(64);
  TrainSettings plain_;
};

TEST_F(AugmentedTrainingTest, TrainLocalIsSeededAndUnchangedWhenDisabled) {
  const ModelState global = InitialModelState(spec_, 5);
  TrainSettings augmented = plain_;
  augmented.augmentation = Everything();
  const TrainResult p1 = TrainLocal(spec_, global, data_, plain_);
  const TrainResult a1 = TrainLocal(spec_, global, data_, augmented);
  const TrainResult a2 = TrainLocal(spec_, global, data_, augmented);
  EXPECT_TRUE(Same(a1.delta, a2.delta));          // seeded
  EXPECT_FALSE(Same(a1.delta, p1.delta));         // augmentation changes the batches
  TrainSettings other = augmented;
  other.seed = 4;
  EXPECT_FALSE(Same(TrainLocal(spec_, global, data_, other).delta, a1.delta));
  // A spec with every field at its neutral value is no augmentation at all.
  TrainSettings neutral = plain_;
  neutral.augmentation.crop_scale_min = 1;
  EXPECT_TRUE(Same(TrainLocal(spec_, global, data_, neutral).delta, p1.delta));
}

TEST_F(AugmentedTrainingTest, DpSgdTrainingIsSeededAndUnchangedWhenDisabled) {
  const ModelState global = InitialModelState(spec_, 6);
  TrainSettings augmented = plain_;
  augmented.augmentation.hflip_probability = 0.5;
  augmented.augmentation.rotation_degrees = 10;
  DpSgdSettings dp;
  dp.clipping_norm = 1;
  dp.noise_multiplier = 0.5;
  dp.reproducible_seed = 99;
  const TrainResult p1 = TrainLocalDpSgd(spec_, global, data_, plain_, dp);
  const TrainResult p2 = TrainLocalDpSgd(spec_, global, data_, plain_, dp);
  const TrainResult a1 = TrainLocalDpSgd(spec_, global, data_, augmented, dp);
  const TrainResult a2 = TrainLocalDpSgd(spec_, global, data_, augmented, dp);
  EXPECT_TRUE(Same(p1.delta, p2.delta));
  EXPECT_TRUE(Same(a1.delta, a2.delta));
  EXPECT_FALSE(Same(a1.delta, p1.delta));
  EXPECT_EQ(a1.steps, p1.steps);
}

}  // namespace
}  // namespace fedmed
