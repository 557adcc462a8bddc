// Compressed update encodings: how the values of a model update travel from a site to the
// coordinator ([transport] update_encoding in coordinator.toml, announced in every train task).
// The byte format that carries them is the model state's (model_state.h, dtype tags 2 and 3);
// this file has the value codecs themselves. Pure C++, no LibTorch.
//
//   float32  4 bytes per value, exact (what fedmed always sent).
//   float16  2 bytes per value: IEEE-754 binary16, round to nearest, ties to even. Relative error
//            at most 2^-11 for |x| >= 2^-14 (the normal range), absolute error at most 2^-25
//            below it (subnormals). A value of magnitude above 65504 (the largest binary16)
//            cannot be encoded: EncodeFloat16 throws.
//   int8     1 byte per value plus one float32 scale per tensor: the scale is
//            s = max_i |x_i| / 127, and each value is rounded stochastically to an integer
//            q_i in [-127, 127]: q_i = floor(x_i / s + u_i) with u_i uniform in [0, 1) from a
//            seeded generator (std::mt19937_64, portable), so that E[q_i s] = x_i (unbiased:
//            the aggregate of many sites' updates carries no rounding bias) and
//            |q_i s - x_i| < s for every element. Stochastic rounding as in QSGD (Alistarh et
//            al., NeurIPS 2017) with one level per integer; per-tensor max scaling as in
//            NVIDIA FLARE's message quantisation.
#ifndef FEDMED_COMMON_MODEL_QUANTIZATION_H_
#define FEDMED_COMMON_MODEL_QUANTIZATION_H_

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace fedmed {

enum class UpdateEncoding { kFloat32, kFloat16, kInt8 };

// "float32", "float16", "int8".
const char* UpdateEncodingName(UpdateEncoding encoding);
// The encoding called `name` (one of the names above), or nullopt.
std::optional<UpdateEncoding> ParseUpdateEncoding(std::string_view name);

// Bytes per value on the wire (4, 2, 1) and per tensor besides its values (0, 0, 4: the int8
// scale).
int BytesPerValue(UpdateEncoding encoding);
int BytesPerTensorScale(UpdateEncoding encoding);

// IEEE-754 binary16 bits of `x`, rounded to nearest, ties to even (subnormals included; NaN stays
// NaN). Values beyond the binary16 range give infinity: callers check (EncodeFloat16 does).
uint16_t FloatToHalf(float x);
// The float32 value of binary16 bits `h` (exact: every binary16 value is a float32 value).
float HalfToFloat(uint16_t h);

// Appends the binary16 bits of `values` to `out`, little-endian. Throws FormatError naming
// `what` and the flat index when a value is not finite or its magnitude rounds above 65504.
void EncodeFloat16(const std::vector<float>& values, const std::string& what, std::string* out);

// The int8 quantisation of one tensor: scale s >= 0 and the integers q_i in [-127, 127]
// (decoded value q_i * s). `values` must be finite (model states are); s = 0 for a tensor of
// zeros or no values. `rng` supplies the u_i, one 64-bit draw per value in order
// (u = (draw >> 11) * 2^-53), so a seed gives the same bytes on every platform.
struct Int8Tensor {
  float scale = 0;
  std::vector<int8_t> q;
};
Int8Tensor QuantizeInt8(const std::vector<float>& values, std::mt19937_64& rng);

// The generator EncodeModelState seeds for int8 from `seed` (the site's training seed of the
// round), so that a site's quantisation noise is reproducible run to run.
std::mt19937_64 QuantizationRng(uint64_t seed);

}  // namespace fedmed

#endif  // FEDMED_COMMON_MODEL_QUANTIZATION_H_
