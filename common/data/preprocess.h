// Preprocessing of decoded images into the model's input format: the part every site of a
// federation must do alike (the coordinator sends the spec's canonical string with each task, see
// PreprocessSpec::Canonical, and a site compares it with its own). No LibTorch here.
//
// One image goes through, in this order:
//   1. channel conversion (channels 1 or 3): gray -> RGB copies the gray value into R, G and B;
//      RGB -> gray is ITU-R BT.601 luma computed exactly as Pillow's Image.convert("L") does,
//      L = (19595 R + 38470 G + 7471 B + 32768) >> 16 (0.299, 0.587, 0.114 in 16-bit fixed
//      point, rounded), which is what torchvision's Grayscale does on PIL images.
//   2. resize to image_size x image_size exactly as Pillow 9.4's Image.resize((S, S),
//      Image.BILINEAR) does for "L" and "RGB" images (and so torchvision's Resize on PIL images),
//      reimplemented from Pillow's Resample.c: a triangle filter whose support widens with the
//      downscaling factor (antialiased; for upscaling it is bilinear interpolation with pixel
//      centres at i + 0.5, PyTorch's align_corners=False), weights renormalised over the pixels
//      inside the image, 22-bit fixed-point weights, a horizontal pass rounded to uint8 and then
//      a vertical one. (stb_image_resize from libstb-dev is not used: its triangle filter aborts
//      on an assertion for some downscaling ratios, stb issue #1449.) An image already at the
//      size is copied unchanged. Non-square images are stretched to the square (no
//      aspect-preserving crop).
//   3. histogram equalisation (equalize = true), per image and per channel, with Pillow's
//      ImageOps.equalize algorithm (Pillow 9.4, no mask), not OpenCV's equalizeHist: with h the
//      256-bin histogram and `last` the count of the highest occupied bin,
//      step = (sum(h) - last) // 255; if step == 0 (at most one occupied level, or too few
//      pixels) the image is unchanged; else lut[i] = min(255, (step // 2 + sum_{j<i} h[j]) // step).
//   4. normalisation is not applied to pixels: images stay uint8 and the spec's mean/std go into
//      ImageSet::mean/std, which CopyNormalizedChw applies as (x / 255 - mean[c]) / std[c].
#ifndef FEDMED_COMMON_DATA_PREPROCESS_H_
#define FEDMED_COMMON_DATA_PREPROCESS_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/data/image_set.h"

namespace fedmed {

// One decoded 8-bit image: height x width x channels uint8 values, channels-last (HWC).
// channels is 1 (gray) or 3 (RGB) after decoding (alpha is dropped by the decoders).
struct DecodedImage {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;
};

struct PreprocessSpec {
  // Output images are image_size x image_size pixels (bilinear resize). 0 = keep the decoded size
  // (then every image of a set must have the same size, that of the first good image). 0 or
  // 8..1024.
  int64_t image_size = 0;
  // Output channels: 1 (gray) or 3 (RGB), converting as above; 0 = keep the decoded channels
  // (then every image of a set must have the channels of the first good image).
  int64_t channels = 0;
  // "medmnist": (x/255 - 0.5)/0.5 (mean and std must stay 0.5); "mean_std": (x/255 - mean[c]) /
  // std[c] with the values below (a gray image uses mean[0], std[0]).
  std::string normalization = "medmnist";
  std::array<double, 3> mean{0.5, 0.5, 0.5};
  std::array<double, 3> std{0.5, 0.5, 0.5};
  // Histogram equalisation per image (Pillow's ImageOps.equalize, see above).
  bool equalize = false;

  // The canonical text form, the same for equal specs and different for different ones:
  //   "size=28;channels=1;norm=medmnist;equalize=0"
  //   "size=224;channels=3;norm=mean_std;mean=0.485,0.456,0.406;std=0.229,0.224,0.225;equalize=1"
  // Numbers are the shortest decimal text that reads back as the same double; mean and std
  // appear only with norm=mean_std, always three values each. ParsePreprocessSpec inverts it.
  std::string Canonical() const;
};

bool operator==(const PreprocessSpec& a, const PreprocessSpec& b);
inline bool operator!=(const PreprocessSpec& a, const PreprocessSpec& b) { return !(a == b); }

// Throws ConfigError "<what> <field>: expected ..., got ..." for the first field out of range:
// image_size not 0 or in 8..1024; channels not 0, 1 or 3; normalization not "medmnist" or
// "mean_std"; with "medmnist", mean or std other than 0.5; with "mean_std", a mean that is not
// finite or a std that is not finite and > 0. `what` names the source (e.g. "site.toml: [data]").
void ValidatePreprocessSpec(const PreprocessSpec& spec, const std::string& what = "preprocessing");

// Parses a Canonical() string (as sent by the coordinator). Throws FormatError naming the text
// and the first part that is malformed, missing or unknown; the result is validated
// (ConfigError as ValidatePreprocessSpec).
PreprocessSpec ParsePreprocessSpec(const std::string& canonical);

// "" when `local` and `remote` are equal; otherwise one clause per differing field, e.g.
// "image_size: 64 here, 28 at the coordinator; equalize: 1 here, 0 at the coordinator".
// `remote_name` names the other party ("the coordinator"); `local_name`, when not empty, names
// this one instead of "here" (a message both parties log: "image_size: 64 at site-2, 28 at the
// coordinator"). Never throws.
std::string DescribePreprocessDifference(const PreprocessSpec& local, const PreprocessSpec& remote,
                                         const std::string& remote_name = "the coordinator",
                                         const std::string& local_name = "");

// Applies steps 1-3 above to `image` (uint8 HWC; 1 or 3 channels; any size >= 1x1). Returns the
// output image: image_size x image_size (or the input size if 0), `channels` channels (or the
// input's if 0). `spec` must be valid. Throws DataError if the image is empty or its channel
// count is not 1 or 3, or pixels.size() != height * width * channels.
DecodedImage ApplyPreprocess(const DecodedImage& image, const PreprocessSpec& spec);

// The float mean/std that ImageSet::mean/std get for `spec` (0.5 for "medmnist"; for a 1-channel
// set only index 0 matters).
void SetNormalization(const PreprocessSpec& spec, ImageSet* set);

// Applies ApplyPreprocess to every image of `set` and SetNormalization, in place; a no-op on the
// pixels when the spec keeps size and channels and does not equalise (so a MedMNIST set with the
// default spec is unchanged bit for bit). Used for MedMNIST files at sites that declare a
// preprocessing spec. Throws as ApplyPreprocess.
void PreprocessImageSet(const PreprocessSpec& spec, ImageSet* set);

// Maps a 16-bit sample to 8 bits: round(v * 255 / 65535) = (v * 255 + 32767) / 65535 (integer
// division). The map used for 16-bit PNGs.
inline uint8_t SixteenToEightBit(uint16_t v) {
  return static_cast<uint8_t>((static_cast<uint32_t>(v) * 255u + 32767u) / 65535u);
}

}  // namespace fedmed

#endif  // FEDMED_COMMON_DATA_PREPROCESS_H_
