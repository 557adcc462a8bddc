#include "common/data/npy.h"

#include <cstring>
#include <limits>
#include <map>

#include "common/util/byte_order.h"
#include "common/util/error.h"

namespace fedmed {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

// The value of one key of the header dict. The header is a restricted Python literal: string
// keys; values that are strings, True/False, or tuples of non-negative integers.
struct HeaderValue {
  enum class Kind { kString, kBool, kTuple } kind = Kind::kString;
  std::string text;
  bool flag = false;
  std::vector<int64_t> ints;
};

// Recursive-descent parser for the header dict, e.g.
//   {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& what) : text_(text), what_(what) {}

  std::map<std::string, HeaderValue> ParseDict() {
    std::map<std::string, HeaderValue> dict;
    Expect('{');
    while (Peek() != '}') {
      std::string key = ParseString();
      Expect(':');
      if (!dict.emplace(key, ParseValue(key)).second) Fail("key '" + key + "' appears twice");
      if (Peek() != ',') break;
      Expect(',');
    }
    Expect('}');
    if (Peek() != '\0') Fail("unexpected text after the closing '}'");
    return dict;
  }

 private:
  [[noreturn]] void Fail(const std::string& why) const {
    throw DataError(what_ + ": malformed .npy header (" + why + " at offset " +
                    std::to_string(pos_) + "): " + std::string(text_));
  }

  // Skips whitespace and returns the next character ('\0' at the end).
  char Peek() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\t' || text_[pos_] == '\r')) {
      ++pos_;
    }
    return pos_ < text_.size() ? text_[pos_] : '\0';
  }

  void Expect(char c) {
    if (Peek() != c) Fail(std::string("expected '") + c + "'");
    ++pos_;
  }

  std::string ParseString() {
    const char quote = Peek();
    if (quote != '\'' && quote != '"') Fail("expected a quoted string");
    const size_t end = text_.find(quote, ++pos_);
    if (end == std::string_view::npos) Fail("unterminated string");
    std::string s(text_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }

  int64_t ParseInt() {
    Peek();
    const size_t start = pos_;
    int64_t value = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      const int digit = text_[pos_++] - '0';
      if (value > (std::numeric_limits<int64_t>::max() - digit) / 10) Fail("dimension too large");
      value = value * 10 + digit;
    }
    if (pos_ == start) Fail("expected a non-negative integer dimension");
    if (pos_ < text_.size() && text_[pos_] == 'L') ++pos_;  // Python 2 long suffix.
    return value;
  }

  HeaderValue ParseValue(const std::string& key) {
    HeaderValue v;
    const char c = Peek();
    if (c == '\'' || c == '"') {
      v.kind = HeaderValue::Kind::kString;
      v.text = ParseString();
    } else if (c == '(') {
      v.kind = HeaderValue::Kind::kTuple;
      ++pos_;
      while (Peek() != ')') {
        v.ints.push_back(ParseInt());
        if (Peek() != ',') break;
        ++pos_;
      }
      Expect(')');
    } else if (text_.substr(pos_, 4) == "True") {
      v.kind = HeaderValue::Kind::kBool;
      v.flag = true;
      pos_ += 4;
    } else if (text_.substr(pos_, 5) == "False") {
      v.kind = HeaderValue::Kind::kBool;
      pos_ += 5;
    } else if (c == '[' && key == "descr") {
      throw DataError(what_ + ": structured dtypes are not supported (descr is a list): " +
                      std::string(text_));
    } else {
      Fail("unsupported value for key '" + key + "'");
    }
    return v;
  }

  std::string_view text_;
  const std::string& what_;
  size_t pos_ = 0;
};

const HeaderValue& Field(const std::map<std::string, HeaderValue>& dict, const std::string& key,
                         HeaderValue::Kind kind, const std::string& what) {
  auto it = dict.find(key);
  if (it == dict.end()) throw DataError(what + ": .npy header has no '" + key + "' key");
  if (it->second.kind != kind) {
    throw DataError(what + ": .npy header key '" + key + "' has the wrong type");
  }
  return it->second;
}

}  // namespace

int64_t NpyArray::NumElements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t DtypeSize(const std::string& dtype, const std::string& what) {
  static const std::map<std::string, int64_t> kSizes = {
      {"|u1", 1}, {"|i1", 1}, {"|b1", 1}, {"<u2", 2}, {"<i2", 2}, {"<u4", 4},
      {"<i4", 4}, {"<u8", 8}, {"<i8", 8}, {"<f4", 4}, {"<f8", 8}};
  auto it = kSizes.find(dtype);
  if (it == kSizes.end()) {
    throw DataError(what + ": unsupported dtype '" + dtype +
                    "' (supported: |u1 |i1 |b1 <u2 <i2 <u4 <i4 <u8 <i8 <f4 <f8)");
  }
  return it->second;
}

NpyArray ParseNpy(std::string_view bytes, const std::string& what) {
  if (bytes.size() < kMagicSize + 2 || std::memcmp(bytes.data(), kMagic, kMagicSize) != 0) {
    throw DataError(what + ": not a .npy array (missing the \\x93NUMPY magic string)");
  }
  const int major = static_cast<unsigned char>(bytes[kMagicSize]);
  const int minor = static_cast<unsigned char>(bytes[kMagicSize + 1]);
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    throw DataError(what + ": unsupported .npy format version " + std::to_string(major) + "." +
                    std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)");
  }
  const int len_size = major == 1 ? 2 : 4;
  const size_t prefix = kMagicSize + 2 + len_size;
  if (bytes.size() < prefix) throw DataError(what + ": .npy file truncated inside its preamble");
  const uint64_t header_len = LoadLittleEndian(bytes.data() + kMagicSize + 2, len_size);
  if (header_len > bytes.size() - prefix) {
    throw DataError(what + ": .npy header declares " + std::to_string(header_len) +
                    " bytes but only " + std::to_string(bytes.size() - prefix) + " follow");
  }

  const auto dict = HeaderParser(bytes.substr(prefix, header_len), what).ParseDict();
  if (dict.size() != 3) {
    throw DataError(what + ": .npy header must have exactly the keys descr, fortran_order, shape");
  }
  NpyArray array;
  array.dtype = Field(dict, "descr", HeaderValue::Kind::kString, what).text;
  if (Field(dict, "fortran_order", HeaderValue::Kind::kBool, what).flag) {
    throw DataError(what + ": Fortran-order (column-major) arrays are not supported; save it "
                    "with np.ascontiguousarray");
  }
  array.shape = Field(dict, "shape", HeaderValue::Kind::kTuple, what).ints;
  const int64_t item_size = DtypeSize(array.dtype, what);

  int64_t expected = item_size;
  for (int64_t d : array.shape) {
    if (d != 0 && expected > std::numeric_limits<int64_t>::max() / d) {
      throw DataError(what + ": shape " + FormatShape(array.shape) + " is too large");
    }
    expected *= d;
  }
  const std::string_view data = bytes.substr(prefix + header_len);
  if (static_cast<uint64_t>(expected) != data.size()) {
    throw DataError(what + ": shape " + FormatShape(array.shape) + " of dtype " + array.dtype +
                    " needs " + std::to_string(expected) + " data bytes but the file has " +
                    std::to_string(data.size()) +
                    (static_cast<uint64_t>(expected) > data.size() ? " (truncated)" : ""));
  }
  array.data.assign(data);
  return array;
}

std::vector<int64_t> NpyToInt64(const NpyArray& array, const std::string& what) {
  const std::string& t = array.dtype;
  const bool is_int = t.size() == 3 && (t[1] == 'u' || t[1] == 'i');
  if (!is_int) {
    throw DataError(what + ": expected an integer array but the dtype is '" + t + "'");
  }
  const int size = t[2] - '0';
  const bool is_signed = t[1] == 'i';
  const int64_t n = array.NumElements();
  if (array.data.size() != static_cast<size_t>(n * size)) {
    throw DataError(what + ": array holds " + std::to_string(array.data.size()) +
                    " bytes but shape " + FormatShape(array.shape) + " needs " +
                    std::to_string(n * size));
  }
  std::vector<int64_t> out(n);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t raw = LoadLittleEndian(array.data.data() + i * size, size);
    if (is_signed) {
      const int shift = 64 - 8 * size;  // Sign-extend from `size` bytes.
      out[i] = static_cast<int64_t>(raw << shift) >> shift;
    } else {
      if (raw > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        throw DataError(what + ": element " + std::to_string(i) + " (" + std::to_string(raw) +
                        ") does not fit in int64");
      }
      out[i] = static_cast<int64_t>(raw);
    }
  }
  return out;
}

std::string FormatShape(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

}  // namespace fedmed
