// libFuzzer harness: a PNG or JPEG file of an image folder or CSV manifest, decoded by
// ReadImageFile under the name a hospital export gives it (the first input byte picks .png,
// .jpg or .jpeg; the format must match the name), then preprocessed to the model's input
// (resize to 28 px, one channel) as LoadImageItems does.
#include <cstddef>
#include <cstdint>

#include "common/data/hospital/image_folder.h"
#include "common/data/preprocess.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fedmed::fuzz::InputReader in(data, size);
  static const char* const kNames[] = {"image.png", "image.jpg", "image.jpeg", "IMAGE.PNG"};
  const char* name = kNames[in.Byte() % 4];
  const std::string path = fedmed::fuzz::WriteScratchFile(name, in.Rest());
  fedmed::fuzz::ExpectOnlyFedmedErrors("fuzz_image", [&] {
    // A small bound, so that the fuzzer's images stay cheap; the default is 16384 x 16384.
    const fedmed::DecodedImage image = fedmed::ReadImageFile(path, 4096 * 4096);
    fedmed::PreprocessSpec spec;
    spec.image_size = 28;
    spec.channels = 1;
    fedmed::ApplyPreprocess(image, spec);
  });
  return 0;
}
