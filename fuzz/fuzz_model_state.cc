// libFuzzer harness: the model-state codec (DecodeModelState), which every model and plain
// update crossing the network goes through, in each update encoding (float32, float16, int8:
// common/model/quantization.h); a decoded float32 or float16 state is encoded again and must
// give the same bytes (those formats are canonical; int8's stochastic rounding is not).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "common/model/model_state.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  using fedmed::UpdateEncoding;
  for (const UpdateEncoding encoding :
       {UpdateEncoding::kFloat32, UpdateEncoding::kFloat16, UpdateEncoding::kInt8}) {
    fedmed::fuzz::ExpectOnlyFedmedErrors("fuzz_model_state", [&] {
      const fedmed::ModelState state = fedmed::DecodeModelState(bytes, "fuzz input", encoding);
      if (encoding != UpdateEncoding::kInt8 && fedmed::EncodeModelState(state, encoding) != bytes) {
        std::fprintf(stderr, "fuzz_model_state: decode then encode (%s) changed the bytes\n",
                     fedmed::UpdateEncodingName(encoding));
        std::abort();
      }
      fedmed::L2Norm(state);
    });
  }
  return 0;
}
