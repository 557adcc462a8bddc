#include "common/data/npz.h"

#include <zip.h>

#include <filesystem>
#include <utility>

#include "common/util/error.h"

namespace fedmed {

namespace {

constexpr char kNpySuffix[] = ".npy";
constexpr size_t kNpySuffixSize = 4;

struct ZipFileCloser {
  void operator()(zip_file_t* file) const { zip_fclose(file); }
};
using ZipFilePtr = std::unique_ptr<zip_file_t, ZipFileCloser>;

// libzip's description of an error code from zip_open().
std::string ZipOpenErrorString(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string message = zip_error_strerror(&error);
  zip_error_fini(&error);
  return message;
}

}  // namespace

void NpzFile::ZipCloser::operator()(zip* archive) const {
  zip_discard(archive);  // Opened read-only: nothing to write back.
}

NpzFile::NpzFile(std::string path, std::unique_ptr<zip, ZipCloser> archive, uint64_t file_size)
    : path_(std::move(path)), file_size_(file_size), archive_(std::move(archive)) {}
NpzFile::NpzFile(NpzFile&&) noexcept = default;
NpzFile& NpzFile::operator=(NpzFile&&) noexcept = default;
NpzFile::~NpzFile() = default;

NpzFile NpzFile::Open(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw DataError("npz file '" + path + "' does not exist or is not a regular file");
  }
  const uintmax_t file_size = std::filesystem::file_size(path, ec);
  if (ec) throw DataError("npz file '" + path + "' cannot be read: " + ec.message());
  int code = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_RDONLY, &code);
  if (archive == nullptr) {
    throw DataError("npz file '" + path + "' cannot be opened as a zip archive: " +
                    ZipOpenErrorString(code));
  }
  return NpzFile(path, std::unique_ptr<zip, ZipCloser>(archive), file_size);
}

std::vector<std::string> NpzFile::Names() const {
  std::vector<std::string> names;
  const zip_int64_t count = zip_get_num_entries(archive_.get(), 0);
  for (zip_int64_t i = 0; i < count; ++i) {
    const char* entry = zip_get_name(archive_.get(), static_cast<zip_uint64_t>(i), 0);
    if (entry == nullptr) continue;
    const std::string name(entry);
    if (name.size() > kNpySuffixSize &&
        name.compare(name.size() - kNpySuffixSize, kNpySuffixSize, kNpySuffix) == 0) {
      names.push_back(name.substr(0, name.size() - kNpySuffixSize));
    }
  }
  return names;
}

bool NpzFile::Has(const std::string& name) const {
  return zip_name_locate(archive_.get(), (name + kNpySuffix).c_str(), 0) >= 0;
}

NpyArray NpzFile::Read(const std::string& name, uint64_t max_bytes) const {
  const std::string entry = name + kNpySuffix;
  const std::string what = path_ + ":" + entry;
  const zip_int64_t index = zip_name_locate(archive_.get(), entry.c_str(), 0);
  if (index < 0) {
    std::string present;
    for (const std::string& n : Names()) present += (present.empty() ? "" : ", ") + n;
    throw DataError("npz file '" + path_ + "' has no array '" + name + "' (arrays present: " +
                    (present.empty() ? "none" : present) + ")");
  }
  const auto uindex = static_cast<zip_uint64_t>(index);
  zip_stat_t stat;
  zip_stat_init(&stat);
  if (zip_stat_index(archive_.get(), uindex, 0, &stat) != 0 || !(stat.valid & ZIP_STAT_SIZE)) {
    throw DataError(what + ": cannot read the entry's size: " + zip_strerror(archive_.get()));
  }
  // The declared size is checked before a byte is allocated for it.
  const bool known = (stat.valid & ZIP_STAT_COMP_SIZE) && (stat.valid & ZIP_STAT_COMP_METHOD);
  if (!known) throw DataError(what + ": the archive does not record the entry's compressed size");
  const std::string sizes = " (declares " + std::to_string(stat.size) + " bytes uncompressed, " +
                            std::to_string(stat.comp_size) + " compressed)";
  if (stat.comp_size > file_size_) {
    throw DataError(what + ": entry's compressed size is larger than the whole archive (" +
                    std::to_string(file_size_) + " bytes)" + sizes);
  }
  if (stat.comp_method == ZIP_CM_STORE) {
    if (stat.size != stat.comp_size) {
      throw DataError(what + ": stored (uncompressed) entry whose sizes differ" + sizes);
    }
  } else if (stat.comp_method == ZIP_CM_DEFLATE) {
    if (stat.size > stat.comp_size * kMaxDeflateRatio + 1024) {
      throw DataError(what + ": entry declares more bytes than deflate can produce from its "
                      "compressed bytes (at most " + std::to_string(kMaxDeflateRatio) + ":1)" +
                      sizes);
    }
  } else {
    throw DataError(what + ": compression method " + std::to_string(stat.comp_method) +
                    " is neither stored (np.savez) nor deflate (np.savez_compressed)");
  }
  if (stat.size > max_bytes) {
    throw DataError(what + ": entry of " + std::to_string(stat.size) +
                    " bytes is larger than the limit of " + std::to_string(max_bytes) + " bytes");
  }
  ZipFilePtr file(zip_fopen_index(archive_.get(), uindex, 0));
  if (file == nullptr) {
    throw DataError(what + ": cannot open the entry: " + zip_strerror(archive_.get()));
  }
  std::string bytes(stat.size, '\0');
  zip_uint64_t done = 0;
  while (done < stat.size) {
    const zip_int64_t n = zip_fread(file.get(), bytes.data() + done, stat.size - done);
    if (n < 0) {
      throw DataError(what + ": cannot read the entry (corrupt archive?): " +
                      zip_file_strerror(file.get()));
    }
    if (n == 0) {
      throw DataError(what + ": entry ended after " + std::to_string(done) + " of " +
                      std::to_string(stat.size) + " bytes");
    }
    done += static_cast<zip_uint64_t>(n);
  }
  // libzip verifies the entry's CRC-32 when a read reaches its end, so read once more.
  char extra;
  const zip_int64_t n = zip_fread(file.get(), &extra, 1);
  if (n < 0) throw DataError(what + ": entry is corrupt: " + zip_file_strerror(file.get()));
  if (n > 0) throw DataError(what + ": entry is longer than its recorded size");
  return ParseNpy(bytes, what);
}

}  // namespace fedmed
