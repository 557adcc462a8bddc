// Image folders and CSV manifests of PNG/JPEG files: decoding (8/16-bit, gray/RGB/alpha, JPEG),
// torchvision's class and file order, bad files (reported once, skipped, refused above the
// threshold), and parallel decoding giving the single-threaded result.
#include "common/data/hospital/image_folder.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/util/error.h"
#include "tests/data/hospital/image_test_util.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

using image_test::ImageAt;
using image_test::WriteJpeg;
using image_test::WritePng16;
using image_test::WritePng8;
using testing::TempDir;

std::vector<uint8_t> Pattern(int w, int h, int comp, int seed) {
  std::vector<uint8_t> v(static_cast<size_t>(w) * h * comp);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>((i * 7 + seed * 31) % 256);
  return v;
}

void WriteText(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

LoadOptions Strict(int threads = 2) {
  LoadOptions o;
  o.decode_threads = threads;
  o.max_bad_fraction = 0;
  return o;
}

TEST(ReadImageFileTest, DecodesEightBitPngsOfEveryLayout) {
  TempDir dir;
  const std::vector<uint8_t> gray = Pattern(5, 3, 1, 1);
  WritePng8(dir / "g.png", 5, 3, 1, gray);
  DecodedImage im = ReadImageFile(dir / "g.png");
  EXPECT_EQ(im.width, 5);
  EXPECT_EQ(im.height, 3);
  EXPECT_EQ(im.channels, 1);
  EXPECT_EQ(im.pixels, gray);

  const std::vector<uint8_t> rgba = Pattern(4, 2, 4, 2);
  WritePng8(dir / "rgba.png", 4, 2, 4, rgba);
  im = ReadImageFile(dir / "rgba.png");
  ASSERT_EQ(im.channels, 3);  // alpha dropped, not composited
  for (int p = 0; p < 8; ++p) {
    for (int c = 0; c < 3; ++c) EXPECT_EQ(im.pixels[p * 3 + c], rgba[p * 4 + c]);
  }
  const std::vector<uint8_t> ga = Pattern(3, 3, 2, 3);
  WritePng8(dir / "ga.png", 3, 3, 2, ga);
  im = ReadImageFile(dir / "ga.png");
  ASSERT_EQ(im.channels, 1);
  for (int p = 0; p < 9; ++p) EXPECT_EQ(im.pixels[p], ga[p * 2]);
}

TEST(ReadImageFileTest, SixteenBitPngsRoundToEightBits) {
  TempDir dir;
  // Values around the rounding boundaries of round(v * 255 / 65535).
  const std::vector<uint16_t> values = {0, 128, 129, 257, 32767, 32768, 65406, 65535};
  WritePng16(dir / "g16.png", 4, 2, 1, values);
  DecodedImage im = ReadImageFile(dir / "g16.png");
  ASSERT_EQ(im.channels, 1);
  EXPECT_EQ(im.pixels, (std::vector<uint8_t>{0, 0, 1, 1, 127, 128, 254, 255}));

  std::vector<uint16_t> rgb(2 * 2 * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint16_t>(i * 5000 + 77);
  WritePng16(dir / "rgb16.png", 2, 2, 3, rgb);
  im = ReadImageFile(dir / "rgb16.png");
  ASSERT_EQ(im.channels, 3);
  for (size_t i = 0; i < rgb.size(); ++i) {
    EXPECT_EQ(im.pixels[i], static_cast<uint8_t>(std::lround(rgb[i] * 255.0 / 65535.0))) << i;
  }
}

TEST(ReadImageFileTest, RgbJpegDecodesCloseToTheOriginal) {
  TempDir dir;
  // A smooth RGB image (JPEG is lossy; smooth content survives quality 95 closely).
  const int w = 32, h = 24;
  std::vector<uint8_t> rgb(w * h * 3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      rgb[(y * w + x) * 3 + 0] = static_cast<uint8_t>(x * 8);
      rgb[(y * w + x) * 3 + 1] = static_cast<uint8_t>(y * 10);
      rgb[(y * w + x) * 3 + 2] = static_cast<uint8_t>(128);
    }
  }
  WriteJpeg(dir / "photo.JPG", w, h, 3, rgb, 95);
  const DecodedImage im = ReadImageFile(dir / "photo.JPG");
  ASSERT_EQ(im.width, w);
  ASSERT_EQ(im.height, h);
  ASSERT_EQ(im.channels, 3);
  double error = 0;
  for (size_t i = 0; i < rgb.size(); ++i) error += std::abs(im.pixels[i] - rgb[i]);
  EXPECT_LT(error / static_cast<double>(rgb.size()), 3.0);
  // The channels are not mixed up: red grows with x, green with y.
  EXPECT_LT(im.pixels[0], im.pixels[(w - 1) * 3]);
  EXPECT_LT(im.pixels[1], im.pixels[((h - 1) * w) * 3 + 1]);
}

TEST(ReadImageFileTest, UnreadableAndCorruptFilesAreDataErrors) {
  TempDir dir;
  EXPECT_THROW(ReadImageFile(dir / "missing.png"), DataError);
  WriteText(dir / "bad.png", std::string("\x89PNG\r\n\x1a\n garbage", 17));
  try {
    ReadImageFile(dir / "bad.png");
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot decode"), std::string::npos) << e.what();
  }
}

TEST(ImageFolderTest, ClassesAndFilesFollowTorchvisionsOrder) {
  TempDir dir;
  const std::string root = dir / "root";
  // Python: sorted(['B', 'a', '_x', 'Z10', 'Z9', 'é', 'a b', '.hidden'])
  //   == ['.hidden', 'B', 'Z10', 'Z9', '_x', 'a', 'a b', 'é']
  const std::vector<std::string> names = {"B", "a", "_x", "Z10", "Z9", "\xc3\xa9", "a b",
                                          ".hidden"};
  int seed = 0;
  for (const std::string& n : names) {
    WritePng8(root + "/" + n + "/img.png", 2, 2, 1, Pattern(2, 2, 1, ++seed));
  }
  const std::vector<std::string> sorted = {".hidden", "B", "Z10", "Z9", "_x", "a", "a b",
                                           "\xc3\xa9"};
  EXPECT_EQ(ImageFolderClasses(root), sorted);

  // Inside class "a": torchvision's sorted(os.walk(...)) order (checked with Python 3.11):
  // a/10.png, a/2.png, a/sub/1.png, a/sub-x/1.PNG, a/sub/inner/0.png; notes.txt ignored.
  const std::map<std::string, int> files = {{"a/2.png", 12}, {"a/10.png", 11},
                                            {"a/sub/1.png", 13}, {"a/sub-x/1.PNG", 14},
                                            {"a/sub/inner/0.png", 15}};
  for (const auto& [path, value] : files) {
    WritePng8(root + "/" + path, 2, 2, 1, std::vector<uint8_t>(4, static_cast<uint8_t>(value)));
  }
  WriteText(root + "/a/notes.txt", "not an image");
  std::filesystem::remove(root + "/a/img.png");

  LoadReport report;
  const ImageSet set = LoadImageFolder(root, PreprocessSpec{}, Strict(), &report);
  EXPECT_EQ(report.class_names, sorted);
  EXPECT_TRUE(report.skipped.empty());
  ASSERT_EQ(set.size(), 7 + 5);
  EXPECT_EQ(set.num_classes, 8);
  std::vector<int64_t> expected_labels = {0, 1, 2, 3, 4, 5, 5, 5, 5, 5, 6, 7};
  EXPECT_EQ(set.labels, expected_labels);
  const std::vector<int> a_order = {11, 12, 13, 14, 15};
  for (int k = 0; k < 5; ++k) EXPECT_EQ(ImageAt(set, 5 + k)[0], a_order[k]) << k;
}

TEST(ImageFolderTest, BadFilesAreReportedOnceSkippedAndRefusedAboveTheThreshold) {
  TempDir dir;
  const std::string root = dir / "root";
  for (int i = 0; i < 18; ++i) {
    WritePng8(root + "/" + (i % 2 ? "sick" : "well") + "/" + std::to_string(i) + ".png", 4, 4, 1,
              Pattern(4, 4, 1, i));
  }
  WriteText(root + "/sick/corrupt.png", "this is not a PNG file");
  WritePng8(root + "/loose.png", 4, 4, 1, Pattern(4, 4, 1, 99));  // no label

  LoadOptions options = Strict();
  options.max_bad_fraction = 0.15;  // 2 of 20 = 0.10: tolerated
  LoadReport report;
  const ImageSet set = LoadImageFolder(root, PreprocessSpec{}, options, &report);
  EXPECT_EQ(set.size(), 18);
  EXPECT_EQ(report.loaded, 18);
  ASSERT_EQ(report.skipped.size(), 2u);
  EXPECT_EQ(report.skipped[0].path, root + "/sick/corrupt.png");
  EXPECT_NE(report.skipped[0].reason.find("cannot decode"), std::string::npos);
  EXPECT_EQ(report.skipped[1].path, root + "/loose.png");
  EXPECT_NE(report.skipped[1].reason.find("no label"), std::string::npos);

  options.max_bad_fraction = 0.05;  // 0.10 > 0.05: refused, naming both
  try {
    LoadImageFolder(root, PreprocessSpec{}, options);
    FAIL() << "no error";
  } catch (const DataError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("2 of 20 files are bad"), std::string::npos) << m;
    EXPECT_NE(m.find("max_bad_fraction 0.05"), std::string::npos) << m;
    EXPECT_NE(m.find(root + "/sick/corrupt.png: cannot decode"), std::string::npos) << m;
    EXPECT_NE(m.find(root + "/loose.png: no label"), std::string::npos) << m;
  }
}

TEST(ImageFolderTest, SizeAndChannelMismatchesAreBadOnlyWhenKept) {
  TempDir dir;
  const std::string root = dir / "root";
  WritePng8(root + "/a/0.png", 10, 10, 1, Pattern(10, 10, 1, 0));
  WritePng8(root + "/a/1.png", 12, 10, 1, Pattern(12, 10, 1, 1));  // other size
  WritePng8(root + "/b/2.png", 10, 10, 3, Pattern(10, 10, 3, 2));  // RGB
  LoadOptions options = Strict();
  options.max_bad_fraction = 1;
  LoadReport report;
  ImageSet set = LoadImageFolder(root, PreprocessSpec{}, options, &report);
  EXPECT_EQ(set.size(), 1);
  ASSERT_EQ(report.skipped.size(), 2u);
  EXPECT_NE(report.skipped[0].reason.find("size 12x10, expected 10x10"), std::string::npos);
  EXPECT_NE(report.skipped[1].reason.find("3 channels, expected 1"), std::string::npos);

  PreprocessSpec spec;  // convert and resize: every file fits
  spec.image_size = 8;
  spec.channels = 3;
  set = LoadImageFolder(root, spec, Strict(), &report);
  EXPECT_EQ(set.size(), 3);
  EXPECT_EQ(set.height, 8);
  EXPECT_EQ(set.width, 8);
  EXPECT_EQ(set.channels, 3);
  EXPECT_TRUE(report.skipped.empty());
}

TEST(ImageFolderTest, EmptyOrClasslessFoldersAreErrors) {
  TempDir dir;
  EXPECT_THROW(LoadImageFolder(dir / "absent", PreprocessSpec{}), DataError);
  std::filesystem::create_directories(dir / "empty");
  EXPECT_THROW(LoadImageFolder(dir / "empty", PreprocessSpec{}), DataError);
  std::filesystem::create_directories(dir / "noimages/a");
  WriteText(dir / "noimages/a/readme.txt", "x");
  EXPECT_THROW(LoadImageFolder(dir / "noimages", PreprocessSpec{}), DataError);
}

TEST(ImageFolderTest, ParallelDecodingGivesTheSingleThreadedResult) {
  TempDir dir;
  const std::string root = dir / "root";
  std::mt19937 rng(7);
  for (int i = 0; i < 150; ++i) {
    const int w = 6 + static_cast<int>(rng() % 30), h = 6 + static_cast<int>(rng() % 30);
    const int comp = rng() % 3 == 0 ? 3 : 1;
    std::vector<uint8_t> pixels(w * h * comp);
    for (uint8_t& v : pixels) v = static_cast<uint8_t>(rng());
    const std::string cls = "class" + std::to_string(rng() % 4);
    if (i % 37 == 5) {
      WriteText(root + "/" + cls + "/bad" + std::to_string(i) + ".png", "broken");
    } else {
      WritePng8(root + "/" + cls + "/" + std::to_string(i) + ".png", w, h, comp, pixels);
    }
  }
  PreprocessSpec spec;
  spec.image_size = 16;
  spec.channels = 1;
  spec.equalize = true;
  LoadOptions one = Strict(1);
  one.max_bad_fraction = 0.1;
  LoadReport report_one, report_many;
  const ImageSet a = LoadImageFolder(root, spec, one, &report_one);
  for (const int threads : {2, 4, 0}) {
    LoadOptions many = one;
    many.decode_threads = threads;
    many.queue_capacity = 3;  // workers block on a full queue
    const ImageSet b = LoadImageFolder(root, spec, many, &report_many);
    EXPECT_EQ(a.pixels, b.pixels) << threads;
    EXPECT_EQ(a.labels, b.labels) << threads;
    ASSERT_EQ(report_one.skipped.size(), report_many.skipped.size());
    for (size_t k = 0; k < report_one.skipped.size(); ++k) {
      EXPECT_EQ(report_one.skipped[k].path, report_many.skipped[k].path);
    }
  }
  EXPECT_EQ(a.size(), 150 - static_cast<int64_t>(report_one.skipped.size()));
  EXPECT_EQ(report_one.skipped.size(), 4u);  // i = 5, 42, 79, 116
}

TEST(ImageManifestTest, PathsLabelsAndSplits) {
  TempDir dir;
  WritePng8(dir / "img/a.png", 3, 3, 1, std::vector<uint8_t>(9, 1));
  WritePng8(dir / "img/b.png", 3, 3, 1, std::vector<uint8_t>(9, 2));
  WritePng8(dir / "img/c d.png", 3, 3, 1, std::vector<uint8_t>(9, 3));
  WritePng8(dir / "img/e.png", 3, 3, 1, std::vector<uint8_t>(9, 4));
  // Extra column, quoted fields with a comma and quotes, CRLF, a blank line, names as labels.
  WriteText(dir / "m/manifest.csv",
            "id,path,split,label\r\n"
            "1,../img/a.png,train,pneumonia\r\n"
            "2, ../img/b.png ,TEST,normal\r\n"
            "\r\n"
            "3,\"../img/c d.png\",train,\"pneumonia\"\r\n"
            "4,../img/e.png,val,\"a \"\"quoted\"\", label\"\r\n");
  LoadReport report;
  ImageSet train = LoadImageManifest(dir / "m/manifest.csv", "train", PreprocessSpec{}, Strict(),
                                     &report);
  // Classes: sorted distinct names of every line: a "quoted", label < normal < pneumonia.
  EXPECT_EQ(report.class_names,
            (std::vector<std::string>{"a \"quoted\", label", "normal", "pneumonia"}));
  EXPECT_EQ(train.num_classes, 3);
  EXPECT_EQ(train.labels, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(ImageAt(train, 0)[0], 1);
  EXPECT_EQ(ImageAt(train, 1)[0], 3);
  const ImageSet test = LoadImageManifest(dir / "m/manifest.csv", "test", PreprocessSpec{},
                                          Strict());
  EXPECT_EQ(test.labels, (std::vector<int64_t>{1}));
  const ImageSet all = LoadImageManifest(dir / "m/manifest.csv", "", PreprocessSpec{}, Strict());
  EXPECT_EQ(all.labels, (std::vector<int64_t>{2, 1, 2, 0}));

  // Integer labels, no split column: all lines are training data.
  WriteText(dir / "ints.csv", "label,path\n3,img/a.png\n0,img/b.png\n");
  const ImageSet ints = LoadImageManifest(dir / "ints.csv", "train", PreprocessSpec{}, Strict());
  EXPECT_EQ(ints.labels, (std::vector<int64_t>{3, 0}));
  EXPECT_EQ(ints.num_classes, 4);
  EXPECT_EQ(LoadImageManifest(dir / "ints.csv", "val", PreprocessSpec{}, Strict()).size(), 0);
}

TEST(ImageManifestTest, MissingLabelsAndFilesAreBadFiles) {
  TempDir dir;
  std::string csv = "path,label\n";
  for (int i = 0; i < 8; ++i) {
    WritePng8(dir / (std::to_string(i) + ".png"), 2, 2, 1, Pattern(2, 2, 1, i));
    csv += std::to_string(i) + ".png," + std::to_string(i % 2) + "\n";
  }
  csv += "nolabel.png,\n";
  csv += "missing.png,1\n";
  WriteText(dir / "m.csv", csv);
  LoadOptions options = Strict();
  options.max_bad_fraction = 0.2;
  LoadReport report;
  const ImageSet set = LoadImageManifest(dir / "m.csv", "", PreprocessSpec{}, options, &report);
  EXPECT_EQ(set.size(), 8);
  ASSERT_EQ(report.skipped.size(), 2u);
  EXPECT_EQ(report.skipped[0].path, dir / "nolabel.png");
  EXPECT_EQ(report.skipped[0].reason, "line 10: no label");
  EXPECT_EQ(report.skipped[1].path, dir / "missing.png");
  EXPECT_NE(report.skipped[1].reason.find("cannot read"), std::string::npos);
  options.class_names = {"0"};  // "1" is now unknown
  options.max_bad_fraction = 1;
  LoadImageManifest(dir / "m.csv", "", PreprocessSpec{}, options, &report);
  EXPECT_NE(report.skipped[0].reason.find("unknown label \"1\""), std::string::npos);
}

TEST(ImageManifestTest, MalformedManifestsAreDataErrors) {
  TempDir dir;
  WriteText(dir / "noheader.csv", "");
  EXPECT_THROW(LoadImageManifest(dir / "noheader.csv", "", PreprocessSpec{}), DataError);
  WriteText(dir / "nolabel.csv", "path,class\na.png,1\n");
  EXPECT_THROW(LoadImageManifest(dir / "nolabel.csv", "", PreprocessSpec{}), DataError);
  WriteText(dir / "short.csv", "path,label,split\na.png,1\n");
  EXPECT_THROW(LoadImageManifest(dir / "short.csv", "", PreprocessSpec{}), DataError);
  WriteText(dir / "split.csv", "path,label,split\na.png,1,validation\n");
  EXPECT_THROW(LoadImageManifest(dir / "split.csv", "", PreprocessSpec{}), DataError);
  WriteText(dir / "quote.csv", "path,label\n\"a.png,1\n");
  EXPECT_THROW(LoadImageManifest(dir / "quote.csv", "", PreprocessSpec{}), DataError);
  EXPECT_THROW(LoadImageManifest(dir / "absent.csv", "", PreprocessSpec{}), DataError);
}

}  // namespace
}  // namespace fedmed
