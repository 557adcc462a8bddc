// libFuzzer harness: a DICOM file as a PACS export gives it, read by ReadDicomImage (DCMTK
// parsing, pixel data decoding, modality LUT, window, MONOCHROME1) and preprocessed to the
// model's input (28 px, one channel).
#include <cstddef>
#include <cstdint>

#include "common/data/hospital/dicom.h"
#include "common/data/preprocess.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fedmed::fuzz::WriteScratchFile(
      "image.dcm", std::string_view(reinterpret_cast<const char*>(data), size));
  fedmed::fuzz::ExpectOnlyFedmedErrors("fuzz_dicom", [&] {
    fedmed::DicomOptions options;
    options.load.max_image_pixels = 4096 * 4096;  // keep the fuzzer's images cheap
    const fedmed::DecodedImage image = fedmed::ReadDicomImage(path, options);
    fedmed::PreprocessSpec spec;
    spec.image_size = 28;
    spec.channels = 1;
    fedmed::ApplyPreprocess(image, spec);
  });
  return 0;
}
