// Limits in the image parsers (docs/SECURITY.md, "Limits in the parsers"): a few bytes that declare
// a huge image are a bad file, named and skipped in well under a second without allocating the
// image; a file whose content is not what its name claims is refused; an integer label above
// kMaxClasses is a bad file, not a class count; running out of memory on one image makes that
// file bad instead of ending the load.
#include <sys/resource.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <new>
#include <string>
#include <vector>

#include "common/data/hospital/dicom.h"
#include "common/data/hospital/image_folder.h"
#include "common/data/hospital/image_loading.h"
#include "common/util/error.h"
#include "tests/data/hospital/image_test_util.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

using image_test::WriteJpeg;
using image_test::WritePng8;
using testing::TempDir;

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

// One element of an implicit-VR little-endian data set: tag, 32-bit length, value.
std::string Element(uint16_t group, uint16_t element, const std::string& value) {
  std::string out;
  for (uint16_t v : {group, element}) {
    out += static_cast<char>(v & 0xff);
    out += static_cast<char>(v >> 8);
  }
  const uint32_t n = static_cast<uint32_t>(value.size());
  for (int i = 0; i < 4; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
  return out + value;
}

std::string Us(uint16_t v) { return std::string{static_cast<char>(v & 0xff), static_cast<char>(v >> 8)}; }

// A DICOM data set of 40 bytes (no preamble, no meta header: DCMTK reads it as implicit VR little
// endian) declaring rows x columns 16-bit pixels with 2 bytes of Pixel Data.
std::string TinyDicom(uint16_t rows, uint16_t columns) {
  return Element(0x0028, 0x0010, Us(rows)) + Element(0x0028, 0x0011, Us(columns)) +
         Element(0x0028, 0x0100, Us(16)) + Element(0x7FE0, 0x0010, Us(0));
}

void AppendBe32(std::string* out, uint32_t v) {
  for (int i = 3; i >= 0; --i) *out += static_cast<char>((v >> (8 * i)) & 0xff);
}

// A PNG of 45 bytes: signature, an IHDR declaring w x h 8-bit gray pixels (CRCs are not checked by
// stb's header reader), no image data, IEND.
std::string TinyPng(uint32_t w, uint32_t h) {
  std::string out = "\x89PNG\r\n\x1a\n";
  AppendBe32(&out, 13);
  out += "IHDR";
  AppendBe32(&out, w);
  AppendBe32(&out, h);
  out += std::string{8, 0, 0, 0, 0};  // bit depth 8, gray, deflate, filter 0, no interlace
  AppendBe32(&out, 0);                // CRC
  AppendBe32(&out, 0);
  out += "IEND";
  AppendBe32(&out, 0);
  return out;
}

int64_t PeakRssKb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

std::string DataErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a DataError";
  return "";
}

TEST(DicomLimitsTest, FortyBytesDeclaringFourGigapixelsAreRefusedFastWithoutAllocating) {
  TempDir dir;
  const std::string huge = dir / "huge.dcm";
  WriteBytes(huge, TinyDicom(65535, 65535));
  ASSERT_EQ(TinyDicom(65535, 65535).size(), 40u);
  const int64_t rss_before = PeakRssKb();
  const auto start = std::chrono::steady_clock::now();
  const std::string message = DataErrorOf([&] { ReadDicomImage(huge); });
  EXPECT_LT(Seconds(start), 1.0);
  EXPECT_NE(message.find("65535 rows x 65535 columns = 4294836225 pixels is larger than "
                         "max_image_pixels 268435456"),
            std::string::npos)
      << message;
  EXPECT_LT(PeakRssKb() - rss_before, 100 * 1024) << "peak RSS grew by more than 100 MB";
}

TEST(DicomLimitsTest, PixelDataShorterThanTheHeaderDeclaresIsRefusedBeforeDecoding) {
  TempDir dir;
  const std::string forged = dir / "forged.dcm";
  WriteBytes(forged, TinyDicom(16000, 16000));  // under the pixel limit, 512 MB declared
  const int64_t rss_before = PeakRssKb();
  const auto start = std::chrono::steady_clock::now();
  const std::string message = DataErrorOf([&] { ReadDicomImage(forged); });
  EXPECT_LT(Seconds(start), 1.0);
  EXPECT_NE(message.find("Pixel Data holds 2 bytes but 16000 rows x 16000 columns x 1 samples at "
                         "16 bits need 512000000"),
            std::string::npos)
      << message;
  EXPECT_LT(PeakRssKb() - rss_before, 100 * 1024);
  // A lower configured limit refuses it by its pixels already.
  DicomOptions options;
  options.load.max_image_pixels = 1000;
  EXPECT_NE(DataErrorOf([&] { ReadDicomImage(forged, options); }).find("max_image_pixels 1000"),
            std::string::npos);
}

TEST(DicomLimitsTest, AHugeImageInAManifestIsABadFileNamedAndSkipped) {
  TempDir dir;
  std::string csv = "path,label\n";
  for (int i = 0; i < 3; ++i) {
    DicomWriteSpec spec;
    spec.rows = spec.columns = 4;
    spec.values.assign(16, 100 * i);
    WriteDicomFile(dir / ("good" + std::to_string(i) + ".dcm"), spec);
    csv += "good" + std::to_string(i) + ".dcm,0\n";
  }
  WriteBytes(dir / "huge.dcm", TinyDicom(65535, 65535));
  csv += "huge.dcm,1\n";
  WriteBytes(dir / "m.csv", csv);
  DicomOptions options;
  options.load.max_bad_fraction = 0.5;
  LoadReport report;
  const auto start = std::chrono::steady_clock::now();
  const ImageSet set = LoadDicomManifest(dir / "m.csv", "", PreprocessSpec{}, options, &report);
  EXPECT_LT(Seconds(start), 1.0);
  EXPECT_EQ(set.size(), 3);
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_EQ(report.skipped[0].path, dir / "huge.dcm");
  EXPECT_NE(report.skipped[0].reason.find("larger than max_image_pixels"), std::string::npos);
}

TEST(ImageLimitsTest, APngHeaderDeclaringMoreThanMaxImagePixelsIsRefused) {
  TempDir dir;
  const std::string path = dir / "huge.png";
  WriteBytes(path, TinyPng(20000, 20000));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_NE(DataErrorOf([&] { ReadImageFile(path); })
                .find("image of 20000x20000 = 400000000 pixels is larger than "
                      "max_image_pixels 268435456"),
            std::string::npos);
  EXPECT_LT(Seconds(start), 1.0);
  // Under the pixel limit, but more pixels than 45 bytes of deflate can hold.
  WriteBytes(path, TinyPng(16000, 16000));
  EXPECT_NE(DataErrorOf([&] { ReadImageFile(path); }).find("more than its 45 bytes can hold"),
            std::string::npos);
  // A configured limit applies.
  WritePng8(dir / "small.png", 4, 4, 1, std::vector<uint8_t>(16, 7));
  EXPECT_EQ(ReadImageFile(dir / "small.png", 16).width, 4);
  EXPECT_NE(DataErrorOf([&] { ReadImageFile(dir / "small.png", 15); })
                .find("larger than max_image_pixels 15"),
            std::string::npos);
}

// Found by fuzz/fuzz_image: stb_image allocates an IDAT chunk's declared length before reading it,
// so a PNG of a few dozen bytes declaring a 1.4 GB chunk made it allocate 1.4 GB.
TEST(ImageLimitsTest, APngChunkLongerThanTheFileIsRefusedBeforeStbAllocatesIt) {
  TempDir dir;
  std::string png = TinyPng(4, 4).substr(0, 33);  // signature and IHDR
  AppendBe32(&png, 0x55000000u);                  // IDAT of 1.4 GB declared ...
  png += "IDAT";
  png += std::string(16, 'x');                     // ... 16 bytes given
  const std::string path = dir / "bomb.png";
  WriteBytes(path, png);
  const int64_t rss_before = PeakRssKb();
  const auto start = std::chrono::steady_clock::now();
  const std::string message = DataErrorOf([&] { ReadImageFile(path); });
  EXPECT_LT(Seconds(start), 1.0);
  EXPECT_LT(PeakRssKb() - rss_before, 100 * 1024);
  EXPECT_EQ(message,
            "cannot decode: PNG chunk IDAT at byte 33 declares 1426063360 bytes but only 12 follow "
            "(truncated or forged)");
  WriteBytes(path, TinyPng(4, 4).substr(0, 33));  // no IEND
  EXPECT_EQ(DataErrorOf([&] { ReadImageFile(path); }),
            "cannot decode: PNG has no IEND chunk (truncated)");
}

TEST(ImageLimitsTest, TheFormatMustBeWhatTheNameClaims) {
  TempDir dir;
  WritePng8(dir / "a.png", 2, 2, 1, std::vector<uint8_t>(4, 9));
  WriteJpeg(dir / "b.jpg", 8, 8, 1, std::vector<uint8_t>(64, 128), 90);
  std::filesystem::copy_file(dir / "a.png", dir / "png_named.jpg");
  std::filesystem::copy_file(dir / "b.jpg", dir / "jpeg_named.PNG");
  std::filesystem::copy_file(dir / "a.png", dir / "export.img");  // no claim: PNG by content
  EXPECT_EQ(ReadImageFile(dir / "export.img").width, 2);
  EXPECT_NE(DataErrorOf([&] { ReadImageFile(dir / "png_named.jpg"); })
                .find("the file is a PNG but its name says JPEG"),
            std::string::npos);
  EXPECT_NE(DataErrorOf([&] { ReadImageFile(dir / "jpeg_named.PNG"); })
                .find("the file is a JPEG but its name says PNG"),
            std::string::npos);
  // Other formats stb could decode (GIF, BMP, ...) never reach it.
  WriteBytes(dir / "gif.png", std::string("GIF89a\x01\x00\x01\x00\x00\x00\x00;", 14));
  WriteBytes(dir / "bmp.dat", "BM" + std::string(60, '\0'));
  EXPECT_NE(DataErrorOf([&] { ReadImageFile(dir / "gif.png"); })
                .find("not a PNG or JPEG file (its first bytes are neither signature), though its "
                      "name says PNG"),
            std::string::npos);
  EXPECT_NE(DataErrorOf([&] { ReadImageFile(dir / "bmp.dat"); }).find("not a PNG or JPEG"),
            std::string::npos);
}

TEST(ImageLimitsTest, ManifestLabelsAboveMaxClassesAreBadFilesNotClassCounts) {
  TempDir dir;
  std::string csv = "path,label\n";
  for (int i = 0; i < 4; ++i) {
    WritePng8(dir / (std::to_string(i) + ".png"), 2, 2, 1, std::vector<uint8_t>(4, i));
    csv += std::to_string(i) + ".png," + std::to_string(i % 2) + "\n";
  }
  csv += "0.png,999999999999999999\n";  // 18 digits: once sized a list of 10^18 class names
  csv += "1.png,100000000\n";
  csv += "2.png,65536\n";               // kMaxClasses itself
  WriteBytes(dir / "m.csv", csv);
  LoadOptions options;
  options.max_bad_fraction = 1;
  LoadReport report;
  const auto start = std::chrono::steady_clock::now();
  const ImageSet set = LoadImageManifest(dir / "m.csv", "", PreprocessSpec{}, options, &report);
  EXPECT_LT(Seconds(start), 1.0);
  EXPECT_EQ(set.size(), 4);
  EXPECT_EQ(set.num_classes, 2);
  ASSERT_EQ(report.skipped.size(), 3u);
  EXPECT_EQ(report.skipped[0].reason,
            "line 6: label \"999999999999999999\" is not a class index below 65536 (the most "
            "classes a data set may have)");
  EXPECT_NE(report.skipped[1].reason.find("\"100000000\" is not a class index"),
            std::string::npos);
  EXPECT_NE(report.skipped[2].reason.find("\"65536\" is not a class index"), std::string::npos);
}

TEST(ImageLimitsTest, RunningOutOfMemoryOnOneImageMakesItABadFile) {
  std::vector<LoadItem> items;
  for (int i = 0; i < 4; ++i) items.push_back({"image" + std::to_string(i), i % 2, ""});
  LoadOptions options;
  options.max_bad_fraction = 0.5;
  options.decode_threads = 2;
  LoadReport report;
  const auto decode = [](const std::string& path) {
    if (path == "image2") throw std::bad_alloc();
    DecodedImage image;
    image.height = image.width = 2;
    image.channels = 1;
    image.pixels.assign(4, 1);
    return image;
  };
  const ImageSet set = LoadImageItems(items, 2, PreprocessSpec{}, options, decode, "test", &report);
  EXPECT_EQ(set.size(), 3);
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_EQ(report.skipped[0].path, "image2");
  EXPECT_NE(report.skipped[0].reason.find("out of memory"), std::string::npos);
}

TEST(ImageLimitsTest, MaxImagePixelsMustBePositive) {
  LoadOptions options;
  options.max_image_pixels = 0;
  EXPECT_THROW(ValidateLoadOptions(options), ConfigError);
}

}  // namespace
}  // namespace fedmed
