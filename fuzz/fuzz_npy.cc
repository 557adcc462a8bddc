// libFuzzer harness: a .npy array (numpy.lib.format) as ParseNpy reads it from an .npz entry,
// then, for an integer array, its conversion to labels (NpyToInt64).
#include <cstddef>
#include <cstdint>

#include "common/data/npy.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  fedmed::fuzz::ExpectOnlyFedmedErrors("fuzz_npy", [&] {
    const fedmed::NpyArray array = fedmed::ParseNpy(bytes, "fuzz.npy");
    if (array.dtype != "<f4" && array.dtype != "<f8" && array.dtype != "|b1") {
      fedmed::NpyToInt64(array, "fuzz.npy");
    }
  });
  return 0;
}
