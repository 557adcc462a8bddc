// DICOM with DCMTK: modality rescale, the PS3.3 windowing functions, MONOCHROME1, colour,
// compressed transfer syntaxes, SOPInstanceUID manifests, and bad (truncated) files.
#include "common/data/hospital/dicom.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/util/error.h"
#include "tests/data/hospital/image_test_util.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

using image_test::ImageAt;
using testing::TempDir;

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// 16-bit (12 stored) MONOCHROME2, slope 2, intercept -1024, stored = v + 512, window centre 255.5,
// width 511: displays exactly as v (image_test::WindowedDicomSpec).
DicomWriteSpec RoundTripSpec(const std::vector<uint8_t>& v, int64_t rows, int64_t cols) {
  return image_test::WindowedDicomSpec(v, rows, cols);
}

std::vector<uint8_t> AllLevels() {
  std::vector<uint8_t> v(256);
  for (int i = 0; i < 256; ++i) v[i] = static_cast<uint8_t>(i);
  return v;
}

TEST(DicomTest, RescaleAndWindowReproduceEightBitValues) {
  TempDir dir;
  const std::vector<uint8_t> v = AllLevels();
  WriteDicomFile(dir / "a.dcm", RoundTripSpec(v, 16, 16));
  const DecodedImage im = ReadDicomImage(dir / "a.dcm");
  EXPECT_EQ(im.height, 16);
  EXPECT_EQ(im.width, 16);
  EXPECT_EQ(im.channels, 1);
  EXPECT_EQ(im.pixels, v);
}

TEST(DicomTest, CompressedTransferSyntaxesDecodeToTheSamePixels) {
  TempDir dir;
  const std::vector<uint8_t> v = AllLevels();
  for (const std::string syntax : {"rle", "jpeg_ls_lossless"}) {
    DicomWriteSpec s = RoundTripSpec(v, 8, 32);
    s.transfer_syntax = syntax;
    WriteDicomFile(dir / (syntax + ".dcm"), s);
    EXPECT_EQ(ReadDicomImage(dir / (syntax + ".dcm")).pixels, v) << syntax;
  }
}

TEST(DicomTest, LinearWindowFollowsPs33) {
  // Signed 16-bit, slope 1, intercept 0: x = stored value. Window c = 40, w = 400 (a CT soft
  // tissue window): x <= 40 - 0.5 - 199.5 = -160 -> 0; x > 40 - 0.5 + 199.5 = 239 -> 255;
  // else ((x - 39.5) / 399 + 0.5) * 255, rounded.
  TempDir dir;
  DicomWriteSpec s;
  s.rows = 1;
  s.columns = 8;
  s.is_signed = true;
  s.values = {-1000, -160, -159, 0, 40, 100, 239, 240};
  s.window_center = 40;
  s.window_width = 400;
  WriteDicomFile(dir / "ct.dcm", s);
  const auto expected = [](double x) {
    if (x <= -160) return 0.0;
    if (x > 239) return 255.0;
    return std::floor(((x - 39.5) / 399 + 0.5) * 255 + 0.5);
  };
  DecodedImage im = ReadDicomImage(dir / "ct.dcm");
  for (int i = 0; i < 8; ++i) EXPECT_EQ(im.pixels[i], expected(s.values[i])) << s.values[i];
  EXPECT_EQ(im.pixels[0], 0);
  EXPECT_EQ(im.pixels[3], 102);  // ((0 - 39.5) / 399 + 0.5) * 255 = 102.26
  EXPECT_EQ(im.pixels[4], 128);  // ((40 - 39.5) / 399 + 0.5) * 255 = 127.82
  EXPECT_EQ(im.pixels[7], 255);

  // The options' window overrides the file's: c = 0, w = 2 (a step at 0).
  DicomOptions options;
  options.window_center = 0;
  options.window_width = 2;
  im = ReadDicomImage(dir / "ct.dcm", options);
  // x <= -1 -> 0, x > 0 -> 255, else ((x + 0.5) / 1 + 0.5) * 255: x = 0 -> 255.
  EXPECT_EQ(im.pixels, (std::vector<uint8_t>{0, 0, 0, 255, 255, 255, 255, 255}));
}

TEST(DicomTest, NoWindowUsesTheImagesMinAndMax) {
  TempDir dir;
  DicomWriteSpec s;
  s.rows = 1;
  s.columns = 4;
  s.bits_allocated = 8;
  s.bits_stored = 8;
  s.values = {10, 20, 60, 110};
  s.rescale_slope = 0.5;
  s.rescale_intercept = 3;
  WriteDicomFile(dir / "mm.dcm", s);
  // x = 8, 13, 33, 58 -> (x - 8) * 255 / 50 = 0, 25.5 -> 26, 127.5 -> 128, 255.
  EXPECT_EQ(ReadDicomImage(dir / "mm.dcm").pixels, (std::vector<uint8_t>{0, 26, 128, 255}));
}

TEST(DicomTest, MonochromeOneIsInverted) {
  TempDir dir;
  const std::vector<uint8_t> v = AllLevels();
  DicomWriteSpec s = RoundTripSpec(v, 16, 16);
  s.photometric = "MONOCHROME1";
  WriteDicomFile(dir / "m1.dcm", s);
  const DecodedImage im = ReadDicomImage(dir / "m1.dcm");
  for (int i = 0; i < 256; ++i) ASSERT_EQ(im.pixels[i], 255 - v[i]) << i;
}

TEST(DicomTest, OtherVoiFunctions) {
  TempDir dir;
  DicomWriteSpec s;
  s.rows = 1;
  s.columns = 4;
  s.values = {0, 100, 150, 300};
  s.window_center = 150;
  s.window_width = 100;
  s.voi_lut_function = "LINEAR_EXACT";
  WriteDicomFile(dir / "le.dcm", s);
  // x <= 100 -> 0; x > 200 -> 255; 150 -> 127.5 -> 128.
  EXPECT_EQ(ReadDicomImage(dir / "le.dcm").pixels, (std::vector<uint8_t>{0, 0, 128, 255}));
  s.voi_lut_function = "SIGMOID";
  WriteDicomFile(dir / "sig.dcm", s);
  // 255 / (1 + exp(-4 (x - 150) / 100)): 0.63 -> 1, 30.40 -> 30, 127.5 -> 128, 254.37 -> 254.
  EXPECT_EQ(ReadDicomImage(dir / "sig.dcm").pixels, (std::vector<uint8_t>{1, 30, 128, 254}));
}

TEST(DicomTest, RgbImagesKeepTheirColours) {
  TempDir dir;
  DicomWriteSpec s;
  s.rows = 2;
  s.columns = 3;
  s.photometric = "RGB";
  s.bits_allocated = 8;
  s.bits_stored = 8;
  for (int i = 0; i < 18; ++i) s.values.push_back(i * 14);
  WriteDicomFile(dir / "rgb.dcm", s);
  const DecodedImage im = ReadDicomImage(dir / "rgb.dcm");
  ASSERT_EQ(im.channels, 3);
  for (int i = 0; i < 18; ++i) EXPECT_EQ(im.pixels[i], i * 14) << i;
}

TEST(DicomTest, TruncatedAndForeignFilesAreDataErrors) {
  TempDir dir;
  WriteDicomFile(dir / "ok.dcm", RoundTripSpec(AllLevels(), 16, 16));
  const std::string bytes = testing::ReadFile(dir / "ok.dcm");
  WriteText(dir / "truncated.dcm", bytes.substr(0, bytes.size() - 100));
  EXPECT_THROW(ReadDicomImage(dir / "truncated.dcm"), DataError);
  WriteText(dir / "text.dcm", "not a DICOM file at all");
  EXPECT_THROW(ReadDicomImage(dir / "text.dcm"), DataError);
  EXPECT_THROW(ReadDicomImage(dir / "absent.dcm"), DataError);
}

TEST(DicomManifestTest, BySopInstanceUidAndByPath) {
  TempDir dir;
  std::string by_uid = "sop_instance_uid,label,split\n";
  std::string by_path = "path,label,split\n";
  for (int i = 0; i < 6; ++i) {
    DicomWriteSpec s = RoundTripSpec(std::vector<uint8_t>(64, static_cast<uint8_t>(i * 40)), 8, 8);
    s.sop_instance_uid = "1.2.826.0.1.3680043.2.1143.7." + std::to_string(i);
    std::filesystem::create_directories(dir / ("files/sub" + std::to_string(i % 2)));
    WriteDicomFile(dir / ("files/sub" + std::to_string(i % 2) + "/im" + std::to_string(i) + ".dcm"),
                   s);
    const std::string split = i < 4 ? "train" : "test";
    by_uid += s.sop_instance_uid + "," + (i % 2 ? "sick" : "well") + "," + split + "\n";
    by_path += "files/sub" + std::to_string(i % 2) + "/im" + std::to_string(i) + ".dcm," +
               (i % 2 ? "sick" : "well") + "," + split + "\n";
  }
  WriteText(dir / "uid.csv", by_uid);
  WriteText(dir / "path.csv", by_path);
  DicomOptions options;
  options.dicom_dir = "files";  // relative to the manifest
  options.load.max_bad_fraction = 0;
  const ImageSet a = LoadDicomManifest(dir / "uid.csv", "train", PreprocessSpec{}, options);
  const ImageSet b = LoadDicomManifest(dir / "path.csv", "train", PreprocessSpec{}, options);
  ASSERT_EQ(a.size(), 4);
  EXPECT_EQ(a.pixels, b.pixels);
  EXPECT_EQ(a.labels, (std::vector<int64_t>{1, 0, 1, 0}));  // sick = 0, well = 1
  EXPECT_EQ(a.labels, b.labels);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(ImageAt(a, i)[0], i * 40);
  EXPECT_EQ(LoadDicomManifest(dir / "uid.csv", "test", PreprocessSpec{}, options).size(), 2);

  options.dicom_dir.clear();
  EXPECT_THROW(LoadDicomManifest(dir / "uid.csv", "train", PreprocessSpec{}, options),
               ConfigError);
}

TEST(DicomManifestTest, BadFilesAreReportedAndRefusedAboveTheThreshold) {
  TempDir dir;
  std::string csv = "path,label\n";
  for (int i = 0; i < 9; ++i) {
    WriteDicomFile(dir / ("im" + std::to_string(i) + ".dcm"),
                   RoundTripSpec(std::vector<uint8_t>(16, 9), 4, 4));
    csv += "im" + std::to_string(i) + ".dcm," + std::to_string(i % 2) + "\n";
  }
  const std::string bytes = testing::ReadFile(dir / "im0.dcm");
  WriteText(dir / "cut.dcm", bytes.substr(0, bytes.size() / 2));
  csv += "cut.dcm,1\n";
  WriteText(dir / "m.csv", csv);
  DicomOptions options;
  options.load.max_bad_fraction = 0.1;
  LoadReport report;
  const ImageSet set = LoadDicomManifest(dir / "m.csv", "", PreprocessSpec{}, options, &report);
  EXPECT_EQ(set.size(), 9);
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_EQ(report.skipped[0].path, dir / "cut.dcm");
  options.load.max_bad_fraction = 0.05;
  try {
    LoadDicomManifest(dir / "m.csv", "", PreprocessSpec{}, options);
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("1 of 10 files are bad"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(dir / "cut.dcm"), std::string::npos) << e.what();
  }
}

TEST(DicomOptionsTest, WindowOverrideIsValidated) {
  DicomOptions o;
  o.window_center = 40;
  EXPECT_THROW(ValidateDicomOptions(o), ConfigError);
  o.window_width = 0.5;
  EXPECT_THROW(ValidateDicomOptions(o), ConfigError);
  o.window_width = 1;
  EXPECT_NO_THROW(ValidateDicomOptions(o));
}

}  // namespace
}  // namespace fedmed
