// Random augmentation of training batches with LibTorch (part of the fedmed_model library): the
// AugmentationSpec (augmentation_spec.h) applied to a batch of normalised images, seeded.
//
// Per image, with parameters drawn independently per image from `generator`, in this order:
//   1. horizontal flip with probability hflip_probability (exact: a mirrored copy);
//   2. random resized crop (if crop_scale_min < 1), torchvision's RandomResizedCrop.get_params:
//      up to 10 attempts of area = H * W * U(crop_scale_min, 1), aspect = exp(U(log 3/4, log 4/3)),
//      w = round(sqrt(area * aspect)), h = round(sqrt(area / aspect)), accepted when
//      0 < w <= W and 0 < h <= H, with top = floor(U * (H - h + 1)), left = floor(U * (W - w + 1));
//      else the centre crop torchvision falls back to. The crop is resized back to H x W;
//   3. rotation by an angle drawn from U(-rotation_degrees, rotation_degrees) about the centre;
//   Steps 2 and 3 are one bilinear resampling (affine_grid + grid_sample, align_corners=false,
//   no antialiasing, like torchvision's tensor transforms with antialias=False); points outside
//   the image are black (pixel value 0, i.e. -mean/std once normalised), as torchvision's fill=0.
//   4. brightness then contrast (torchvision's ColorJitter draws a random order; here it is fixed):
//      on u = x * std + mean (the [0, 1] values before normalisation), u <- clamp(b * u, 0, 1) with
//      b ~ U(max(0, 1 - brightness), 1 + brightness); then u <- clamp(c * u + (1 - c) * m, 0, 1)
//      with c ~ U(max(0, 1 - contrast), 1 + contrast) and m the mean of the image's grey values
//      (0.299 R + 0.587 G + 0.114 B for RGB, as torchvision's adjust_contrast); then x = (u -
//      mean) / std again.
// Flip before crop and rotation is distributed as torchvision's crop, flip, rotate order (the
// crop position and the angle are symmetric). Only the enabled steps draw random numbers; a
// disabled spec returns `images` itself and draws nothing.
#ifndef FEDMED_COMMON_DATA_AUGMENTATION_H_
#define FEDMED_COMMON_DATA_AUGMENTATION_H_

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <array>
#include <cstdint>

#include "common/data/augmentation_spec.h"

namespace fedmed {

// Augments `images`, a float32 (B, C, H, W) batch normalised per channel as
// (x/255 - mean[c]) / std[c] (ImageSet::CopyNormalizedChw; C is 1 or 3), as described above, and
// returns a new (B, C, H, W) tensor (or `images` itself when !spec.enabled() or B = 0). The
// result is a function of the inputs and the generator's state (a CPU generator; random numbers
// are drawn on the CPU whatever the images' device), which it advances. `spec` must be valid
// (ValidateAugmentationSpec). Throws DataError if images is not a 4-D float32 tensor with 1 or 3
// channels.
torch::Tensor Augment(const torch::Tensor& images, const AugmentationSpec& spec,
                      const std::array<float, 3>& mean, const std::array<float, 3>& std,
                      at::Generator& generator);

// The CPU generator the trainers (TrainLocal, TrainLocalDpSgd) draw augmentations from: seeded
// with SplitMix64's finaliser of seed ^ 0x6175676d656e74 ("augment"), so that it is independent
// of the generator seeded with `seed` itself that shuffles and drives dropout (and training
// without augmentation is unchanged by its existence).
at::Generator MakeAugmentationGenerator(uint64_t seed);

}  // namespace fedmed

#endif  // FEDMED_COMMON_DATA_AUGMENTATION_H_
