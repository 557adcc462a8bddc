// Site-level differential privacy on the update (DP-FedAvg: McMahan, Ramage, Talwar & Zhang,
// "Learning Differentially Private Recurrent Language Models", ICLR 2018): before the update
// leaves the site, the whole model delta is clipped to L2 norm S and Gaussian noise of standard
// deviation z * S is added to every coordinate. Whatever the site's data, the clipped update has
// norm <= S, so adding or removing the site's entire data set (its contribution present or
// absent, the neighbouring relation of McMahan et al. and of the RDP accountant) changes what is
// released by at most S: each round the site takes part is one Gaussian mechanism with noise
// multiplier z, accounted with q = 1 and steps = 1 (common/privacy/privacy_budget.h).
#ifndef FEDMED_COMMON_PRIVACY_UPDATE_PRIVACY_H_
#define FEDMED_COMMON_PRIVACY_UPDATE_PRIVACY_H_

#include <cstdint>

#include "common/model/model_state.h"

namespace fedmed {

struct UpdatePrivacyResult {
  double norm = 0;   // L2 norm of the update over every tensor, before clipping
  double scale = 1;  // min(1, S / norm): the factor the update was multiplied by
};

// Clips `delta` (every tensor together) to L2 norm `clipping_norm` (S) and adds independent
// Gaussian noise N(0, (noise_multiplier * S)^2) to each value, drawn from a 64-bit Mersenne
// Twister seeded with `seed` (fedmed-site draws the seed from OpenSSL's RAND_bytes; tests fix
// it). Norms are accumulated in float64; values stay float32.
// Throws ConfigError if clipping_norm is not a finite number > 0 or noise_multiplier is not a
// finite number >= 0.
UpdatePrivacyResult PrivatizeUpdate(ModelState* delta, double clipping_norm,
                                    double noise_multiplier, uint64_t seed);

}  // namespace fedmed

#endif  // FEDMED_COMMON_PRIVACY_UPDATE_PRIVACY_H_
