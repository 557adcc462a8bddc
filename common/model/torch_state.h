// Bridges between fedmed's LibTorch-free types and LibTorch: a module's parameters <-> ModelState,
// and an ImageSet -> input tensors. Include only from .cc files that need LibTorch.
#ifndef FEDMED_COMMON_MODEL_TORCH_STATE_H_
#define FEDMED_COMMON_MODEL_TORCH_STATE_H_

#include <torch/torch.h>

#include <string>

#include "common/data/image_set.h"
#include "common/model/model_spec.h"
#include "common/model/model_state.h"

namespace fedmed {

// A copy of `tensor` (float32, on the CPU or not, any strides) as a NamedTensor called `name`.
// The storage's size is checked to cover every element the tensor's sizes, strides and offset
// reach before any is read (a second line of defence behind CheckTorchArchive, torch_archive.h,
// for tensors from files). Throws FormatError naming `what` and the tensor if it is not float32
// or reaches past its storage.
NamedTensor CopyTensor(const std::string& name, const torch::Tensor& tensor,
                       const std::string& what);

// A copy of the module's state: every parameter in named_parameters() order, then every buffer
// in named_buffers() order (the zoo's networks have none), under their PyTorch names (e.g.
// "layer1.0.conv1.weight"), as float32. Throws FormatError naming the tensor if one is not
// float32.
ModelState ExportState(torch::nn::Module& module);

// Copies `state` into the module's parameters and buffers, without changing their identity (an
// optimizer holding them sees the new values). `state` must have the layout ExportState(module)
// has: the same names in the same order with the same shapes. Throws FormatError naming the first
// parameter that differs, and changes nothing in that case.
void ImportState(torch::nn::Module& module, const ModelState& state);

// Checks that `data` can be fed to the model `spec`: channels == spec.in_channels,
// height == width == spec.image_size, num_classes == spec.num_classes and every label in
// [0, num_classes). Throws DataError naming `what` (e.g. "training data of site-1") and the
// mismatch.
void CheckDataFitsModel(const ImageSet& data, const ModelSpec& spec, const std::string& what);

// Images [begin, begin + count) of `data` as a (count, channels, height, width) float32 tensor,
// normalised as ImageSet::CopyNormalizedChw does (to [-1, 1]). Throws DataError if the range
// is not inside [0, data.size()).
torch::Tensor ImagesToTensor(const ImageSet& data, int64_t begin, int64_t count);

// Labels [begin, begin + count) of `data` as a (count,) int64 tensor. Throws as ImagesToTensor.
torch::Tensor LabelsToTensor(const ImageSet& data, int64_t begin, int64_t count);

}  // namespace fedmed

#endif  // FEDMED_COMMON_MODEL_TORCH_STATE_H_
