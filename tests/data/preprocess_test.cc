// Preprocessing: the spec's canonical form, validation, and each step on small images whose
// expected values were worked out by hand (and agree with Pillow 9.4 where stated).
#include "common/data/preprocess.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/util/error.h"

namespace fedmed {
namespace {

DecodedImage Image(int64_t h, int64_t w, int64_t c, std::vector<uint8_t> pixels) {
  DecodedImage im;
  im.height = h;
  im.width = w;
  im.channels = c;
  im.pixels = std::move(pixels);
  return im;
}

TEST(PreprocessSpecTest, CanonicalFormRoundTripsAndDiffers) {
  PreprocessSpec a;
  EXPECT_EQ(a.Canonical(), "size=0;channels=0;norm=medmnist;equalize=0");
  a.image_size = 28;
  a.channels = 1;
  EXPECT_EQ(a.Canonical(), "size=28;channels=1;norm=medmnist;equalize=0");
  EXPECT_EQ(ParsePreprocessSpec(a.Canonical()), a);

  PreprocessSpec b;
  b.image_size = 224;
  b.channels = 3;
  b.normalization = "mean_std";
  b.mean = {0.485, 0.456, 0.406};
  b.std = {0.229, 0.224, 0.225};
  b.equalize = true;
  EXPECT_EQ(b.Canonical(),
            "size=224;channels=3;norm=mean_std;mean=0.485,0.456,0.406;std=0.229,0.224,0.225;"
            "equalize=1");
  EXPECT_EQ(ParsePreprocessSpec(b.Canonical()), b);
  b.mean[1] = 0.1 + 0.2;  // not a short decimal: still exact through the text
  EXPECT_EQ(ParsePreprocessSpec(b.Canonical()), b);
  EXPECT_NE(a.Canonical(), b.Canonical());

  EXPECT_EQ(DescribePreprocessDifference(a, a), "");
  PreprocessSpec c = a;
  c.image_size = 64;
  c.equalize = true;
  EXPECT_EQ(DescribePreprocessDifference(c, a),
            "image_size: 64 here, 28 at the coordinator; equalize: 1 here, 0 at the coordinator");
}

TEST(PreprocessSpecTest, MalformedCanonicalTextIsAFormatError) {
  for (const std::string text :
       {"", "size=28", "size=28;channels=1;norm=medmnist", "size=x;channels=1;norm=medmnist;equalize=0",
        "size=28;channels=1;norm=medmnist;equalize=2",
        "size=28;channels=1;norm=medmnist;equalize=0;extra=1",
        "size=28;channels=1;norm=mean_std;mean=1,2;std=1,1,1;equalize=0",
        "size=28;size=28;channels=1;norm=medmnist;equalize=0"}) {
    EXPECT_THROW(ParsePreprocessSpec(text), FormatError) << text;
  }
  // Well-formed but out of range: ConfigError.
  EXPECT_THROW(ParsePreprocessSpec("size=5;channels=1;norm=medmnist;equalize=0"), ConfigError);
}

TEST(PreprocessSpecTest, ValidationNamesTheField) {
  const auto message = [](const PreprocessSpec& s) {
    try {
      ValidatePreprocessSpec(s, "site.toml: [data]");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  PreprocessSpec s;
  s.image_size = 4;
  EXPECT_NE(message(s).find("site.toml: [data] image_size: expected"), std::string::npos);
  s = {};
  s.channels = 2;
  EXPECT_NE(message(s).find("[data] channels: expected 0 (keep), 1 (gray) or 3 (RGB), got 2"),
            std::string::npos);
  s = {};
  s.normalization = "imagenet";
  EXPECT_NE(message(s).find("[data] normalization"), std::string::npos);
  s = {};
  s.mean = {0.4, 0.5, 0.5};
  EXPECT_NE(message(s).find("[data] mean: expected no value (0.5): normalization is"),
            std::string::npos);
  s.normalization = "mean_std";
  s.std = {0.2, 0.0, 0.2};
  EXPECT_NE(message(s).find("[data] std: expected finite numbers > 0"), std::string::npos);
  s.std = {0.2, 0.2, 0.2};
  EXPECT_EQ(message(s), "no error");
}

TEST(PreprocessTest, RgbToGrayIsPillowsLuma) {
  // Pillow 9.4: Image.fromarray(rgb).convert("L") gives 76 150 29 255 18 124.
  const DecodedImage rgb = Image(1, 6, 3, {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255,
                                           10, 20, 30, 200, 100, 50});
  PreprocessSpec spec;
  spec.channels = 1;
  const DecodedImage gray = ApplyPreprocess(rgb, spec);
  EXPECT_EQ(gray.channels, 1);
  EXPECT_EQ(gray.pixels, (std::vector<uint8_t>{76, 150, 29, 255, 18, 124}));
  spec.channels = 3;
  const DecodedImage back = ApplyPreprocess(gray, spec);
  EXPECT_EQ(back.channels, 3);
  EXPECT_EQ(back.pixels, (std::vector<uint8_t>{76, 76, 76, 150, 150, 150, 29, 29, 29, 255, 255,
                                               255, 18, 18, 18, 124, 124, 124}));
  spec.channels = 0;
  EXPECT_EQ(ApplyPreprocess(rgb, spec).pixels, rgb.pixels);  // keep
}

TEST(PreprocessTest, BilinearUpscaleIsAlignCornersFalse) {
  // 2x2 -> 8x8: output pixel i samples the input at (i + 0.5) / 4 - 0.5 = -0.375, -0.125,
  // 0.125, ..., 1.375, with edges clamped: the weight of the second input pixel is xs[i] below.
  // (Pillow's BILINEAR upscaling gives the same; 2x2 -> 4x4 of {0, 100, 200, 40} gives rows
  // 0 25 75 100 / 50 59 76 85 / 150 126 79 55 / 200 160 80 40 in Pillow 9.4.)
  PreprocessSpec spec;
  spec.image_size = 8;
  const DecodedImage small = Image(2, 2, 1, {0, 104, 200, 40});
  const DecodedImage big = ApplyPreprocess(small, spec);
  ASSERT_EQ(big.height, 8);
  ASSERT_EQ(big.width, 8);
  const double xs[8] = {0, 0, 0.125, 0.375, 0.625, 0.875, 1, 1};  // weight of the 2nd pixel
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 8; ++x) {
      const double top = 0 * (1 - xs[x]) + 104 * xs[x];
      const double bottom = 200 * (1 - xs[x]) + 40 * xs[x];
      const double v = top * (1 - xs[y]) + bottom * xs[y];
      EXPECT_NEAR(big.pixels[y * 8 + x], v, 0.5 + 1e-9) << y << "," << x;
    }
  }
  // Exact values of two rows, worked out by hand (row 2: 0.875 top + 0.125 bottom).
  EXPECT_EQ(std::vector<uint8_t>(big.pixels.begin(), big.pixels.begin() + 8),
            (std::vector<uint8_t>{0, 0, 13, 39, 65, 91, 104, 104}));
  EXPECT_EQ(std::vector<uint8_t>(big.pixels.begin() + 16, big.pixels.begin() + 24),
            (std::vector<uint8_t>{25, 25, 34, 52, 69, 87, 96, 96}));
}

TEST(PreprocessTest, BilinearDownscaleIsPillowsTriangleFilter) {
  // 16 columns 0 x 8 then 255 x 8 -> 8 columns: output j is centred at input 2j + 1 and averages
  // inputs 2j - 1 .. 2j + 2 with triangle weights 1/8, 3/8, 3/8, 1/8. Output 3 straddles the
  // step: inputs 5..8 = 0, 0, 0, 255 -> 255/8 = 31.9 -> 32; output 4: 0, 255, 255, 255 -> 223.
  std::vector<uint8_t> pixels;
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) pixels.push_back(x < 8 ? 0 : 255);
  }
  PreprocessSpec spec;
  spec.image_size = 8;
  const DecodedImage out = ApplyPreprocess(Image(16, 16, 1, pixels), spec);
  for (int y = 0; y < 8; ++y) {
    EXPECT_EQ(std::vector<uint8_t>(out.pixels.begin() + y * 8, out.pixels.begin() + y * 8 + 8),
              (std::vector<uint8_t>{0, 0, 0, 32, 223, 255, 255, 255}))
        << "row " << y;
  }
  // Factor 4: 32 columns 0 x 16, 255 x 16 -> 8: output 3 is centred at 14 and reads inputs
  // 10..17 with triangle weights 1 3 5 7 7 5 3 1 (/ 32): 255 * (3 + 1) / 32 = 31.875 -> 32.
  // Pillow 9.4 gives both rows above. (At the border Pillow renormalises the weights over the
  // pixels inside the image: [0, 0, 255, 255] -> 2 columns gives 36, 219; pillow_parity_test.cc
  // compares random images of random sizes with Pillow itself.)
  std::vector<uint8_t> wide;
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 32; ++x) wide.push_back(x < 16 ? 0 : 255);
  }
  const DecodedImage narrow = ApplyPreprocess(Image(8, 32, 1, wide), spec);
  EXPECT_EQ(std::vector<uint8_t>(narrow.pixels.begin(), narrow.pixels.begin() + 8),
            (std::vector<uint8_t>{0, 0, 0, 32, 223, 255, 255, 255}));
  // A constant image stays constant; an image already at the size is copied unchanged.
  const DecodedImage flat = ApplyPreprocess(Image(13, 21, 3, std::vector<uint8_t>(13 * 21 * 3, 77)),
                                            spec);
  EXPECT_EQ(flat.pixels, std::vector<uint8_t>(8 * 8 * 3, 77));
  std::vector<uint8_t> noise(8 * 8);
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<uint8_t>(i * 37 % 256);
  EXPECT_EQ(ApplyPreprocess(Image(8, 8, 1, noise), spec).pixels, noise);
}

TEST(PreprocessTest, EqualizeIsPillows) {
  // 32x32: 512 pixels of 10, 256 of 20, 256 of 30. step = (1024 - 256) // 255 = 3;
  // lut[10] = 1 // 3 = 0, lut[20] = (1 + 512) // 3 = 171, lut[30] = min(255, 769 // 3) = 255.
  // Pillow 9.4's ImageOps.equalize gives the same counts of 0, 171, 255.
  std::vector<uint8_t> pixels(1024, 10);
  std::fill(pixels.begin() + 512, pixels.begin() + 768, 20);
  std::fill(pixels.begin() + 768, pixels.end(), 30);
  PreprocessSpec spec;
  spec.equalize = true;
  const DecodedImage out = ApplyPreprocess(Image(32, 32, 1, pixels), spec);
  for (size_t i = 0; i < pixels.size(); ++i) {
    const uint8_t expected = pixels[i] == 10 ? 0 : pixels[i] == 20 ? 171 : 255;
    ASSERT_EQ(out.pixels[i], expected) << i;
  }
  // Too few pixels for a step (Pillow leaves the image alone), and a single level.
  const DecodedImage tiny = Image(2, 2, 1, {10, 10, 20, 30});
  EXPECT_EQ(ApplyPreprocess(tiny, spec).pixels, tiny.pixels);
  const DecodedImage flat = Image(32, 32, 1, std::vector<uint8_t>(1024, 99));
  EXPECT_EQ(ApplyPreprocess(flat, spec).pixels, flat.pixels);
}

TEST(PreprocessTest, BadImagesAreDataErrors) {
  PreprocessSpec spec;
  EXPECT_THROW(ApplyPreprocess(Image(0, 3, 1, {}), spec), DataError);
  EXPECT_THROW(ApplyPreprocess(Image(1, 1, 2, {1, 2}), spec), DataError);
  EXPECT_THROW(ApplyPreprocess(Image(2, 2, 1, {1, 2, 3}), spec), DataError);
}

TEST(PreprocessTest, SixteenToEightBitRounds) {
  EXPECT_EQ(SixteenToEightBit(0), 0);
  EXPECT_EQ(SixteenToEightBit(65535), 255);
  EXPECT_EQ(SixteenToEightBit(128), 0);     // 0.498 -> 0
  EXPECT_EQ(SixteenToEightBit(129), 1);     // 0.502 -> 1 (v >> 8 would give 0)
  EXPECT_EQ(SixteenToEightBit(257 * 77), 77);
  EXPECT_EQ(SixteenToEightBit(32767), 127);  // 127.498
  EXPECT_EQ(SixteenToEightBit(32768), 128);  // 127.502
}

TEST(PreprocessTest, ImageSetDefaultSpecIsANoOpAndMeanStdNormalises) {
  ImageSet set;
  set.height = set.width = 2;
  set.channels = 1;
  set.num_classes = 2;
  set.pixels = {0, 51, 255, 128, 1, 2, 3, 4};
  set.labels = {0, 1};
  ImageSet same = set;
  PreprocessImageSet(PreprocessSpec{}, &same);
  EXPECT_EQ(same.pixels, set.pixels);
  float out[4];
  same.CopyNormalizedChw(0, out);
  EXPECT_EQ(out[0], -1.0f);
  EXPECT_EQ(out[2], 1.0f);

  PreprocessSpec spec;
  spec.normalization = "mean_std";
  spec.mean = {0.2, 0.5, 0.5};
  spec.std = {0.4, 0.5, 0.5};
  spec.channels = 3;
  ImageSet rgb = set;
  PreprocessImageSet(spec, &rgb);
  EXPECT_EQ(rgb.channels, 3);
  EXPECT_EQ(rgb.mean[0], 0.2f);
  EXPECT_EQ(rgb.std[0], 0.4f);
  float chw[12];
  rgb.CopyNormalizedChw(0, chw);
  EXPECT_FLOAT_EQ(chw[1], (51.0f / 255.0f - 0.2f) / 0.4f);  // channel 0, pixel 1
  EXPECT_FLOAT_EQ(chw[4 + 1], (51.0f / 255.0f - 0.5f) / 0.5f);  // channel 1, pixel 1
  const ImageSet sub = rgb.Subset({1});
  EXPECT_EQ(sub.mean, rgb.mean);
  EXPECT_EQ(sub.std, rgb.std);
}

}  // namespace
}  // namespace fedmed
