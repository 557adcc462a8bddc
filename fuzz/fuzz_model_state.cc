// libFuzzer harness: the model-state codec (DecodeModelState), which every model and plain
// update crossing the network goes through; a decoded state is encoded again and must give the
// same bytes (the format is canonical).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "common/model/model_state.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  fedmed::fuzz::ExpectOnlyFedmedErrors("fuzz_model_state", [&] {
    const fedmed::ModelState state = fedmed::DecodeModelState(bytes, "fuzz input");
    if (fedmed::EncodeModelState(state) != bytes) {
      std::fprintf(stderr, "fuzz_model_state: decode then encode changed the bytes\n");
      std::abort();
    }
    fedmed::L2Norm(state);
  });
  return 0;
}
