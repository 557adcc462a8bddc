// A labelled set of 8-bit images held in memory (one split of a MedMNIST file, or one site's
// share of it).
#ifndef FEDMED_COMMON_DATA_IMAGE_SET_H_
#define FEDMED_COMMON_DATA_IMAGE_SET_H_

#include <array>
#include <cstdint>
#include <vector>

namespace fedmed {

// The most classes a data set may have: class indices lie in [0, kMaxClasses). A label above it
// in a file (an .npz label array, an integer manifest label) is refused, so that a hostile or
// corrupt file cannot size per-class tables (histograms, class-name lists) by a huge number.
inline constexpr int64_t kMaxClasses = 65536;

// The default bound on one image's pixels in image files (PNG, JPEG, DICOM): 16384 x 16384
// (268,435,456 pixels; 768 MiB decoded as RGB). The [data] key max_image_pixels
// (SiteDataConfig::max_image_pixels) sets LoadOptions::max_image_pixels
// (common/data/hospital/image_loading.h).
inline constexpr int64_t kDefaultMaxImagePixels = int64_t{16384} * 16384;

struct ImageSet {
  int64_t height = 0, width = 0, channels = 0;  // channels: 1 (grayscale) or 3 (RGB)
  // size() x height x width x channels uint8 values, channels-last (NHWC) as MedMNIST stores them.
  std::vector<uint8_t> pixels;
  // size() class indices, each in [0, num_classes).
  std::vector<int64_t> labels;
  int64_t num_classes = 0;
  // Per-channel normalisation applied by CopyNormalizedChw: channel c becomes
  // (x / 255 - mean[c]) / std[c]. Only the first `channels` entries are used. The defaults (0.5,
  // 0.5) are the MedMNIST reference transform (into [-1, 1]); a site config's preprocessing
  // (common/data/preprocess.h, normalization "mean_std") sets others, e.g. ImageNet's
  // (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225). std[c] must be > 0.
  std::array<float, 3> mean{0.5f, 0.5f, 0.5f};
  std::array<float, 3> std{0.5f, 0.5f, 0.5f};

  // Number of images (= labels.size()).
  int64_t size() const { return static_cast<int64_t>(labels.size()); }

  // Values per image: height * width * channels.
  int64_t image_numel() const { return height * width * channels; }

  // A copy holding images indices[0], indices[1], ... in that order (repeats allowed); same
  // geometry and num_classes. Throws DataError naming the first index outside [0, size()).
  ImageSet Subset(const std::vector<int64_t>& indices) const;

  // Writes image i as float32 in channels-first layout (channels, height, width): channel c of
  // pixel (y, x) goes to out[c * height * width + y * width + x], normalised as
  // (x / 255 - mean[c]) / std[c] in float32 (torchvision ToTensor + Normalize(mean, std)); with
  // the default mean = std = 0.5 that is the MedMNIST reference transform, into [-1, 1].
  // `out` must hold image_numel() floats.
  // Throws DataError if i is outside [0, size()).
  void CopyNormalizedChw(int64_t i, float* out) const;

  // Number of images of each class: num_classes counts. Throws DataError if a label lies outside
  // [0, num_classes).
  std::vector<int64_t> ClassHistogram() const;
};

}  // namespace fedmed

#endif  // FEDMED_COMMON_DATA_IMAGE_SET_H_
