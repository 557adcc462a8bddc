// Which network a federation trains: the model zoo's selector, without LibTorch.
//
// The coordinator and the site agent carry a ModelSpec in their configs and on the wire; only the
// code that builds a network (common/model/zoo.h) needs LibTorch. The networks themselves are
// described in zoo.h; a network brought from Python as a TorchScript file ("torchscript") in
// common/model/torchscript_model.h and docs/MODELS.md.
#ifndef FEDMED_COMMON_MODEL_MODEL_SPEC_H_
#define FEDMED_COMMON_MODEL_MODEL_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

namespace fedmed {

struct ModelSpec {
  std::string name = "cnn";  // one of ModelNames(), or kTorchScriptModelName
  int64_t in_channels = 1;   // image channels: 1 (grayscale) or 3 (RGB)
  int64_t num_classes = 2;   // output logits, >= 2
  int64_t image_size = 28;   // square input images of image_size x image_size pixels
  // With name == kTorchScriptModelName: the TorchScript file (torch.jit.script or torch.jit.trace
  // output, saved with torch.jit.save) that defines the network. A path local to each party (the
  // coordinator and every site hold their own copy of the file), never sent on the wire: parties
  // compare the architecture they built instead (common/model/architecture.h). Empty otherwise.
  std::string torchscript_path = "";
};

// The ModelSpec::name of a network brought as a TorchScript file: "torchscript".
inline constexpr char kTorchScriptModelName[] = "torchscript";

// The zoo's names, in a fixed order: {"cnn", "resnet18"}. MakeModel (zoo.h) also accepts
// kTorchScriptModelName, which is not a zoo network.
std::vector<std::string> ModelNames();

// Checks `spec` without building the network (and without opening any file). Throws ConfigError,
// naming `what` (e.g. the config file and table) and the field, when: name is neither one of
// ModelNames() nor kTorchScriptModelName (the message lists them); name is
// kTorchScriptModelName and torchscript_path is empty; torchscript_path is set but name is not
// kTorchScriptModelName; in_channels is not 1 or 3; num_classes < 2; image_size < 8 or > 256
// (MedMNIST sizes are 28, 64, 128 and 224). For a TorchScript model in_channels, num_classes and
// image_size describe the file's network: MakeModel checks its forward against them.
void ValidateModelSpec(const ModelSpec& spec, const std::string& what = "model");

}  // namespace fedmed

#endif  // FEDMED_COMMON_MODEL_MODEL_SPEC_H_
