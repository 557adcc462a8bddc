// The architecture of a model as parties compare it: the ordered parameter names and shapes, and
// a SHA-256 digest of them. No LibTorch.
//
// Sites and the coordinator each build their model locally (from the zoo, or from their own copy
// of a TorchScript file, common/model/torchscript_model.h), so before the first round they check
// that they hold the same architecture: the same parameters, with the same names, in the same
// order, of the same shapes. The values do not count (they are what training changes).
//
// Digest (ArchitectureDigest), version 1: SHA-256, as 64 lowercase hex characters, of
//
//   "fedmed-architecture-v1\n"
//   then for every parameter, in order: u32 name length, name bytes, u32 rank R, R x u64 dims
//
// with every integer unsigned little-endian (the layout of model_state.h's byte format, without
// dtypes and values). Equal digests mean equal names and shapes in the same order (barring a
// SHA-256 collision).
#ifndef FEDMED_COMMON_MODEL_ARCHITECTURE_H_
#define FEDMED_COMMON_MODEL_ARCHITECTURE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/model/model_state.h"

namespace fedmed {

struct ParameterShape {
  std::string name;            // e.g. "conv1.weight"
  std::vector<int64_t> shape;  // dims, outermost first; {} for a scalar
};

struct ModelArchitecture {
  std::vector<ParameterShape> parameters;  // in the model's named_parameters() order
  std::string digest;                      // ArchitectureDigest(parameters)
};

// The names and shapes of `state`'s tensors, in order. Never throws.
std::vector<ParameterShape> ParameterShapes(const ModelState& state);

// The digest above of `parameters`. Throws CryptoError if OpenSSL fails.
std::string ArchitectureDigest(const std::vector<ParameterShape>& parameters);
// ArchitectureDigest(ParameterShapes(state)).
std::string ArchitectureDigest(const ModelState& state);

// {ParameterShapes(state), ArchitectureDigest(state)}: what a party sends (or keeps) to compare.
ModelArchitecture DescribeArchitecture(const ModelState& state);

// Checks that two parties hold the same architecture. `ours` is this party's, `theirs` the
// other's (e.g. received at registration); the names describe them in the message, e.g.
// "coordinator (model \"torchscript\", mynet.pt)" and "site-2".
// theirs.parameters may be empty when the other party sent its digest only; then only the
// digests are compared. Otherwise each side's digest is first checked against its own names and
// shapes, then the lists are compared.
// Throws ConfigError naming both parties when they differ: with both lists, the parameter counts
// and the first few (up to 5) differing positions, each with its name and shape on both sides
// (or "missing"), and the total number of differing positions; with `theirs` a digest only, both
// digests. Throws FormatError naming the party whose digest does not match its own names and
// shapes (corrupt or forged description).
void CheckSameArchitecture(const ModelArchitecture& ours, const std::string& ours_what,
                           const ModelArchitecture& theirs, const std::string& theirs_what);

}  // namespace fedmed

#endif  // FEDMED_COMMON_MODEL_ARCHITECTURE_H_
