#include "common/model/model_state.h"

#include <cmath>
#include <cstring>
#include <unordered_set>

#include "common/model/quantization.h"
#include "common/util/byte_order.h"
#include "common/util/error.h"

namespace fedmed {

namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "float32 values are copied as is; a big-endian host needs a byte swap");

constexpr char kMagic[4] = {'F', 'M', 'S', 'T'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxNameLength = 1024;
constexpr uint32_t kMaxRank = 8;
constexpr uint8_t kFloat32Tag = 1;
constexpr uint8_t kFloat16Tag = 2;
constexpr uint8_t kInt8Tag = 3;

uint8_t DtypeTag(UpdateEncoding encoding) {
  switch (encoding) {
    case UpdateEncoding::kFloat16: return kFloat16Tag;
    case UpdateEncoding::kInt8: return kInt8Tag;
    case UpdateEncoding::kFloat32: break;
  }
  return kFloat32Tag;
}

// Smallest tensor record: name length, a 1-byte name, rank 0, dtype tag, one value (and the
// int8 scale).
size_t MinRecordBytes(UpdateEncoding encoding) {
  return 4 + 1 + 4 + 1 + BytesPerTensorScale(encoding) + BytesPerValue(encoding);
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// Index of the first NaN or infinite value, or -1.
int64_t FirstNonFinite(const std::vector<float>& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) return static_cast<int64_t>(i);
  }
  return -1;
}

// Reads the little-endian fields of an encoded state, failing with FormatError on truncation.
class Reader {
 public:
  Reader(std::string_view bytes, const std::string& what) : bytes_(bytes), what_(what) {}

  size_t remaining() const { return bytes_.size() - pos_; }
  size_t position() const { return pos_; }

  [[noreturn]] void Fail(const std::string& message) const {
    throw FormatError("model state '" + what_ + "': " + message + " (at byte " +
                      std::to_string(pos_) + " of " + std::to_string(bytes_.size()) + ")");
  }

  void Need(size_t n, const char* field) const {
    if (remaining() < n) {
      Fail(std::string("truncated: ") + field + " needs " + std::to_string(n) + " bytes, " +
           std::to_string(remaining()) + " remain");
    }
  }

  std::string_view Bytes(size_t n, const char* field) {
    Need(n, field);
    std::string_view s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }

  uint64_t Uint(int width, const char* field) {
    return LoadLittleEndian(Bytes(static_cast<size_t>(width), field).data(),
                            static_cast<size_t>(width));
  }

 private:
  std::string_view bytes_;
  const std::string& what_;
  size_t pos_ = 0;
};

}  // namespace

double L2Norm(const ModelState& state) {
  double sum = 0;
  for (const NamedTensor& t : state.tensors) {
    for (const float v : t.values) sum += static_cast<double>(v) * static_cast<double>(v);
  }
  return std::sqrt(sum);
}

int64_t ModelState::NumValues() const {
  int64_t n = 0;
  for (const NamedTensor& t : tensors) n += static_cast<int64_t>(t.values.size());
  return n;
}

const NamedTensor* ModelState::Find(const std::string& name) const {
  for (const NamedTensor& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

int64_t EncodedModelStateSize(const ModelState& layout, UpdateEncoding encoding) {
  int64_t size = 12;
  for (const NamedTensor& t : layout.tensors) {
    size += static_cast<int64_t>(4 + t.name.size() + 4 + 8 * t.shape.size() + 1) +
            BytesPerTensorScale(encoding) +
            BytesPerValue(encoding) * static_cast<int64_t>(t.values.size());
  }
  return size;
}

std::string EncodeModelState(const ModelState& state, UpdateEncoding encoding, uint64_t seed) {
  const auto size = static_cast<size_t>(EncodedModelStateSize(state, encoding));
  std::mt19937_64 rng = QuantizationRng(seed);
  std::string out;
  out.reserve(size);
  out.append(kMagic, sizeof(kMagic));
  AppendLittleEndian32(&out, kVersion);
  AppendLittleEndian32(&out, static_cast<uint32_t>(state.tensors.size()));
  for (const NamedTensor& t : state.tensors) {
    const std::string prefix = "cannot encode model state: tensor '" + t.name + "' ";
    if (t.name.empty() || t.name.size() > kMaxNameLength) {
      throw FormatError(prefix + "has a name of " + std::to_string(t.name.size()) +
                        " bytes, expected 1 to " + std::to_string(kMaxNameLength));
    }
    if (t.shape.size() > kMaxRank) {
      throw FormatError(prefix + "has rank " + std::to_string(t.shape.size()) +
                        ", at most " + std::to_string(kMaxRank) + " is supported");
    }
    uint64_t count = 1;
    for (int64_t d : t.shape) {
      if (d < 0) throw FormatError(prefix + "has a negative dim in shape " + ShapeString(t.shape));
      count *= static_cast<uint64_t>(d);
    }
    if (count != t.values.size()) {
      throw FormatError(prefix + "of shape " + ShapeString(t.shape) + " has " +
                        std::to_string(t.values.size()) + " values, expected " +
                        std::to_string(count));
    }
    if (int64_t bad = FirstNonFinite(t.values); bad >= 0) {
      throw FormatError(prefix + "has a non-finite value (" + std::to_string(t.values[bad]) +
                        ") at flat index " + std::to_string(bad));
    }
    AppendLittleEndian32(&out, static_cast<uint32_t>(t.name.size()));
    out += t.name;
    AppendLittleEndian32(&out, static_cast<uint32_t>(t.shape.size()));
    for (int64_t d : t.shape) AppendLittleEndian64(&out, static_cast<uint64_t>(d));
    out.push_back(static_cast<char>(DtypeTag(encoding)));
    switch (encoding) {
      case UpdateEncoding::kFloat32:
        out.append(reinterpret_cast<const char*>(t.values.data()), 4 * t.values.size());
        break;
      case UpdateEncoding::kFloat16:
        EncodeFloat16(t.values, "cannot encode model state: tensor '" + t.name + "'", &out);
        break;
      case UpdateEncoding::kInt8: {
        const Int8Tensor q = QuantizeInt8(t.values, rng);
        uint32_t scale_bits = 0;
        std::memcpy(&scale_bits, &q.scale, 4);
        AppendLittleEndian32(&out, scale_bits);
        out.append(reinterpret_cast<const char*>(q.q.data()), q.q.size());
        break;
      }
    }
  }
  return out;
}

ModelState DecodeModelState(std::string_view bytes, const std::string& what,
                            UpdateEncoding encoding) {
  const uint8_t expected_tag = DtypeTag(encoding);
  const uint64_t value_bytes = static_cast<uint64_t>(BytesPerValue(encoding));
  const uint64_t scale_bytes = static_cast<uint64_t>(BytesPerTensorScale(encoding));
  const size_t min_record_bytes = MinRecordBytes(encoding);
  Reader in(bytes, what);
  if (in.Bytes(4, "magic") != std::string_view(kMagic, sizeof(kMagic))) {
    in.Fail("bad magic, expected \"FMST\" (not a fedmed model state)");
  }
  if (const uint64_t version = in.Uint(4, "format version"); version != kVersion) {
    in.Fail("format version " + std::to_string(version) + ", expected " +
            std::to_string(kVersion));
  }
  const uint64_t count = in.Uint(4, "tensor count");
  if (count > in.remaining() / min_record_bytes) {
    in.Fail("tensor count " + std::to_string(count) + " cannot fit in the " +
            std::to_string(in.remaining()) + " remaining bytes");
  }
  ModelState state;
  state.tensors.resize(count);
  std::unordered_set<std::string_view> names;
  for (uint64_t i = 0; i < count; ++i) {
    NamedTensor& t = state.tensors[i];
    const std::string index = "tensor #" + std::to_string(i);
    const uint64_t name_length = in.Uint(4, "name length");
    if (name_length == 0 || name_length > kMaxNameLength) {
      in.Fail(index + " has a name length of " + std::to_string(name_length) +
              ", expected 1 to " + std::to_string(kMaxNameLength));
    }
    t.name = std::string(in.Bytes(name_length, "tensor name"));
    const std::string label = index + " '" + t.name + "'";
    if (!names.insert(t.name).second) in.Fail(label + " repeats an earlier tensor's name");
    const uint64_t rank = in.Uint(4, "rank");
    if (rank > kMaxRank) {
      in.Fail(label + " has rank " + std::to_string(rank) + ", at most " +
              std::to_string(kMaxRank) + " is supported");
    }
    in.Need(8 * rank + 1 + scale_bytes, "dims and dtype tag");
    // Bound the value count by the bytes left after the dims, the dtype tag (and the scale), so
    // that it is known to fit before the values are allocated.
    const uint64_t max_values = (in.remaining() - 8 * rank - 1 - scale_bytes) / value_bytes;
    uint64_t value_count = 1;
    t.shape.resize(rank);
    for (uint64_t d = 0; d < rank; ++d) {
      const uint64_t dim = in.Uint(8, "dim");
      if (dim > max_values || (dim != 0 && value_count > max_values / dim)) {
        in.Fail(label + " dim " + std::to_string(d) + " = " + std::to_string(dim) +
                " makes more values than the " + std::to_string(max_values * value_bytes) +
                " remaining bytes can hold");
      }
      value_count *= dim;
      t.shape[d] = static_cast<int64_t>(dim);
    }
    if (const uint64_t tag = in.Uint(1, "dtype tag"); tag != expected_tag) {
      in.Fail(label + " has dtype tag " + std::to_string(tag) + ", expected " +
              std::to_string(expected_tag) + " (" + UpdateEncodingName(encoding) + ")");
    }
    float scale = 0;
    if (encoding == UpdateEncoding::kInt8) {
      const auto scale_bits = static_cast<uint32_t>(in.Uint(4, "int8 scale"));
      std::memcpy(&scale, &scale_bits, 4);
      if (!std::isfinite(scale) || scale < 0) {
        in.Fail(label + " has int8 scale " + std::to_string(scale) +
                ", expected a finite number >= 0");
      }
    }
    if (value_count > max_values) {
      in.Fail(label + " of shape " + ShapeString(t.shape) + " needs " +
              std::to_string(value_count * value_bytes) + " bytes of values, " +
              std::to_string(in.remaining()) + " remain");
    }
    std::string_view raw = in.Bytes(value_bytes * value_count, "values");
    t.values.resize(value_count);
    if (encoding == UpdateEncoding::kFloat32) {
      // (A tensor with a 0 dim has no values: memcpy must not see its null data pointer.)
      if (!raw.empty()) std::memcpy(t.values.data(), raw.data(), raw.size());
    } else if (encoding == UpdateEncoding::kFloat16) {
      for (uint64_t v = 0; v < value_count; ++v) {
        t.values[v] = HalfToFloat(static_cast<uint16_t>(
            static_cast<uint8_t>(raw[2 * v]) | (static_cast<uint8_t>(raw[2 * v + 1]) << 8)));
      }
    } else {
      for (uint64_t v = 0; v < value_count; ++v) {
        const auto q = static_cast<int8_t>(raw[v]);
        if (q == -128) {
          in.Fail(label + " has int8 value -128 at flat index " + std::to_string(v) +
                  ", expected -127 to 127");
        }
        t.values[v] = static_cast<float>(q) * scale;
      }
    }
    if (int64_t bad = FirstNonFinite(t.values); bad >= 0) {
      in.Fail(label + " has a non-finite value (" + std::to_string(t.values[bad]) +
              ") at flat index " + std::to_string(bad));
    }
  }
  if (in.remaining() != 0) {
    in.Fail(std::to_string(in.remaining()) + " trailing bytes after the last tensor");
  }
  return state;
}

void CheckSameLayout(const ModelState& expected, const ModelState& actual,
                     const std::string& what) {
  const size_t common = std::min(expected.tensors.size(), actual.tensors.size());
  for (size_t i = 0; i < common; ++i) {
    const NamedTensor& e = expected.tensors[i];
    const NamedTensor& a = actual.tensors[i];
    if (e.name != a.name) {
      throw FormatError(what + ": tensor #" + std::to_string(i) + " is '" + a.name +
                        "', expected '" + e.name + "'");
    }
    if (e.shape != a.shape || e.values.size() != a.values.size()) {
      throw FormatError(what + ": tensor '" + e.name + "' has shape " + ShapeString(a.shape) +
                        " (" + std::to_string(a.values.size()) + " values), expected " +
                        ShapeString(e.shape) + " (" + std::to_string(e.values.size()) +
                        " values)");
    }
  }
  if (expected.tensors.size() != actual.tensors.size()) {
    const std::string first =
        expected.tensors.size() > common
            ? "the first missing one is '" + expected.tensors[common].name + "'"
            : "the first extra one is '" + actual.tensors[common].name + "'";
    throw FormatError(what + ": has " + std::to_string(actual.tensors.size()) +
                      " tensors, expected " + std::to_string(expected.tensors.size()) + "; " +
                      first);
  }
}

ModelState Subtract(const ModelState& a, const ModelState& b) {
  CheckSameLayout(a, b, "model state subtraction (a - b), b");
  ModelState out = a;
  for (size_t i = 0; i < out.tensors.size(); ++i) {
    std::vector<float>& v = out.tensors[i].values;
    const std::vector<float>& w = b.tensors[i].values;
    for (size_t j = 0; j < v.size(); ++j) v[j] -= w[j];
  }
  return out;
}

}  // namespace fedmed
