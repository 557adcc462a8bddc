#include "common/model/torch_archive.h"

#include <caffe2/serialize/read_adapter_interface.h>
#include <zip.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "common/util/error.h"

namespace fedmed {

namespace {

// The file's bytes for LibTorch's zip reader, with every read clamped to them. (torch::pickle_load
// reads through an adapter that copies whatever range miniz asks for: a forged central directory
// made it read past the buffer, found by fuzz/fuzz_checkpoint.)
class BoundedReadAdapter : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit BoundedReadAdapter(std::string bytes) : bytes_(std::move(bytes)) {}
  size_t size() const override { return bytes_.size(); }
  size_t read(uint64_t pos, void* buf, size_t n, const char* /*what*/) const override {
    if (pos >= bytes_.size()) return 0;
    n = static_cast<size_t>(std::min<uint64_t>(n, bytes_.size() - pos));
    std::memcpy(buf, bytes_.data() + pos, n);
    return n;
  }

 private:
  std::string bytes_;
};

// Walks a pickle's opcodes (protocols 0-5) up to STOP and refuses a length-prefixed value (a
// string, bytes, a long) that declares more bytes than follow it: LibTorch's unpickler reserves
// the declared length before reading (fuzz/fuzz_checkpoint: a 1 KB checkpoint made it allocate
// 1.5 GB). An opcode it does not know ends the walk (LibTorch refuses those itself).
void CheckPickleLengths(std::string_view pickle, const std::string& what) {
  size_t at = 0;
  const auto need = [&](uint64_t n, const char* kind) {
    if (n > pickle.size() - at) {
      throw FormatError(what + ": the pickle declares a " + kind + " of " + std::to_string(n) +
                        " bytes at byte " + std::to_string(at) + " but only " +
                        std::to_string(pickle.size() - at) + " follow");
    }
  };
  const auto le = [&](int bytes) {
    need(bytes, "length field");
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(pickle[at + i])) << (8 * i);
    at += bytes;
    return v;
  };
  const auto line = [&] {
    const size_t end = pickle.find('\n', at);
    if (end == std::string_view::npos) throw FormatError(what + ": the pickle ends inside a line");
    at = end + 1;
  };
  while (at < pickle.size()) {
    const auto op = static_cast<uint8_t>(pickle[at++]);
    uint64_t n = 0;
    switch (op) {
      case '.': return;  // STOP
      // Length-prefixed values.
      case 'X': case 'B': n = le(4); need(n, "string"); at += n; break;  // BINUNICODE, BINBYTES
      case 'T': n = le(4); need(n, "string"); at += n; break;            // BINSTRING
      case 0x8b: n = le(4); need(n, "long"); at += n; break;              // LONG4
      case 'U': case 'C': case 0x8c: n = le(1); need(n, "string"); at += n; break;
      case 0x8a: n = le(1); need(n, "long"); at += n; break;              // LONG1
      case 0x8d: case 0x8e: case 0x96: n = le(8); need(n, "string"); at += n; break;
      // Fixed-size arguments.
      case 0x80: case 'K': case 'q': case 'h': case 0x82: le(1); break;
      case 'M': case 0x83: le(2); break;
      // LONG_BINPUT: LibTorch reserves 2 * id + 1 memo slots for it; a pickle of N bytes cannot
      // have memoised N values, so a larger id is forged (fuzz/fuzz_checkpoint: 31 GB).
      case 'r':
        n = le(4);
        if (n >= pickle.size()) {
          throw FormatError(what + ": the pickle memoises value " + std::to_string(n) +
                            " at byte " + std::to_string(at - 5) + ", more values than its " +
                            std::to_string(pickle.size()) + " bytes can hold");
        }
        break;
      case 'J': case 'j': case 0x84: le(4); break;
      case 'G': case 0x95: le(8); break;
      // Arguments ending in a newline (two lines for GLOBAL and INST).
      case 'c': case 'i': line(); line(); break;
      case 'I': case 'L': case 'S': case 'V': case 'F': case 'p': case 'g': case 'P': line(); break;
      // No argument.
      case '(': case ')': case ']': case '}': case 'N': case 'Q': case 'R': case 'a': case 'e':
      case 'b': case 'd': case 'l': case 's': case 'u': case 't': case '0': case '2': case '1':
      case 'o': case 0x81: case 0x85: case 0x86: case 0x87: case 0x88: case 0x89: case 0x8f:
      case 0x90: case 0x91: case 0x92: case 0x93: case 0x94: case 0x97: case 0x98:
        break;
      default:
        return;  // unknown to this walk: LibTorch reports it
    }
  }
}

}  // namespace

void CheckTorchArchive(const std::string& bytes, const std::string& what) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  zip_t* archive = source == nullptr ? nullptr : zip_open_from_source(source, ZIP_RDONLY, &error);
  if (archive == nullptr) {
    if (source != nullptr) zip_source_free(source);
    const std::string reason = zip_error_strerror(&error);
    zip_error_fini(&error);
    throw FormatError(what + " is not a zip archive (" + reason +
                      "); expected a PyTorch archive (torch.save or torch.jit.save)");
  }
  zip_error_fini(&error);
  std::unique_ptr<zip_t, void (*)(zip_t*)> closer(archive, [](zip_t* a) { zip_discard(a); });
  const zip_int64_t count = zip_get_num_entries(archive, 0);
  for (zip_int64_t i = 0; i < count; ++i) {
    zip_stat_t stat;
    zip_stat_init(&stat);
    if (zip_stat_index(archive, static_cast<zip_uint64_t>(i), 0, &stat) != 0) continue;
    const std::string name = stat.name != nullptr ? stat.name : "?";
    const bool sized = (stat.valid & ZIP_STAT_SIZE) && (stat.valid & ZIP_STAT_COMP_SIZE);
    const bool bad = !sized || stat.comp_size > bytes.size() ||
                     (stat.comp_method == ZIP_CM_STORE && stat.size != stat.comp_size) ||
                     stat.size > stat.comp_size * 1032 + 1024;
    if (bad) {
      throw FormatError(what + ": entry '" + name + "' declares " + std::to_string(stat.size) +
                        " bytes, more than its " + std::to_string(stat.comp_size) +
                        " stored bytes can hold");
    }
    const std::string suffix = "pkl";  // data.pkl, constants.pkl, *.debug_pkl
    if (name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      zip_file_t* file = zip_fopen_index(archive, static_cast<zip_uint64_t>(i), 0);
      if (file == nullptr) continue;  // LibTorch reports it
      std::string pickle(stat.size, '\0');
      const zip_int64_t n = zip_fread(file, pickle.data(), pickle.size());
      zip_fclose(file);
      pickle.resize(n < 0 ? 0 : static_cast<size_t>(n));
      CheckPickleLengths(pickle, what + ": entry '" + name + "'");
    }
  }
}

std::shared_ptr<caffe2::serialize::ReadAdapterInterface> BoundedArchiveReader(std::string bytes) {
  return std::make_shared<BoundedReadAdapter>(std::move(bytes));
}

}  // namespace fedmed
