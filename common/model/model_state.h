// Model state: the parameters of a network as plain named float32 arrays, and their byte codec.
//
// A ModelState is the unit of exchange between sites and the coordinator: the global model sent
// to the sites, the update (trained - global) sent back, the aggregate, the checkpoint. It holds
// no LibTorch types, so code that only moves, hashes or averages models compiles without LibTorch
// (common/model/torch_state.h converts to and from a torch::nn::Module).
//
// Byte format (EncodeModelState / DecodeModelState), version 1. Every integer is unsigned and
// little-endian; there is no padding and no alignment:
//
//   offset  size      field
//   0       4         magic "FMST" (bytes 0x46 0x4D 0x53 0x54)
//   4       4         u32 format version = 1
//   8       4         u32 tensor count T
//   12      ...       T tensor records, in ModelState::tensors order:
//                       4        u32 name length L, 1 <= L <= 1024
//                       L        name bytes (as given, no terminator)
//                       4        u32 rank R, 0 <= R <= 8
//                       8 * R    u64 dims, outermost first
//                       1        u8 dtype tag: 1 = float32, 2 = float16, 3 = int8
//                       ...      values, row-major; V = product of the dims (1 for rank 0):
//                                tag 1: 4 * V, IEEE-754 binary32 little-endian;
//                                tag 2: 2 * V, IEEE-754 binary16 little-endian;
//                                tag 3: 4 bytes float32 scale s (finite, >= 0), then V int8
//                                  values q in [-127, 127]; the value is q * s
//
// Tags 2 and 3 are the compressed update encodings (quantization.h, [transport]
// update_encoding); all tensors of one encoding carry the same tag, and a decoder is told which
// one to expect (global models and checkpoints are always float32).
//
// The encoding is a function of the state alone (no timestamps, no maps, no padding), so equal
// states give equal bytes and their SHA-256 digests can be compared across machines.
#ifndef FEDMED_COMMON_MODEL_MODEL_STATE_H_
#define FEDMED_COMMON_MODEL_MODEL_STATE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/model/quantization.h"

namespace fedmed {

struct NamedTensor {
  std::string name;            // PyTorch parameter name, e.g. "conv1.weight", "layer1.0.gn2.bias"
  std::vector<int64_t> shape;  // dims, outermost first; {} for a scalar
  std::vector<float> values;   // float32, row-major, product(shape) values
};

struct ModelState {
  std::vector<NamedTensor> tensors;  // in the model's named_parameters() order

  // Total number of float values over all tensors.
  int64_t NumValues() const;

  // The tensor called `name`, or nullptr if there is none.
  const NamedTensor* Find(const std::string& name) const;
};

// Encodes `state` in the byte format above, its values as `encoding` says (quantization.h;
// float32 by default, exact). Deterministic: same state, encoding and `seed`, same bytes; `seed`
// seeds the int8 encoding's stochastic rounding (QuantizationRng) and is ignored otherwise.
// Throws FormatError naming the tensor when a tensor cannot be encoded: its name is empty or
// longer than 1024 bytes, its rank exceeds 8, a dim is negative, values.size() differs from the
// product of the dims, or a value is NaN or infinite (so that every encoded state decodes), or,
// for float16, a value's magnitude exceeds 65504.
std::string EncodeModelState(const ModelState& state,
                             UpdateEncoding encoding = UpdateEncoding::kFloat32,
                             uint64_t seed = 0);

// The exact size in bytes of EncodeModelState(s, encoding) for any state s with the layout
// (names, shapes) of `layout`: what the coordinator expects an update to announce.
int64_t EncodedModelStateSize(const ModelState& layout, UpdateEncoding encoding);

// Decodes bytes written by EncodeModelState. `what` names the bytes in error messages, e.g.
// "update from site-2 for round 3". Throws FormatError naming `what` (and the tensor, where there
// is one) when: the magic or version is wrong; the bytes end early (truncation) or continue after
// the last tensor (trailing bytes); a name length, rank, dim, tensor count or value count is out
// of range or larger than the bytes that remain (checked before anything is allocated, so a few
// hostile bytes cannot trigger a huge allocation); a dtype tag is not `encoding`'s; an int8
// scale is negative or not finite, or an int8 value is -128; a name is repeated; or a (decoded)
// value is NaN or infinite.
ModelState DecodeModelState(std::string_view bytes, const std::string& what,
                            UpdateEncoding encoding = UpdateEncoding::kFloat32);

// Checks that `actual` has the layout of `expected`: the same number of tensors with the same
// names, in the same order, of the same shapes. Throws FormatError naming `what` and the first
// tensor that differs (its position, name, and expected vs found name, shape or count).
void CheckSameLayout(const ModelState& expected, const ModelState& actual,
                     const std::string& what);

// The L2 norm of every value of `state` together, accumulated in float64 (so the squares of
// finite float32 values cannot overflow); infinity or NaN when a value is not finite.
double L2Norm(const ModelState& state);

// a - b, element-wise (float32 arithmetic). Throws FormatError as CheckSameLayout when the
// layouts differ.
ModelState Subtract(const ModelState& a, const ModelState& b);

}  // namespace fedmed

#endif  // FEDMED_COMMON_MODEL_MODEL_STATE_H_
