#include "common/data/medmnist.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "common/util/data_path.h"
#include "common/util/error.h"
#include "tests/data/npz_test_util.h"

namespace fedmed {
namespace {

using namespace test_util;  // DataErrorMessage, NpyBytes, NpzEntry, TempDir, WriteNpz

// Pixel value of image n at (y, x, c) in the synthetic files: covers 0 and 255.
uint8_t SyntheticPixel(int64_t n, int64_t y, int64_t x, int64_t c) {
  if (y == 0 && x == 0) return c == 0 ? 0 : 255;
  return static_cast<uint8_t>((n * 31 + y * 7 + x * 3 + c * 101) % 256);
}

// One split's arrays: `count` images of image_shape (H, W) or (H, W, C), labels i % num_labels.
std::vector<NpzEntry> SyntheticSplit(const std::string& split, int64_t count,
                                     const std::vector<int64_t>& image_shape,
                                     const std::vector<int64_t>& label_shape, int num_labels) {
  const int64_t h = image_shape[0], w = image_shape[1];
  const int64_t c = image_shape.size() == 3 ? image_shape[2] : 1;
  std::string pixels;
  for (int64_t n = 0; n < count; ++n) {
    for (int64_t y = 0; y < h; ++y) {
      for (int64_t x = 0; x < w; ++x) {
        for (int64_t ch = 0; ch < c; ++ch) pixels += static_cast<char>(SyntheticPixel(n, y, x, ch));
      }
    }
  }
  std::vector<int64_t> shape = {count};
  shape.insert(shape.end(), image_shape.begin(), image_shape.end());
  int64_t label_count = 1;
  for (int64_t d : label_shape) label_count *= d;
  std::string labels;
  for (int64_t i = 0; i < label_count; ++i) labels += static_cast<char>(i % num_labels);
  return {{split + "_images.npy", NpyBytes("|u1", shape, pixels)},
          {split + "_labels.npy", NpyBytes("|u1", label_shape, labels)}};
}

std::vector<NpzEntry> SyntheticFile(const std::vector<int64_t>& image_shape, int num_labels) {
  std::vector<NpzEntry> entries;
  const std::vector<std::pair<std::string, int64_t>> splits = {
      {"train", 6}, {"val", 2}, {"test", 3}};
  for (const auto& [split, count] : splits) {
    for (NpzEntry& e : SyntheticSplit(split, count, image_shape, {count, 1}, num_labels)) {
      entries.push_back(std::move(e));
    }
  }
  return entries;
}

TEST(MedMnistTest, LoadsRealPneumoniaMnist) {
  const std::string path = ResolveDataPath("medmnist/pneumoniamnist.npz");
  const MedMnist data = LoadMedMnist(path);
  EXPECT_EQ(data.num_classes, 2);
  struct Expected {
    Split split;
    int64_t normal, pneumonia;
  };
  for (const Expected& e : {Expected{Split::kTrain, 1214, 3494}, Expected{Split::kVal, 135, 389},
                            Expected{Split::kTest, 234, 390}}) {
    const ImageSet& set = data.split(e.split);
    SCOPED_TRACE(SplitName(e.split));
    EXPECT_EQ(set.size(), e.normal + e.pneumonia);
    EXPECT_EQ(set.height, 28);
    EXPECT_EQ(set.width, 28);
    EXPECT_EQ(set.channels, 1);
    EXPECT_EQ(set.num_classes, 2);
    EXPECT_EQ(set.pixels.size(), static_cast<size_t>(set.size() * 28 * 28));
    EXPECT_EQ(set.ClassHistogram(), (std::vector<int64_t>{e.normal, e.pneumonia}));
  }
  // Chest X-rays are not blank: the images use most of the 8-bit range.
  const auto [lo, hi] = std::minmax_element(data.train.pixels.begin(), data.train.pixels.end());
  EXPECT_LT(*lo, 20);
  EXPECT_GT(*hi, 235);

  const ImageSet test = LoadMedMnistSplit(path, Split::kTest);
  EXPECT_EQ(test.num_classes, 2);
  EXPECT_EQ(test.labels, data.test.labels);
  EXPECT_EQ(test.pixels, data.test.pixels);
}

TEST(MedMnistTest, LoadsSyntheticRgbAndNormalisesChannelsFirst) {
  TempDir dir("medmnist");
  const std::string path = dir.File("rgb.npz");
  WriteNpz(path, SyntheticFile({28, 28, 3}, 4));
  const MedMnist data = LoadMedMnist(path);
  EXPECT_EQ(data.num_classes, 4);
  EXPECT_EQ(data.train.size(), 6);
  EXPECT_EQ(data.val.size(), 2);
  EXPECT_EQ(data.test.size(), 3);
  EXPECT_EQ(data.train.channels, 3);
  EXPECT_EQ(data.train.labels, (std::vector<int64_t>{0, 1, 2, 3, 0, 1}));
  EXPECT_EQ(data.train.image_numel(), 28 * 28 * 3);

  const int64_t h = 28, w = 28;
  std::vector<float> out(3 * h * w);
  for (int64_t n : {0, 5}) {
    data.train.CopyNormalizedChw(n, out.data());
    for (int64_t c = 0; c < 3; ++c) {
      for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
          const float expected = (SyntheticPixel(n, y, x, c) / 255.0f - 0.5f) / 0.5f;
          ASSERT_EQ(out[c * h * w + y * w + x], expected) << n << " " << c << " " << y << " " << x;
        }
      }
    }
    EXPECT_EQ(out[0], -1.0f);          // channel 0 of pixel (0,0) is 0
    EXPECT_EQ(out[h * w], 1.0f);       // channel 1 of pixel (0,0) is 255
    EXPECT_EQ(out[2 * h * w], 1.0f);   // channel 2 of pixel (0,0) is 255
  }
  EXPECT_THROW(data.train.CopyNormalizedChw(6, out.data()), DataError);

  const ImageSet sub = data.train.Subset({5, 1, 5});
  EXPECT_EQ(sub.labels, (std::vector<int64_t>{1, 1, 1}));
  EXPECT_EQ(sub.channels, 3);
  EXPECT_EQ(sub.num_classes, 4);
  std::vector<float> from_sub(out.size());
  sub.CopyNormalizedChw(2, from_sub.data());
  data.train.CopyNormalizedChw(5, out.data());
  EXPECT_EQ(from_sub, out);
  EXPECT_THROW(data.train.Subset({0, -1}), DataError);
  EXPECT_THROW(data.train.Subset({6}), DataError);
}

TEST(MedMnistTest, NonSquareGrayscaleAndFlatLabels) {
  TempDir dir("medmnist");
  const std::string path = dir.File("gray.npz");
  std::vector<NpzEntry> entries;
  for (const char* split : {"train", "val", "test"}) {
    for (NpzEntry& e : SyntheticSplit(split, 4, {5, 7}, {4}, 3)) entries.push_back(std::move(e));
  }
  WriteNpz(path, entries);
  const ImageSet val = LoadMedMnistSplit(path, Split::kVal);
  EXPECT_EQ(val.height, 5);
  EXPECT_EQ(val.width, 7);
  EXPECT_EQ(val.channels, 1);
  EXPECT_EQ(val.num_classes, 3);
  EXPECT_EQ(val.labels, (std::vector<int64_t>{0, 1, 2, 0}));
}

TEST(MedMnistTest, MultiLabelFileIsRefused) {
  TempDir dir("medmnist");
  const std::string path = dir.File("chestlike.npz");
  std::vector<NpzEntry> entries = SyntheticFile({28, 28}, 2);
  entries[1] = SyntheticSplit("train", 6, {28, 28}, {6, 14}, 2)[1];  // labels (6, 14)
  WriteNpz(path, entries);
  const std::string message = DataErrorMessage([&] { LoadMedMnist(path); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("'train_labels'"), std::string::npos) << message;
  EXPECT_NE(message.find("(6, 14)"), std::string::npos) << message;
  EXPECT_NE(message.find("multi-label"), std::string::npos) << message;
}

// A label of 2^63 - 1 once made num_classes overflow (max + 1) and would size per-class tables.
TEST(MedMnistTest, LabelsNotBelowMaxClassesAreRefused) {
  TempDir dir("medmnist");
  const std::string path = dir.File("hugelabel.npz");
  std::vector<NpzEntry> entries = SyntheticFile({28, 28}, 2);
  std::string labels;
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{0x7fffffffffffffff}, uint64_t{1},
                     uint64_t{0}, uint64_t{1}}) {
    for (int i = 0; i < 8; ++i) labels += static_cast<char>((v >> (8 * i)) & 0xff);
  }
  entries[1].bytes = NpyBytes("<i8", {6, 1}, labels);
  WriteNpz(path, entries);
  const std::string message = DataErrorMessage([&] { LoadMedMnist(path); });
  EXPECT_NE(message.find("'train_labels' holds the label 9223372036854775807 at row 2; class "
                         "indices must be below 65536"),
            std::string::npos)
      << message;
}

TEST(MedMnistTest, ImageLabelCountMismatchIsRefused) {
  TempDir dir("medmnist");
  const std::string path = dir.File("mismatch.npz");
  std::vector<NpzEntry> entries = SyntheticFile({28, 28}, 2);
  entries[5] = SyntheticSplit("test", 2, {28, 28}, {2, 1}, 2)[1];  // 3 test images, 2 labels
  WriteNpz(path, entries);
  const std::string message = DataErrorMessage([&] { LoadMedMnist(path); });
  EXPECT_NE(message.find("'test_images'"), std::string::npos) << message;
  EXPECT_NE(message.find("3 images"), std::string::npos) << message;
  EXPECT_NE(message.find("2 labels"), std::string::npos) << message;
}

TEST(MedMnistTest, BadImageShapeAndMismatchedGeometryAreRefused) {
  TempDir dir("medmnist");
  const std::string flat = dir.File("flat.npz");
  std::vector<NpzEntry> entries = SyntheticFile({28, 28}, 2);
  entries[0] = {"train_images.npy", NpyBytes("|u1", {6, 28}, std::string(6 * 28, '\0'))};
  WriteNpz(flat, entries);
  std::string message = DataErrorMessage([&] { LoadMedMnist(flat); });
  EXPECT_NE(message.find("'train_images' has shape (6, 28)"), std::string::npos) << message;
  EXPECT_NE(message.find("expected (N,H,W) or (N,H,W,3) uint8"), std::string::npos) << message;

  const std::string mixed = dir.File("mixed.npz");
  entries = SyntheticFile({28, 28}, 2);
  entries[2] = SyntheticSplit("val", 2, {32, 32}, {2, 1}, 2)[0];
  WriteNpz(mixed, entries);
  message = DataErrorMessage([&] { LoadMedMnist(mixed); });
  EXPECT_NE(message.find("'val_images'"), std::string::npos) << message;
  EXPECT_NE(message.find("32,32,1"), std::string::npos) << message;
}

TEST(MedMnistTest, MissingArrayIsNamed) {
  TempDir dir("medmnist");
  const std::string path = dir.File("noval.npz");
  std::vector<NpzEntry> entries = SyntheticFile({28, 28}, 2);
  entries.erase(entries.begin() + 3);  // val_labels
  WriteNpz(path, entries);
  const std::string message = DataErrorMessage([&] { LoadMedMnistSplit(path, Split::kTrain); });
  EXPECT_NE(message.find("'val_labels'"), std::string::npos) << message;
}

TEST(MedMnistTest, SplitNames) {
  EXPECT_EQ(ParseSplit("train"), Split::kTrain);
  EXPECT_EQ(ParseSplit("val"), Split::kVal);
  EXPECT_EQ(ParseSplit("test"), Split::kTest);
  EXPECT_STREQ(SplitName(Split::kVal), "val");
  EXPECT_THROW(ParseSplit("validation"), ConfigError);
}

}  // namespace
}  // namespace fedmed
