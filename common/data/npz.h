// NumPy .npz archives: a zip file of .npy arrays (np.savez stores them, np.savez_compressed
// deflates them), read with libzip.
#ifndef FEDMED_COMMON_DATA_NPZ_H_
#define FEDMED_COMMON_DATA_NPZ_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/data/npy.h"

struct zip;  // libzip's zip_t.

namespace fedmed {

// The largest .npy entry NpzFile::Read inflates by default: 16 GiB (the largest MedMNIST+ file,
// at 224 px, holds arrays of under 2 GiB).
inline constexpr uint64_t kDefaultMaxNpyBytes = uint64_t{16} << 30;

// Deflate's largest compression ratio (a run of one byte: 258 bytes per 2 bits, about 1032:1).
// An entry that declares more uncompressed bytes than 1032 times its compressed size plus a
// little is lying, and is refused before anything is allocated.
inline constexpr uint64_t kMaxDeflateRatio = 1032;

// An open .npz archive. Arrays are read (and inflated) on demand, one at a time.
// Movable, not copyable; the archive is closed when the object is destroyed.
// Not thread-safe: libzip archives must not be read from several threads at once.
class NpzFile {
 public:
  // Opens the archive at `path` for reading. Throws DataError naming `path` when the file does
  // not exist or is not a readable zip archive.
  static NpzFile Open(const std::string& path);

  NpzFile(NpzFile&&) noexcept;
  NpzFile& operator=(NpzFile&&) noexcept;
  ~NpzFile();

  // The path given to Open().
  const std::string& path() const { return path_; }

  // Names of the arrays in the archive, in archive order, without the ".npy" suffix (e.g.
  // "train_images"). Entries that are not .npy files are not listed.
  std::vector<std::string> Names() const;

  // Whether the archive holds the array `name` (without ".npy").
  bool Has(const std::string& name) const;

  // Reads and parses the array `name` (without ".npy"). Before allocating, the entry's declared
  // uncompressed size (bytes) is checked against `max_bytes` and against what its stored bytes can
  // hold: equal to the compressed size for a stored entry (np.savez), at most kMaxDeflateRatio
  // times it (plus 1 KiB) for a deflated one (np.savez_compressed); and the compressed size
  // against the archive file's size. Throws DataError naming the file and the array when it is
  // absent (listing the arrays present), uses another compression method, declares a size that
  // fails those checks (giving both sizes), cannot be read or inflated (e.g. a CRC mismatch), or
  // is not a valid .npy array (see ParseNpy; errors name "<path>:<name>.npy").
  NpyArray Read(const std::string& name, uint64_t max_bytes = kDefaultMaxNpyBytes) const;

 private:
  struct ZipCloser {
    void operator()(zip* archive) const;
  };

  NpzFile(std::string path, std::unique_ptr<zip, ZipCloser> archive, uint64_t file_size);

  std::string path_;
  uint64_t file_size_ = 0;  // of the archive, in bytes, when opened
  std::unique_ptr<zip, ZipCloser> archive_;
};

}  // namespace fedmed

#endif  // FEDMED_COMMON_DATA_NPZ_H_
