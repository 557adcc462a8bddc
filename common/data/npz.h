// NumPy .npz archives: a zip file of .npy arrays (np.savez stores them, np.savez_compressed
// deflates them), read with libzip.
#ifndef FEDMED_COMMON_DATA_NPZ_H_
#define FEDMED_COMMON_DATA_NPZ_H_

#include <memory>
#include <string>
#include <vector>

#include "common/data/npy.h"

struct zip;  // libzip's zip_t.

namespace fedmed {

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

  // Reads and parses the array `name` (without ".npy"). Throws DataError naming the file and the
  // array when it is absent (listing the arrays present), cannot be read or inflated (e.g. a CRC
  // mismatch), or is not a valid .npy array (see ParseNpy; errors name "<path>:<name>.npy").
  NpyArray Read(const std::string& name) const;

 private:
  struct ZipCloser {
    void operator()(zip* archive) const;
  };

  NpzFile(std::string path, std::unique_ptr<zip, ZipCloser> archive);

  std::string path_;
  std::unique_ptr<zip, ZipCloser> archive_;
};

}  // namespace fedmed

#endif  // FEDMED_COMMON_DATA_NPZ_H_
