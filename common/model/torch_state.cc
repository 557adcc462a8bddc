#include "common/model/torch_state.h"

#include <cstring>
#include <utility>
#include <vector>

#include "common/util/error.h"

namespace fedmed {

namespace {

// The module's parameters, then its buffers, with their names.
std::vector<std::pair<std::string, torch::Tensor>> StateTensors(torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) {
    out.emplace_back(p.key(), p.value());
  }
  for (const auto& b : module.named_buffers(/*recurse=*/true)) {
    out.emplace_back(b.key(), b.value());
  }
  return out;
}

std::string SizesString(c10::IntArrayRef sizes) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i > 0 ? ", " : "") + std::to_string(sizes[i]);
  return s + "]";
}

void CheckRange(const ImageSet& data, int64_t begin, int64_t count) {
  if (begin < 0 || count < 0 || begin + count > data.size()) {
    throw DataError("images [" + std::to_string(begin) + ", " + std::to_string(begin + count) +
                    ") requested from an image set of " + std::to_string(data.size()));
  }
}

}  // namespace

NamedTensor CopyTensor(const std::string& name, const torch::Tensor& tensor,
                       const std::string& what) {
  if (tensor.scalar_type() != torch::kFloat) {
    throw FormatError(what + ": tensor '" + name + "' is " +
                      std::string(c10::toString(tensor.scalar_type())) + ", expected float32");
  }
  // The furthest element the view reaches, checked against its storage before reading.
  if (tensor.numel() > 0) {
    int64_t last = tensor.storage_offset();
    bool negative = last < 0;
    for (int64_t d = 0; d < tensor.dim(); ++d) {
      negative = negative || tensor.stride(d) < 0;
      last += (tensor.size(d) - 1) * tensor.stride(d);
    }
    if (negative || static_cast<uint64_t>(last + 1) * sizeof(float) > tensor.storage().nbytes()) {
      throw FormatError(what + ": tensor '" + name + "' reaches past its storage of " +
                        std::to_string(tensor.storage().nbytes()) + " bytes");
    }
  }
  const torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
  NamedTensor out;
  out.name = name;
  out.shape.assign(t.sizes().begin(), t.sizes().end());
  out.values.resize(static_cast<size_t>(t.numel()));
  if (!out.values.empty()) {
    std::memcpy(out.values.data(), t.data_ptr<float>(), out.values.size() * sizeof(float));
  }
  return out;
}

ModelState ExportState(torch::nn::Module& module) {
  ModelState state;
  for (const auto& [name, tensor] : StateTensors(module)) {
    state.tensors.push_back(CopyTensor(name, tensor, "cannot export model state"));
  }
  return state;
}

void ImportState(torch::nn::Module& module, const ModelState& state) {
  const auto targets = StateTensors(module);
  for (size_t i = 0; i < std::min(targets.size(), state.tensors.size()); ++i) {
    const auto& [name, tensor] = targets[i];
    const NamedTensor& source = state.tensors[i];
    if (source.name != name) {
      throw FormatError("cannot import model state: tensor #" + std::to_string(i) + " is '" +
                        source.name + "', the model's parameter is '" + name + "'");
    }
    if (tensor.sizes() != c10::IntArrayRef(source.shape) ||
        static_cast<size_t>(tensor.numel()) != source.values.size()) {
      throw FormatError("cannot import model state: tensor '" + name + "' has shape " +
                        SizesString(source.shape) + " (" + std::to_string(source.values.size()) +
                        " values), the model's parameter has shape " +
                        SizesString(tensor.sizes()));
    }
  }
  if (targets.size() != state.tensors.size()) {
    const std::string first = targets.size() > state.tensors.size()
                                  ? "the first missing one is '" +
                                        targets[state.tensors.size()].first + "'"
                                  : "the first extra one is '" +
                                        state.tensors[targets.size()].name + "'";
    throw FormatError("cannot import model state: it has " +
                      std::to_string(state.tensors.size()) + " tensors, the model has " +
                      std::to_string(targets.size()) + "; " + first);
  }
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < targets.size(); ++i) {
    const NamedTensor& source = state.tensors[i];
    // from_blob does not copy; copy_ only reads the (const) values.
    targets[i].second.copy_(torch::from_blob(const_cast<float*>(source.values.data()),
                                             source.shape, torch::kFloat));
  }
}

void CheckDataFitsModel(const ImageSet& data, const ModelSpec& spec, const std::string& what) {
  if (data.channels != spec.in_channels || data.height != spec.image_size ||
      data.width != spec.image_size) {
    throw DataError(what + ": images are " + std::to_string(data.channels) + "x" +
                    std::to_string(data.height) + "x" + std::to_string(data.width) +
                    " (channels x height x width), model \"" + spec.name + "\" expects " +
                    std::to_string(spec.in_channels) + "x" + std::to_string(spec.image_size) +
                    "x" + std::to_string(spec.image_size));
  }
  if (data.num_classes != spec.num_classes) {
    throw DataError(what + ": has " + std::to_string(data.num_classes) + " classes, model \"" +
                    spec.name + "\" has " + std::to_string(spec.num_classes));
  }
  for (int64_t i = 0; i < data.size(); ++i) {
    if (data.labels[i] < 0 || data.labels[i] >= spec.num_classes) {
      throw DataError(what + ": label of image " + std::to_string(i) + " is " +
                      std::to_string(data.labels[i]) + ", expected 0 to " +
                      std::to_string(spec.num_classes - 1));
    }
  }
}

torch::Tensor ImagesToTensor(const ImageSet& data, int64_t begin, int64_t count) {
  CheckRange(data, begin, count);
  torch::Tensor images = torch::empty({count, data.channels, data.height, data.width});
  float* out = images.data_ptr<float>();
  for (int64_t i = 0; i < count; ++i) {
    data.CopyNormalizedChw(begin + i, out + i * data.image_numel());
  }
  return images;
}

torch::Tensor LabelsToTensor(const ImageSet& data, int64_t begin, int64_t count) {
  CheckRange(data, begin, count);
  return torch::from_blob(const_cast<int64_t*>(data.labels.data()) + begin, {count}, torch::kLong)
      .clone();
}

}  // namespace fedmed
