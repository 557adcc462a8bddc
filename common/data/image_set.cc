#include "common/data/image_set.h"

#include <algorithm>
#include <string>

#include "common/util/error.h"

namespace fedmed {

namespace {

void CheckIndex(int64_t i, int64_t size, const char* operation) {
  if (i < 0 || i >= size) {
    throw DataError(std::string(operation) + ": image index " + std::to_string(i) +
                    " is outside [0, " + std::to_string(size) + ")");
  }
}

}  // namespace

ImageSet ImageSet::Subset(const std::vector<int64_t>& indices) const {
  ImageSet out;
  out.height = height;
  out.width = width;
  out.channels = channels;
  out.num_classes = num_classes;
  out.mean = mean;
  out.std = std;
  const int64_t numel = image_numel();
  out.pixels.resize(indices.size() * numel);
  out.labels.reserve(indices.size());
  for (size_t k = 0; k < indices.size(); ++k) {
    const int64_t i = indices[k];
    CheckIndex(i, size(), "ImageSet::Subset");
    std::copy_n(pixels.begin() + i * numel, numel, out.pixels.begin() + k * numel);
    out.labels.push_back(labels[i]);
  }
  return out;
}

void ImageSet::CopyNormalizedChw(int64_t i, float* out) const {
  CheckIndex(i, size(), "ImageSet::CopyNormalizedChw");
  const int64_t plane = height * width;
  const uint8_t* src = pixels.data() + i * image_numel();
  for (int64_t p = 0; p < plane; ++p) {
    for (int64_t c = 0; c < channels; ++c) {
      // Same float operations as ToTensor (x / 255) followed by Normalize(mean, std).
      out[c * plane + p] = (static_cast<float>(src[p * channels + c]) / 255.0f - mean[c]) / std[c];
    }
  }
}

std::vector<int64_t> ImageSet::ClassHistogram() const {
  std::vector<int64_t> counts(num_classes, 0);
  for (int64_t label : labels) {
    if (label < 0 || label >= num_classes) {
      throw DataError("ImageSet::ClassHistogram: label " + std::to_string(label) +
                      " is outside [0, " + std::to_string(num_classes) + ")");
    }
    ++counts[label];
  }
  return counts;
}

}  // namespace fedmed
