#include "common/model/quantization.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/util/error.h"

namespace fedmed {

const char* UpdateEncodingName(UpdateEncoding encoding) {
  switch (encoding) {
    case UpdateEncoding::kFloat16: return "float16";
    case UpdateEncoding::kInt8: return "int8";
    case UpdateEncoding::kFloat32: break;
  }
  return "float32";
}

std::optional<UpdateEncoding> ParseUpdateEncoding(std::string_view name) {
  for (UpdateEncoding e : {UpdateEncoding::kFloat32, UpdateEncoding::kFloat16,
                           UpdateEncoding::kInt8}) {
    if (name == UpdateEncodingName(e)) return e;
  }
  return std::nullopt;
}

int BytesPerValue(UpdateEncoding encoding) {
  switch (encoding) {
    case UpdateEncoding::kFloat16: return 2;
    case UpdateEncoding::kInt8: return 1;
    case UpdateEncoding::kFloat32: break;
  }
  return 4;
}

int BytesPerTensorScale(UpdateEncoding encoding) {
  return encoding == UpdateEncoding::kInt8 ? 4 : 0;
}

uint16_t FloatToHalf(float x) {
  uint32_t f = 0;
  std::memcpy(&f, &x, 4);
  const uint32_t sign = (f >> 16) & 0x8000u;
  const uint32_t abs = f & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // infinity, or NaN (kept a quiet NaN)
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  }
  if (abs >= 0x47800000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 2^16: infinity
  if (abs < 0x38800000u) {
    // Below 2^-14: a binary16 subnormal, m * 2^-24. Scaling by 2^24 is exact, and nearbyint
    // rounds to nearest, ties to even (the default rounding mode); m = 1024 is 2^-14, the
    // smallest normal, whose bits are the same.
    float magnitude = 0;
    std::memcpy(&magnitude, &abs, 4);
    const auto m = static_cast<uint32_t>(std::nearbyint(magnitude * 16777216.0f));
    return static_cast<uint16_t>(sign | m);
  }
  const uint32_t exponent = (abs >> 23) - 127 + 15;  // 1..30
  const uint32_t mantissa = abs & 0x7fffffu;
  uint32_t h = (exponent << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1fffu;
  // Ties to even; a carry out of the mantissa moves to the next exponent (up to infinity).
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  uint32_t f = 0;
  if (exponent == 0) {
    const float v = std::ldexp(static_cast<float>(mantissa), -24);  // exact
    std::memcpy(&f, &v, 4);
    f |= sign;
  } else if (exponent == 31) {
    f = sign | 0x7f800000u | (mantissa << 13);
  } else {
    f = sign | ((exponent - 15 + 127) << 23) | (mantissa << 13);
  }
  float out = 0;
  std::memcpy(&out, &f, 4);
  return out;
}

void EncodeFloat16(const std::vector<float>& values, const std::string& what, std::string* out) {
  const std::size_t start = out->size();
  out->resize(start + 2 * values.size());
  char* p = out->data() + start;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const uint16_t h = FloatToHalf(values[i]);
    if ((h & 0x7c00u) == 0x7c00u) {
      out->resize(start);
      throw FormatError(what + ": value " + std::to_string(values[i]) + " at flat index " +
                        std::to_string(i) +
                        " does not fit float16 (largest magnitude 65504); use update_encoding "
                        "\"float32\" or \"int8\"");
    }
    p[2 * i] = static_cast<char>(h & 0xffu);
    p[2 * i + 1] = static_cast<char>(h >> 8);
  }
}

Int8Tensor QuantizeInt8(const std::vector<float>& values, std::mt19937_64& rng) {
  Int8Tensor out;
  out.q.resize(values.size());
  float max_abs = 0;
  for (const float v : values) max_abs = std::max(max_abs, std::fabs(v));
  if (max_abs == 0) return out;  // scale 0, every q 0: exact
  out.scale = max_abs / 127.0f;
  // A tensor of values so small that the scale underflows: the smallest positive float keeps
  // |x / s| <= 127 and the bound |q s - x| < s.
  if (out.scale == 0) out.scale = std::numeric_limits<float>::denorm_min();
  const double scale = out.scale;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;  // [0, 1)
    const double q = std::floor(static_cast<double>(values[i]) / scale + u);
    // |x / s| <= 127 up to float rounding of s: the clamp moves q by less than 1.
    out.q[i] = static_cast<int8_t>(std::clamp(q, -127.0, 127.0));
  }
  return out;
}

std::mt19937_64 QuantizationRng(uint64_t seed) {
  // A fixed odd constant keeps the quantisation draws apart from anything else seeded with the
  // training seed itself.
  return std::mt19937_64(seed ^ 0x9e3779b97f4a7c15ULL);
}

}  // namespace fedmed
