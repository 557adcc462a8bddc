#include "common/data/augmentation_spec.h"

#include <cmath>
#include <cstdio>
#include <tuple>

#include "common/util/error.h"

namespace fedmed {

namespace {

std::string Text(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%g", v);
  return buffer;
}

}  // namespace

bool operator==(const AugmentationSpec& a, const AugmentationSpec& b) {
  return std::tie(a.hflip_probability, a.rotation_degrees, a.crop_scale_min, a.brightness,
                  a.contrast) == std::tie(b.hflip_probability, b.rotation_degrees,
                                          b.crop_scale_min, b.brightness, b.contrast);
}

void ValidateAugmentationSpec(const AugmentationSpec& s, const std::string& prefix) {
  const auto require = [&prefix](bool ok, const char* field, const char* expected, double got) {
    if (!ok) throw ConfigError(prefix + field + ": expected " + expected + ", got " + Text(got));
  };
  const auto finite = [](double v) { return std::isfinite(v); };
  require(finite(s.hflip_probability) && s.hflip_probability >= 0 && s.hflip_probability <= 1,
          "hflip_probability", "a probability in [0, 1]", s.hflip_probability);
  require(finite(s.rotation_degrees) && s.rotation_degrees >= 0 && s.rotation_degrees <= 180,
          "rotation_degrees", "an angle in [0, 180] degrees", s.rotation_degrees);
  require(finite(s.crop_scale_min) && s.crop_scale_min > 0 && s.crop_scale_min <= 1,
          "crop_scale_min", "an area fraction in (0, 1] (1 = no crop)", s.crop_scale_min);
  require(finite(s.brightness) && s.brightness >= 0, "brightness", "a finite number >= 0",
          s.brightness);
  require(finite(s.contrast) && s.contrast >= 0, "contrast", "a finite number >= 0", s.contrast);
}

}  // namespace fedmed
