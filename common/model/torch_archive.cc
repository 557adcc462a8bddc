#include "common/model/torch_archive.h"

#include <caffe2/serialize/read_adapter_interface.h>
#include <zip.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

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

// A storage a pickle declares with a persistent id, as LibTorch's unpickler reads it:
// BINPERSID of ('storage', torch.<Type>Storage, key, location, numel). LibTorch gives the storage
// numel * itemsize bytes but fills it from the record <archive>/<key>, whatever that record's
// size (fuzz/fuzz_checkpoint: a parameter read 73 KB past a short record).
struct DeclaredStorage {
  std::string type;  // e.g. "FloatStorage"
  std::string key;   // the record's name in the archive's folder
  int64_t numel = 0;
  size_t at = 0;     // byte offset of the BINPERSID
};

// What the walk keeps of a value the pickle pushes: enough to read persistent ids. Strings over
// 64 bytes and tuples over 5 items or holding tuples are kept as kOther, so that memo copies stay
// small whatever the pickle repeats.
struct Atom {
  enum Kind { kOther, kString, kInt, kGlobal, kTuple } kind = kOther;
  std::string text;         // kString; kGlobal: "module.name"
  int64_t value = 0;        // kInt
  std::vector<Atom> items;  // kTuple
};

constexpr size_t kAtomTextMax = 64;

Atom StringAtom(std::string_view text) {
  Atom a;
  if (text.size() <= kAtomTextMax) {
    a.kind = Atom::kString;
    a.text = std::string(text);
  }
  return a;
}

Atom IntAtom(int64_t v) {
  Atom a;
  a.kind = Atom::kInt;
  a.value = v;
  return a;
}

Atom TupleAtom(std::vector<Atom> items) {
  Atom a;
  const bool flat = std::none_of(items.begin(), items.end(),
                                 [](const Atom& i) { return i.kind == Atom::kTuple; });
  if (items.size() <= 5 && flat) {
    a.kind = Atom::kTuple;
    a.items = std::move(items);
  }
  return a;
}

// Bytes per element of torch.<type>; 16 (the largest) for a type this check does not know.
int64_t StorageItemSize(const std::string& type) {
  static const std::map<std::string, int64_t> kSizes = {
      {"FloatStorage", 4},  {"DoubleStorage", 8},       {"HalfStorage", 2},
      {"BFloat16Storage", 2}, {"LongStorage", 8},       {"IntStorage", 4},
      {"ShortStorage", 2},  {"CharStorage", 1},         {"ByteStorage", 1},
      {"BoolStorage", 1},   {"ComplexFloatStorage", 8}, {"ComplexDoubleStorage", 16}};
  const auto it = kSizes.find(type);
  return it == kSizes.end() ? 16 : it->second;
}

// Walks a pickle's opcodes (protocols 0-5) up to STOP, modelling its stack and memo as far as
// persistent ids need, and returns the storages it declares. Refuses (FormatError starting with
// `what`) a length-prefixed value (a string, bytes, a long) that declares more bytes than follow
// it, since LibTorch's unpickler reserves the declared length before reading (fuzz/
// fuzz_checkpoint: a 1 KB checkpoint made it allocate 1.5 GB); a memo index beyond the pickle's
// size; and a persistent id that is not a storage tuple this walk can read (LibTorch accepts only
// storage tuples). An opcode it does not know ends the walk (LibTorch refuses those itself).
std::vector<DeclaredStorage> ScanPickle(std::string_view pickle, const std::string& what) {
  std::vector<DeclaredStorage> storages;
  std::vector<Atom> stack;
  std::vector<size_t> marks;
  std::map<uint64_t, Atom> memo;
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
    for (int i = 0; i < bytes; ++i) {
      v |= static_cast<uint64_t>(static_cast<uint8_t>(pickle[at + i])) << (8 * i);
    }
    at += bytes;
    return v;
  };
  const auto line = [&] {
    const size_t end = pickle.find('\n', at);
    if (end == std::string_view::npos) throw FormatError(what + ": the pickle ends inside a line");
    const std::string_view text = pickle.substr(at, end - at);
    at = end + 1;
    return text;
  };
  const auto push_string = [&](uint64_t n, const char* kind) {
    need(n, kind);
    stack.push_back(StringAtom(pickle.substr(at, n)));
    at += n;
  };
  // LibTorch's unpickler pops its stack and its marks without checking that they hold enough
  // (fuzz/fuzz_checkpoint: TUPLE2 on a one-value stack freed memory it never allocated). A valid
  // pickle never does: an opcode at byte `op_at` that takes `n` values from a shorter stack, or
  // that needs a MARK where there is none, is refused.
  size_t op_at = 0;
  const auto underflow = [&](const std::string& needs) {
    throw FormatError(what + ": the pickle's opcode at byte " + std::to_string(op_at) + " needs " +
                      needs + " on a stack of " + std::to_string(stack.size()) + " value(s) and " +
                      std::to_string(marks.size()) + " mark(s)");
  };
  const auto require = [&](size_t n) {
    if (stack.size() < n) underflow(std::to_string(n) + " value(s)");
  };
  const auto require_mark = [&](size_t below) {
    if (marks.empty() || marks.back() > stack.size() || marks.back() < below) {
      underflow(below ? "a MARK above " + std::to_string(below) + " value(s)" : "a MARK");
    }
  };
  const auto pop = [&](size_t n) {
    require(n);
    stack.resize(stack.size() - n);
  };
  // Pops to the last MARK, which must have at least `below` values under it, and returns what
  // was above it.
  const auto since_mark = [&](size_t below = 0) {
    require_mark(below);
    const size_t mark = marks.back();
    marks.pop_back();
    std::vector<Atom> items(std::make_move_iterator(stack.begin() + mark),
                            std::make_move_iterator(stack.end()));
    stack.resize(mark);
    return items;
  };
  const auto memoise = [&](uint64_t id) {
    if (id >= pickle.size()) {  // LibTorch reserves 2 * id + 1 memo slots (31 GB, fuzzed)
      throw FormatError(what + ": the pickle memoises value " + std::to_string(id) + " at byte " +
                        std::to_string(at) + ", more values than its " +
                        std::to_string(pickle.size()) + " bytes can hold");
    }
    require(1);
    memo[id] = stack.back();
  };
  const auto recall = [&](uint64_t id) {
    const auto it = memo.find(id);
    stack.push_back(it == memo.end() ? Atom{} : it->second);
  };
  const auto text_int = [&](std::string_view text) {
    const std::string t(text.substr(0, 32));
    return static_cast<int64_t>(std::strtoll(t.c_str(), nullptr, 10));
  };
  while (at < pickle.size()) {
    op_at = at;
    const auto op = static_cast<uint8_t>(pickle[at++]);
    switch (op) {
      case '.': return storages;  // STOP
      case '(': marks.push_back(stack.size()); break;
      // Strings and bytes.
      case 'X': case 'B': case 'T': push_string(le(4), "string"); break;
      case 'U': case 'C': case 0x8c: push_string(le(1), "string"); break;
      case 0x8d: case 0x8e: case 0x96: push_string(le(8), "string"); break;
      case 'S': case 'V': stack.push_back(StringAtom(line())); break;
      // Integers.
      case 'K': stack.push_back(IntAtom(static_cast<int64_t>(le(1)))); break;
      case 'M': stack.push_back(IntAtom(static_cast<int64_t>(le(2)))); break;
      case 'J': stack.push_back(IntAtom(static_cast<int32_t>(le(4)))); break;
      case 'I': case 'L': stack.push_back(IntAtom(text_int(line()))); break;
      case 0x8a: {  // LONG1: n bytes, little-endian two's complement
        const uint64_t n = le(1);
        need(n, "long");
        if (n == 0 || n > 8) {
          stack.emplace_back();
          at += n;
          break;
        }
        uint64_t v = 0;
        for (uint64_t i = 0; i < n; ++i) {
          v |= static_cast<uint64_t>(static_cast<uint8_t>(pickle[at + i])) << (8 * i);
        }
        if (n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign-extend
        at += n;
        stack.push_back(IntAtom(static_cast<int64_t>(v)));
        break;
      }
      case 0x8b: {  // LONG4
        const uint64_t n = le(4);
        need(n, "long");
        at += n;
        stack.emplace_back();
        break;
      }
      // Other values.
      case 'G': le(8); stack.emplace_back(); break;
      case 'F': line(); stack.emplace_back(); break;
      case 'N': case 0x88: case 0x89: case ']': case '}': case 0x8f: case 0x97:
        stack.emplace_back();
        break;
      case ')': stack.push_back(TupleAtom({})); break;
      case 'c': {  // GLOBAL: module and name on two lines
        const std::string module(line());
        Atom g;
        g.kind = Atom::kGlobal;
        g.text = module + "." + std::string(line());
        stack.push_back(std::move(g));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        require(2);
        Atom g;
        g.kind = Atom::kGlobal;
        g.text = stack[stack.size() - 2].text + "." + stack.back().text;
        pop(2);
        stack.push_back(std::move(g));
        break;
      }
      // Tuples and persistent ids.
      case 't': stack.push_back(TupleAtom(since_mark())); break;
      case 0x85: case 0x86: case 0x87: {
        const size_t n = op - 0x84;
        require(n);
        std::vector<Atom> items(std::make_move_iterator(stack.end() - n),
                                std::make_move_iterator(stack.end()));
        pop(n);
        stack.push_back(TupleAtom(std::move(items)));
        break;
      }
      case 'Q': {  // BINPERSID
        const Atom id = stack.empty() ? Atom{} : stack.back();
        pop(1);
        const bool readable =
            id.kind == Atom::kTuple && id.items.size() == 5 &&
            id.items[0].kind == Atom::kString && id.items[0].text == "storage" &&
            id.items[1].kind == Atom::kGlobal && id.items[1].text.rfind("torch.", 0) == 0 &&
            id.items[2].kind == Atom::kString && id.items[4].kind == Atom::kInt;
        if (!readable) {
          throw FormatError(what + ": the pickle's persistent id at byte " +
                            std::to_string(op_at) +
                            " is not a ('storage', torch.<Type>Storage, key, location, numel) "
                            "tuple");
        }
        storages.push_back({id.items[1].text.substr(6), id.items[2].text, id.items[4].value,
                            op_at});
        stack.emplace_back();
        break;
      }
      // The memo.
      case 'q': memoise(le(1)); break;
      case 'r': memoise(le(4)); break;
      case 'p': memoise(static_cast<uint64_t>(text_int(line()))); break;
      case 0x94: memoise(memo.size()); break;
      case 'h': recall(le(1)); break;
      case 'j': recall(le(4)); break;
      case 'g': recall(static_cast<uint64_t>(text_int(line()))); break;
      // Stack manipulation and containers.
      case '0': pop(1); break;
      case '1': since_mark(); break;
      case '2': require(1); stack.push_back(stack.back()); break;
      case 'a': case 'b': require(2); pop(1); break;  // the list or object stays
      case 's': require(3); pop(2); break;             // the dict stays
      case 'e': case 'u': case 0x90: since_mark(1); break;
      case 'l': case 'd': case 'o': case 0x91: since_mark(); stack.emplace_back(); break;
      case 'i': line(); line(); since_mark(); stack.emplace_back(); break;
      case 'R': case 0x81: pop(2); stack.emplace_back(); break;
      case 0x92: pop(3); stack.emplace_back(); break;
      case 'P': line(); stack.emplace_back(); break;
      // Arguments without a value.
      case 0x80: le(1); break;  // PROTO
      case 0x95: le(8); break;  // FRAME
      case 0x82: le(1); stack.emplace_back(); break;
      case 0x83: le(2); stack.emplace_back(); break;
      case 0x84: le(4); stack.emplace_back(); break;
      case 0x98: break;
      default:
        return storages;  // unknown to this walk: LibTorch reports it
    }
  }
  return storages;
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
  std::map<std::string, uint64_t> record_sizes;  // entry name -> declared uncompressed bytes
  std::vector<zip_int64_t> pickles;              // entries whose names end in "pkl"
  const std::string suffix = "pkl";              // data.pkl, constants.pkl, *.debug_pkl
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
    record_sizes[name] = stat.size;
    if (name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      pickles.push_back(i);
    }
  }
  for (const zip_int64_t i : pickles) {
    zip_stat_t stat;
    zip_stat_init(&stat);
    if (zip_stat_index(archive, static_cast<zip_uint64_t>(i), 0, &stat) != 0) continue;
    const std::string name = stat.name;
    {
      zip_file_t* file = zip_fopen_index(archive, static_cast<zip_uint64_t>(i), 0);
      if (file == nullptr) continue;  // LibTorch reports it
      std::string pickle(stat.size, '\0');
      const zip_int64_t n = zip_fread(file, pickle.data(), pickle.size());
      zip_fclose(file);
      pickle.resize(n < 0 ? 0 : static_cast<size_t>(n));
      const std::string entry = what + ": entry '" + name + "'";
      // Records of this pickle: <name without ".pkl">/<key> (archive/data.pkl -> archive/data/).
      const std::string folder = name.substr(0, name.size() - suffix.size());
      for (const DeclaredStorage& s : ScanPickle(pickle, entry)) {
        const auto record = record_sizes.find(folder.substr(0, folder.size() - 1) + "/" + s.key);
        if (record == record_sizes.end()) continue;  // LibTorch reports the missing record
        const int64_t item = StorageItemSize(s.type);
        if (s.numel < 0 || static_cast<uint64_t>(s.numel) > record->second / item) {
          throw FormatError(entry + ": the pickle declares a " + s.type + " of " +
                            std::to_string(s.numel) + " elements at byte " +
                            std::to_string(s.at) + " but its record '" + record->first +
                            "' holds " + std::to_string(record->second) + " bytes");
        }
      }
    }
  }
}

std::shared_ptr<caffe2::serialize::ReadAdapterInterface> BoundedArchiveReader(std::string bytes) {
  return std::make_shared<BoundedReadAdapter>(std::move(bytes));
}

}  // namespace fedmed
