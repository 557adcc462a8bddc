// Which random augmentations a site applies to its training batches (never to evaluation), without
// LibTorch: the site config and TrainSettings carry this; common/data/augmentation.h applies it.
#ifndef FEDMED_COMMON_DATA_AUGMENTATION_SPEC_H_
#define FEDMED_COMMON_DATA_AUGMENTATION_SPEC_H_

#include <string>

namespace fedmed {

// Each field's neutral value disables that augmentation; the torchvision transform it follows is
// named (torchvision 0.14 semantics, see augmentation.h for the exact sampling).
struct AugmentationSpec {
  // RandomHorizontalFlip(p): probability of mirroring an image left-right, in [0, 1].
  double hflip_probability = 0;
  // RandomRotation(degrees): rotation angle drawn uniformly from [-degrees, degrees], in
  // [0, 180] degrees; corners outside the image are filled with black (0 before normalisation).
  double rotation_degrees = 0;
  // RandomResizedCrop(size, scale=(crop_scale_min, 1), ratio=(3/4, 4/3)): the fraction of the
  // image area a crop keeps is drawn from [crop_scale_min, 1], then the crop is resized back to
  // the image size (bilinear). In (0, 1]; 1 disables it.
  double crop_scale_min = 1;
  // ColorJitter(brightness, contrast): factors drawn uniformly from [max(0, 1 - b), 1 + b] and
  // [max(0, 1 - c), 1 + c]. Finite, >= 0.
  double brightness = 0;
  double contrast = 0;

  // True when any augmentation is switched on.
  bool enabled() const {
    return hflip_probability > 0 || rotation_degrees > 0 || crop_scale_min < 1 || brightness > 0 ||
           contrast > 0;
  }
};

bool operator==(const AugmentationSpec& a, const AugmentationSpec& b);
inline bool operator!=(const AugmentationSpec& a, const AugmentationSpec& b) { return !(a == b); }

// Throws ConfigError "<prefix>hflip_probability: expected a probability in [0, 1], got 1.5" (and
// alike for each field's range above; NaN and infinities are refused). `prefix` is prepended to
// the field name (e.g. "site.toml: [data] augment_").
void ValidateAugmentationSpec(const AugmentationSpec& spec, const std::string& prefix = "");

}  // namespace fedmed

#endif  // FEDMED_COMMON_DATA_AUGMENTATION_SPEC_H_
