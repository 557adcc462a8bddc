// Test helpers: build .npy bytes and write .npz archives (with libzip) the way NumPy does.
#ifndef FEDMED_TESTS_DATA_NPZ_TEST_UTIL_H_
#define FEDMED_TESTS_DATA_NPZ_TEST_UTIL_H_

#include <unistd.h>
#include <zip.h>

#include <gtest/gtest.h>

#include "common/util/error.h"

#include <cstdint>
#include <functional>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace fedmed::test_util {

// Runs f, which must throw DataError, and returns its message (a test failure if it does not).
inline std::string DataErrorMessage(const std::function<void()>& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected DataError";
  return "";
}

// A complete .npy file: magic, version major.0, header dict padded with spaces and '\n' to a
// multiple of 64 bytes (as numpy.lib.format writes it), then `data`.
inline std::string NpyBytes(const std::string& descr, const std::vector<int64_t>& shape,
                            const std::string& data, int major = 1, bool fortran_order = false) {
  std::string shape_text = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    shape_text += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  }
  shape_text += shape.size() == 1 ? ",)" : ")";
  std::string header = "{'descr': '" + descr + "', 'fortran_order': " +
                       (fortran_order ? "True" : "False") + ", 'shape': " + shape_text + ", }";
  const size_t prefix = major == 1 ? 10 : 12;
  while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  const size_t len = header.size();
  for (size_t i = 0; i < (major == 1 ? 2u : 4u); ++i) {
    out += static_cast<char>((len >> (8 * i)) & 0xff);
  }
  return out + header + data;
}

struct NpzEntry {
  std::string name;  // including ".npy"
  std::string bytes;
  bool deflate = true;
};

// Writes `entries` as a zip archive at `path` (replacing any file there).
inline void WriteNpz(const std::string& path, const std::vector<NpzEntry>& entries) {
  int error = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
  if (archive == nullptr) throw std::runtime_error("zip_open failed for " + path);
  for (const NpzEntry& e : entries) {
    // The buffers in `entries` outlive zip_close, so libzip need not copy or free them.
    zip_source_t* source = zip_source_buffer(archive, e.bytes.data(), e.bytes.size(), 0);
    const zip_int64_t index = zip_file_add(archive, e.name.c_str(), source, ZIP_FL_OVERWRITE);
    if (index < 0) zip_source_free(source);  // on success the archive owns the source
    if (index < 0 || zip_set_file_compression(archive, static_cast<zip_uint64_t>(index),
                                              e.deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0) != 0) {
      zip_discard(archive);
      throw std::runtime_error("cannot add " + e.name + " to " + path);
    }
  }
  if (zip_close(archive) != 0) {
    const std::string message = zip_strerror(archive);
    zip_discard(archive);
    throw std::runtime_error("zip_close failed for " + path + ": " + message);
  }
}

// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("fedmed_" + tag + "_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace fedmed::test_util

#endif  // FEDMED_TESTS_DATA_NPZ_TEST_UTIL_H_
