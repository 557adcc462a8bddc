#include "common/privacy/update_privacy.h"

#include <cmath>
#include <random>
#include <string>

#include "common/util/error.h"

namespace fedmed {

UpdatePrivacyResult PrivatizeUpdate(ModelState* delta, double clipping_norm,
                                    double noise_multiplier, uint64_t seed) {
  if (!std::isfinite(clipping_norm) || clipping_norm <= 0) {
    throw ConfigError("update privacy: clipping_norm " + std::to_string(clipping_norm) +
                      ", expected a finite number > 0");
  }
  if (!std::isfinite(noise_multiplier) || noise_multiplier < 0) {
    throw ConfigError("update privacy: noise_multiplier " + std::to_string(noise_multiplier) +
                      ", expected a finite number >= 0");
  }
  UpdatePrivacyResult result;
  result.norm = L2Norm(*delta);
  result.scale = result.norm > clipping_norm ? clipping_norm / result.norm : 1.0;
  std::mt19937_64 generator(seed);
  std::normal_distribution<double> noise(0.0, noise_multiplier * clipping_norm);
  const bool add_noise = noise_multiplier > 0;
  for (NamedTensor& t : delta->tensors) {
    for (float& v : t.values) {
      double x = static_cast<double>(v) * result.scale;
      if (add_noise) x += noise(generator);
      v = static_cast<float>(x);
    }
  }
  return result;
}

}  // namespace fedmed
