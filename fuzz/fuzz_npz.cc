// libFuzzer harness: a .npz archive (zip of .npy arrays) as a site reads a MedMNIST file: every
// array through NpzFile::Read, then the whole file through LoadMedMnist (labels, class count,
// image shapes).
#include <cstddef>
#include <cstdint>

#include "common/data/medmnist.h"
#include "common/data/npz.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fedmed::fuzz::WriteScratchFile(
      "input.npz", std::string_view(reinterpret_cast<const char*>(data), size));
  fedmed::fuzz::ExpectOnlyFedmedErrors("fuzz_npz", [&] {
    const fedmed::NpzFile npz = fedmed::NpzFile::Open(path);
    for (const std::string& name : npz.Names()) {
      fedmed::fuzz::ExpectOnlyFedmedErrors("fuzz_npz", [&] { npz.Read(name); });
    }
  });
  fedmed::fuzz::ExpectOnlyFedmedErrors("fuzz_npz", [&] { fedmed::LoadMedMnist(path); });
  return 0;
}
