// Models in and out of fedmed, for PyTorch users (LibTorch inside, not in this header).
//
// Out — a trained model (e.g. the coordinator's final global model) leaves fedmed in two forms:
//
// 1. TorchScript, with ExportTorchScript below: the network and its weights in one file that
//    Python runs without any fedmed or model code:
//
//   model = torch.jit.load("global.torchscript.pt")
//   x = (torch.as_tensor(image, dtype=torch.float32) / 255 - 0.5) / 0.5  # image: (C, S, S) uint8
//   label = model(x.unsqueeze(0)).argmax(1).item()
//
//    The input is normalised as fedmed trains (ImageSet::CopyNormalizedChw: x/255 in [0, 1]
//    mapped to [-1, 1]), shape (B, C, S, S) float32; the output is (B, num_classes) logits.
// 2. A state dict, with SaveCheckpoint (checkpoint.h): {parameter name: float32 tensor}, which
//    torch.load reads and model.load_state_dict loads into the equivalent PyTorch module (zoo.h
//    gives the zoo's module code; for a TorchScript model, the user's own module).
//
// In — a pretrained model starts a federation (fine-tuning): LoadInitialWeights below reads a
// state dict (torch.save(dict(model.state_dict()), path)) or a TorchScript file as the initial
// global model, and TrainSettings::frozen_layers (local_training.h, frozen_layers.h) keeps
// chosen layers fixed while the others train.
//
// docs/MODELS.md is the user's guide to all of this.
#ifndef FEDMED_COMMON_MODEL_MODEL_IO_H_
#define FEDMED_COMMON_MODEL_MODEL_IO_H_

#include <string>

#include "common/model/model_spec.h"
#include "common/model/model_state.h"

namespace fedmed {

// Writes the model `spec` with parameters `state` as a TorchScript file at `path` that Python's
// torch.jit.load (torch >= 1.13) and LibTorch's torch::jit::load run (see above).
// - Zoo networks ("cnn", "resnet18"): a TorchScript module built in C++ with the zoo's parameter
//   names (the PyTorch modules of zoo.h: conv1.weight, layer1.0.gn2.bias, ...), whose forward
//   computes zoo.h's forward in eval mode (dropout is the identity, whether the loaded module is
//   put in train or eval mode: the file is for inference; fine-tune in Python with zoo.h's
//   module code and the state dict instead). Submodules that have a forward of their own: the
//   ResNet-18 stages (layer1, ...) and their blocks (layer1.0, ...).
// - TorchScript models: the original file spec.torchscript_path, loaded again, with `state`
//   copied into its parameters; its code is unchanged.
// The module is saved in eval mode. The file is replaced with WriteFileAtomically
// (common/util/file_io.h), so `path` never holds a partly written model.
// Throws ConfigError as ValidateModelSpec / LoadScriptedClassifier (torchscript_model.h) for a bad
// spec or unusable script; FormatError if `state` does not have the model's layout (naming
// `path` and the first differing parameter); DataError naming the file if it cannot be written
// or renamed.
void ExportTorchScript(const ModelSpec& spec, const ModelState& state, const std::string& path);

// Reads the initial (pretrained) weights of a model from `path`, either
// - a state-dict checkpoint: SaveCheckpoint's format, or torch.save(dict(model.state_dict()))
//   from Python (checkpoint.h), or
// - a TorchScript file (torch.jit.save): its named_parameters(), in the order and under the
//   names a ScriptedClassifier exposes them (torchscript_model.h),
// told apart by their contents (a TorchScript archive holds constants.pkl), not by name, and
// checks that the weights have `expected_layout` (the model's state, e.g.
// InitialModelState(spec, 0); its values are not used). Returns them in that layout.
// Throws DataError naming the file if it cannot be read; FormatError naming the file (and the
// entry) if it is neither format (as LoadCheckpoint); ConfigError naming the file if it is a
// TorchScript file with buffers, non-float32 or tied parameters (as ScriptedClassifier);
// FormatError naming the file and the first parameter that differs from `expected_layout`
// (position, name, shape or count, as CheckSameLayout), or a parameter with a NaN or infinite
// value.
ModelState LoadInitialWeights(const std::string& path, const ModelState& expected_layout);

}  // namespace fedmed

#endif  // FEDMED_COMMON_MODEL_MODEL_IO_H_
