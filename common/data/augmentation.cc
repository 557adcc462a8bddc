#include "common/data/augmentation.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "common/util/error.h"

namespace fedmed {

namespace {

constexpr double kPi = 3.14159265358979323846;

struct Box {
  double top, left, height, width;  // pixels
};

// torchvision's RandomResizedCrop.get_params with scale (scale_min, 1), ratio (3/4, 4/3), from
// the uniforms u (10 attempts x 4 values).
Box CropBox(int64_t H, int64_t W, double scale_min, const float* u) {
  const double area = static_cast<double>(H * W);
  const double log_lo = std::log(3.0 / 4.0), log_hi = std::log(4.0 / 3.0);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const float* v = u + 4 * attempt;
    const double target = area * (scale_min + (1.0 - scale_min) * v[0]);
    const double aspect = std::exp(log_lo + (log_hi - log_lo) * v[1]);
    const int64_t w = std::llround(std::sqrt(target * aspect));
    const int64_t h = std::llround(std::sqrt(target / aspect));
    if (w > 0 && w <= W && h > 0 && h <= H) {
      const int64_t top = std::min<int64_t>(H - h, static_cast<int64_t>(v[2] * (H - h + 1)));
      const int64_t left = std::min<int64_t>(W - w, static_cast<int64_t>(v[3] * (W - w + 1)));
      return {static_cast<double>(top), static_cast<double>(left), static_cast<double>(h),
              static_cast<double>(w)};
    }
  }
  // Fallback: centre crop with the aspect ratio clamped into [3/4, 4/3].
  const double in_ratio = static_cast<double>(W) / static_cast<double>(H);
  int64_t w = W, h = H;
  if (in_ratio < 3.0 / 4.0) {
    h = std::llround(static_cast<double>(w) / (3.0 / 4.0));
  } else if (in_ratio > 4.0 / 3.0) {
    w = std::llround(static_cast<double>(h) * (4.0 / 3.0));
  }
  return {static_cast<double>((H - h) / 2), static_cast<double>((W - w) / 2),
          static_cast<double>(h), static_cast<double>(w)};
}

}  // namespace

torch::Tensor Augment(const torch::Tensor& images, const AugmentationSpec& spec,
                      const std::array<float, 3>& mean, const std::array<float, 3>& std,
                      at::Generator& generator) {
  if (!spec.enabled()) return images;
  if (images.dim() != 4 || images.scalar_type() != torch::kFloat ||
      (images.size(1) != 1 && images.size(1) != 3)) {
    throw DataError("augmentation: expected a float32 (B, C, H, W) batch with C = 1 or 3, got " +
                    std::string(images.toString()) + " of " + std::to_string(images.dim()) +
                    " dimensions");
  }
  const int64_t B = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
  if (B == 0) return images;
  const auto cpu = torch::TensorOptions().dtype(torch::kFloat);
  const torch::Tensor mean_t =
      torch::tensor(std::vector<float>(mean.begin(), mean.begin() + C), cpu)
          .view({1, C, 1, 1})
          .to(images.device());
  const torch::Tensor std_t = torch::tensor(std::vector<float>(std.begin(), std.begin() + C), cpu)
                                  .view({1, C, 1, 1})
                                  .to(images.device());
  torch::Tensor x = images;

  if (spec.hflip_probability > 0) {
    const torch::Tensor flip =
        (torch::rand({B}, generator, cpu) < spec.hflip_probability).to(images.device());
    x = torch::where(flip.view({B, 1, 1, 1}), x.flip({3}), x);
  }

  const bool rotate = spec.rotation_degrees > 0;
  const bool crop = spec.crop_scale_min < 1;
  if (rotate || crop) {
    torch::Tensor angles, uniforms;
    if (rotate) angles = (torch::rand({B}, generator, cpu) * 2 - 1) * spec.rotation_degrees;
    if (crop) uniforms = torch::rand({B, 10, 4}, generator, cpu).contiguous();
    // theta maps output coordinates (normalised to [-1, 1], align_corners=false) to input ones:
    // input = D * S^-1 * R^-1 * S * output + centre, S = diag(W/2, H/2) (so the rotation is in
    // pixel units), D = diag(crop w / W, crop h / H), centre = the crop's centre.
    torch::Tensor theta = torch::zeros({B, 2, 3}, torch::TensorOptions().dtype(torch::kDouble));
    auto t = theta.accessor<double, 3>();
    for (int64_t b = 0; b < B; ++b) {
      double sx = 1, sy = 1, cx = 0, cy = 0;
      if (crop) {
        const Box box = CropBox(H, W, spec.crop_scale_min, uniforms[b].data_ptr<float>());
        sx = box.width / static_cast<double>(W);
        sy = box.height / static_cast<double>(H);
        cx = (box.left + box.width / 2) / static_cast<double>(W) * 2 - 1;
        cy = (box.top + box.height / 2) / static_cast<double>(H) * 2 - 1;
      }
      double c = 1, s = 0;
      if (rotate) {
        const double a = angles[b].item<double>() * kPi / 180.0;
        c = std::cos(a);
        s = std::sin(a);
      }
      const double hw = static_cast<double>(W) / 2, hh = static_cast<double>(H) / 2;
      // S^-1 R^-1 S with R^-1 = [[c, s], [-s, c]].
      t[b][0][0] = sx * c;
      t[b][0][1] = sx * s * hh / hw;
      t[b][1][0] = -sy * s * hw / hh;
      t[b][1][1] = sy * c;
      t[b][0][2] = cx;
      t[b][1][2] = cy;
    }
    const torch::Tensor grid = torch::nn::functional::affine_grid(
        theta.to(torch::kFloat).to(images.device()), {B, C, H, W}, /*align_corners=*/false);
    const torch::Tensor fill = -mean_t / std_t;  // black
    x = torch::nn::functional::grid_sample(
            x - fill, grid,
            torch::nn::functional::GridSampleFuncOptions()
                .mode(torch::kBilinear)
                .padding_mode(torch::kZeros)
                .align_corners(false)) +
        fill;
  }

  if (spec.brightness > 0 || spec.contrast > 0) {
    torch::Tensor u = x * std_t + mean_t;
    const auto factors = [&](double amount) {
      const double lo = std::max(0.0, 1 - amount), hi = 1 + amount;
      return (torch::rand({B}, generator, cpu) * (hi - lo) + lo).view({B, 1, 1, 1}).to(x.device());
    };
    if (spec.brightness > 0) u = (u * factors(spec.brightness)).clamp(0, 1);
    if (spec.contrast > 0) {
      const torch::Tensor c = factors(spec.contrast);
      torch::Tensor gray = u;
      if (C == 3) {
        gray = 0.299 * u.select(1, 0) + 0.587 * u.select(1, 1) + 0.114 * u.select(1, 2);
      }
      const torch::Tensor m = gray.reshape({B, -1}).mean(1).view({B, 1, 1, 1});
      u = (c * u + (1 - c) * m).clamp(0, 1);
    }
    x = (u - mean_t) / std_t;
  }
  return x;
}

at::Generator MakeAugmentationGenerator(uint64_t seed) {
  uint64_t x = seed ^ 0x6175676d656e74ULL;
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return at::make_generator<at::CPUGeneratorImpl>(x ^ (x >> 31));
}

}  // namespace fedmed
