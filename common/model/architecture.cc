#include "common/model/architecture.h"

#include <algorithm>

#include "common/crypto/sha256.h"
#include "common/util/byte_order.h"
#include "common/util/error.h"

namespace fedmed {

namespace {

constexpr size_t kMaxListed = 5;

void PutU32(Sha256& hash, uint32_t v) {
  uint8_t bytes[4];
  StoreLittleEndian32(bytes, v);
  hash.Update(bytes, sizeof(bytes));
}

void PutU64(Sha256& hash, uint64_t v) {
  uint8_t bytes[8];
  StoreLittleEndian64(bytes, v);
  hash.Update(bytes, sizeof(bytes));
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string Describe(const std::vector<ParameterShape>& parameters, size_t i) {
  if (i >= parameters.size()) return "missing";
  return "'" + parameters[i].name + "' " + ShapeText(parameters[i].shape);
}

bool SameEntry(const ParameterShape& a, const ParameterShape& b) {
  return a.name == b.name && a.shape == b.shape;
}

}  // namespace

std::vector<ParameterShape> ParameterShapes(const ModelState& state) {
  std::vector<ParameterShape> out;
  out.reserve(state.tensors.size());
  for (const NamedTensor& t : state.tensors) out.push_back({t.name, t.shape});
  return out;
}

std::string ArchitectureDigest(const std::vector<ParameterShape>& parameters) {
  Sha256 hash;
  hash.Update("fedmed-architecture-v1\n");
  for (const ParameterShape& p : parameters) {
    PutU32(hash, static_cast<uint32_t>(p.name.size()));
    hash.Update(p.name);
    PutU32(hash, static_cast<uint32_t>(p.shape.size()));
    for (int64_t d : p.shape) PutU64(hash, static_cast<uint64_t>(d));
  }
  return hash.FinishHex();
}

std::string ArchitectureDigest(const ModelState& state) {
  return ArchitectureDigest(ParameterShapes(state));
}

ModelArchitecture DescribeArchitecture(const ModelState& state) {
  ModelArchitecture a;
  a.parameters = ParameterShapes(state);
  a.digest = ArchitectureDigest(a.parameters);
  return a;
}

void CheckSameArchitecture(const ModelArchitecture& ours, const std::string& ours_what,
                           const ModelArchitecture& theirs, const std::string& theirs_what) {
  const std::string prefix =
      "model architectures differ between " + ours_what + " and " + theirs_what;
  for (const auto* side : {&ours, &theirs}) {
    if (side->parameters.empty() && side == &theirs) continue;  // digest only
    if (ArchitectureDigest(side->parameters) != side->digest) {
      throw FormatError("architecture description of " +
                        (side == &ours ? ours_what : theirs_what) + " is inconsistent: digest " +
                        side->digest + " is not the digest of its " +
                        std::to_string(side->parameters.size()) + " parameter names and shapes");
    }
  }
  if (theirs.parameters.empty()) {
    if (ours.digest != theirs.digest) {
      throw ConfigError(prefix + ": architecture digest " + ours.digest + " vs " + theirs.digest +
                        " (" + std::to_string(ours.parameters.size()) + " parameters at " +
                        ours_what + "; " + theirs_what + " sent its digest only)");
    }
    return;
  }
  const size_t n = std::max(ours.parameters.size(), theirs.parameters.size());
  std::string listed;
  size_t differing = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i < ours.parameters.size() && i < theirs.parameters.size() &&
        SameEntry(ours.parameters[i], theirs.parameters[i])) {
      continue;
    }
    if (++differing <= kMaxListed) {
      listed += "; #" + std::to_string(i) + ": " + Describe(ours.parameters, i) + " at " +
                ours_what + " vs " + Describe(theirs.parameters, i) + " at " + theirs_what;
    }
  }
  if (differing == 0) return;
  throw ConfigError(prefix + " (" + std::to_string(ours.parameters.size()) + " vs " +
                    std::to_string(theirs.parameters.size()) + " parameters, " +
                    std::to_string(differing) + " differing position" +
                    (differing == 1 ? "" : "s") +
                    (differing > kMaxListed ? ", the first " + std::to_string(kMaxListed) +
                                                  " listed"
                                            : std::string()) +
                    ")" + listed + "; every party must build the same model (the same zoo "
                    "name, in_channels, num_classes and image_size, or the same TorchScript "
                    "file)");
}

}  // namespace fedmed
