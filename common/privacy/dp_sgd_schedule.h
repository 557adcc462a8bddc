// How DP-SGD walks through a site's images in one round: the sampling rate and the number of
// steps, decided before training so that the privacy spend of a round is known (and checked
// against the site's budget) before any image is touched.
//
// DP-SGD (Abadi et al., "Deep Learning with Differential Privacy", CCS 2016) as analysed by the
// RDP accountant (Mironov, Talwar & Zhang 2019) assumes Poisson sampling: every step includes
// each of the site's n images independently with probability q. fedmed's trainer samples exactly
// that way with q taken from this schedule, so the accountant's assumption holds by construction
// (the batch size varies from step to step; its expectation is q * n).
#ifndef FEDMED_COMMON_PRIVACY_DP_SGD_SCHEDULE_H_
#define FEDMED_COMMON_PRIVACY_DP_SGD_SCHEDULE_H_

#include <cstdint>

namespace fedmed {

struct DpSgdSchedule {
  double sampling_rate = 0;         // q = expected_batch_size / num_samples, in (0, 1]
  int64_t expected_batch_size = 0;  // min(batch_size, num_samples), >= 1
  int64_t steps_per_epoch = 0;      // max(1, round(num_samples / expected_batch_size))
  int64_t steps = 0;                // local_epochs * steps_per_epoch: noisy steps in the round
};

// The schedule of one round of DP-SGD over `num_samples` images with an expected batch of
// `batch_size` images for `local_epochs` epochs (an "epoch" being 1/q steps, which sees every
// image once in expectation, as Opacus's DPDataLoader counts it).
// Throws ConfigError if num_samples < 1, batch_size < 1 or local_epochs < 1.
DpSgdSchedule PlanDpSgd(int64_t num_samples, int64_t batch_size, int local_epochs);

}  // namespace fedmed

#endif  // FEDMED_COMMON_PRIVACY_DP_SGD_SCHEDULE_H_
