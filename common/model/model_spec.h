// Which network a federation trains: the model zoo's selector, without LibTorch.
//
// The coordinator and the site agent carry a ModelSpec in their configs and on the wire; only the
// code that builds a network (common/model/zoo.h) needs LibTorch. The networks themselves are
// described in zoo.h.
#ifndef FEDMED_COMMON_MODEL_MODEL_SPEC_H_
#define FEDMED_COMMON_MODEL_MODEL_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

namespace fedmed {

struct ModelSpec {
  std::string name = "cnn";  // one of ModelNames()
  int64_t in_channels = 1;   // image channels: 1 (grayscale) or 3 (RGB)
  int64_t num_classes = 2;   // output logits, >= 2
  int64_t image_size = 28;   // square input images of image_size x image_size pixels
};

// The names MakeModel accepts, in a fixed order: {"cnn", "resnet18"}.
std::vector<std::string> ModelNames();

// Checks `spec` without building the network. Throws ConfigError, naming `what` (e.g. the config
// file and table) and the field, when: name is not one of ModelNames() (the message lists them);
// in_channels is not 1 or 3; num_classes < 2; image_size < 8 or > 256 (MedMNIST
// sizes are 28, 64, 128 and 224).
void ValidateModelSpec(const ModelSpec& spec, const std::string& what = "model");

}  // namespace fedmed

#endif  // FEDMED_COMMON_MODEL_MODEL_SPEC_H_
