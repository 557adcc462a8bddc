// libFuzzer harness: weights a site or coordinator loads from a file that may come from
// elsewhere ([model] initial_weights): LoadInitialWeights (common/model/model_io.h), which tells a
// torch.save state-dict checkpoint (LoadCheckpoint) from a TorchScript file by content, reads it
// with LibTorch and checks it against the model's layout. LibTorch itself is Debian's build
// (not instrumented); our code around it is.
#include <cstddef>
#include <cstdint>

#include "common/model/model_io.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fedmed::ModelState layout = [] {
    fedmed::ModelState s;
    s.tensors.push_back({"fc.weight", {2, 3}, std::vector<float>(6, 0.0f)});
    s.tensors.push_back({"fc.bias", {2}, std::vector<float>(2, 0.0f)});
    return s;
  }();
  const std::string path = fedmed::fuzz::WriteScratchFile(
      "weights.pt", std::string_view(reinterpret_cast<const char*>(data), size));
  fedmed::fuzz::ExpectOnlyFedmedErrors("fuzz_checkpoint",
                                       [&] { fedmed::LoadInitialWeights(path, layout); });
  return 0;
}
