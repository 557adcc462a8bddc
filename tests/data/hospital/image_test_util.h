// Test helpers: write PNG (8-bit with stb_image_write, 16-bit with libpng) and JPEG files, and
// compare image sets.
#ifndef FEDMED_TESTS_DATA_HOSPITAL_IMAGE_TEST_UTIL_H_
#define FEDMED_TESTS_DATA_HOSPITAL_IMAGE_TEST_UTIL_H_

#include <png.h>
#include <stb_image_write.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/data/hospital/dicom.h"
#include "common/data/image_set.h"

namespace fedmed::image_test {

// Writes an 8-bit PNG of h x w x comp (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) values.
inline void WritePng8(const std::string& path, int w, int h, int comp,
                      const std::vector<uint8_t>& pixels) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  if (!stbi_write_png(path.c_str(), w, h, comp, pixels.data(), w * comp)) {
    throw std::runtime_error("stbi_write_png failed: " + path);
  }
}

// Writes an RGB (comp 3) or gray (comp 1) JPEG at the given quality (1..100).
inline void WriteJpeg(const std::string& path, int w, int h, int comp,
                      const std::vector<uint8_t>& pixels, int quality) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  if (!stbi_write_jpg(path.c_str(), w, h, comp, pixels.data(), quality)) {
    throw std::runtime_error("stbi_write_jpg failed: " + path);
  }
}

// Writes a 16-bit PNG (comp 1 gray or 3 RGB) with libpng; values host-order uint16.
inline void WritePng16(const std::string& path, int w, int h, int comp,
                       const std::vector<uint16_t>& values) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) throw std::runtime_error("cannot open " + path);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::fclose(f);
    throw std::runtime_error("libpng failed writing " + path);
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, w, h, 16, comp == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  std::vector<uint8_t> row(static_cast<size_t>(w) * comp * 2);
  for (int y = 0; y < h; ++y) {
    for (int k = 0; k < w * comp; ++k) {  // PNG stores big-endian samples
      const uint16_t v = values[static_cast<size_t>(y) * w * comp + k];
      row[2 * k] = static_cast<uint8_t>(v >> 8);
      row[2 * k + 1] = static_cast<uint8_t>(v & 0xff);
    }
    png_write_row(png, row.data());
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  std::fclose(f);
}

// Image i of `set` as a vector of its image_numel() values.
// A DICOM image of the 8-bit pixels `v` (rows x cols) in the tests' 12-bit convention: 16 bits
// allocated, 12 stored, Rescale Slope 2 and Intercept -1024, window centre 255.5 and width 511.
// The modality value of a stored value s is x = 2 s - 1024, displayed as
// ((x - 255) / 510 + 0.5) * 255; storing s = v + 512 (MONOCHROME2) or, with `monochrome1`,
// s = 767 - v (inverted on display) makes every pixel display exactly as v.
inline DicomWriteSpec WindowedDicomSpec(const std::vector<uint8_t>& v, int64_t rows = 28,
                                        int64_t cols = 28, bool monochrome1 = false) {
  DicomWriteSpec s;
  s.rows = rows;
  s.columns = cols;
  s.bits_allocated = 16;
  s.bits_stored = 12;
  s.rescale_slope = 2;
  s.rescale_intercept = -1024;
  s.window_center = 255.5;
  s.window_width = 511;
  if (monochrome1) s.photometric = "MONOCHROME1";
  for (const uint8_t p : v) s.values.push_back(monochrome1 ? 767 - p : p + 512);
  return s;
}

inline std::vector<uint8_t> ImageAt(const ImageSet& set, int64_t i) {
  const int64_t n = set.image_numel();
  return std::vector<uint8_t>(set.pixels.begin() + i * n, set.pixels.begin() + (i + 1) * n);
}

}  // namespace fedmed::image_test

#endif  // FEDMED_TESTS_DATA_HOSPITAL_IMAGE_TEST_UTIL_H_
