#include "common/privacy/dp_sgd_schedule.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/util/error.h"

namespace fedmed {

DpSgdSchedule PlanDpSgd(int64_t num_samples, int64_t batch_size, int local_epochs) {
  if (num_samples < 1) {
    throw ConfigError("DP-SGD: the site holds " + std::to_string(num_samples) +
                      " training images, expected at least 1");
  }
  if (batch_size < 1) {
    throw ConfigError("DP-SGD: batch_size " + std::to_string(batch_size) + ", expected >= 1");
  }
  if (local_epochs < 1) {
    throw ConfigError("DP-SGD: local_epochs " + std::to_string(local_epochs) +
                      ", expected >= 1");
  }
  DpSgdSchedule s;
  s.expected_batch_size = std::min(batch_size, num_samples);
  s.sampling_rate =
      static_cast<double>(s.expected_batch_size) / static_cast<double>(num_samples);
  s.steps_per_epoch = std::max<int64_t>(
      1, std::llround(static_cast<double>(num_samples) /
                      static_cast<double>(s.expected_batch_size)));
  s.steps = s.steps_per_epoch * local_epochs;
  return s;
}

}  // namespace fedmed
