#include "coordinator/strategy/robust_strategy.h"

#include <algorithm>
#include <cmath>

#include "common/util/error.h"

namespace fedmed {

void CoordinateWiseStrategy::DoBeginRound(const ModelState& /*layout*/) { updates_.clear(); }

void CoordinateWiseStrategy::DoAddUpdate(const ModelState& delta, int64_t /*num_samples*/) {
  updates_.push_back(delta);
}

ModelState CoordinateWiseStrategy::DoAggregate(const ModelState& global) {
  ModelState next = global;
  std::vector<float> column(updates_.size());
  for (std::size_t i = 0; i < next.tensors.size(); ++i) {
    std::vector<float>& values = next.tensors[i].values;
    for (std::size_t j = 0; j < values.size(); ++j) {
      for (std::size_t k = 0; k < updates_.size(); ++k) {
        column[k] = updates_[k].tensors[i].values[j];
      }
      std::sort(column.begin(), column.end());
      values[j] = static_cast<float>(static_cast<double>(values[j]) + Reduce(column));
    }
  }
  updates_.clear();
  return next;
}

double CoordinateMedianStrategy::Reduce(const std::vector<float>& sorted) const {
  const std::size_t n = sorted.size();
  if (n % 2 == 1) return sorted[n / 2];
  return (static_cast<double>(sorted[n / 2 - 1]) + static_cast<double>(sorted[n / 2])) / 2;
}

TrimmedMeanStrategy::TrimmedMeanStrategy(double trim_fraction) : trim_fraction_(trim_fraction) {
  if (!(trim_fraction >= 0 && trim_fraction < 0.5)) {
    throw ConfigError("trimmed_mean: trim_fraction must be in [0, 0.5), got " +
                      std::to_string(trim_fraction));
  }
}

int TrimmedMeanStrategy::TrimCount(int n) const {
  const int k = static_cast<int>(std::floor(trim_fraction_ * n + 1e-9));
  return std::min(k, (n - 1) / 2);  // the tolerance must never leave no value
}

double TrimmedMeanStrategy::Reduce(const std::vector<float>& sorted) const {
  const int n = static_cast<int>(sorted.size());
  const int k = TrimCount(n);
  double sum = 0;
  for (int i = k; i < n - k; ++i) sum += sorted[static_cast<std::size_t>(i)];
  return sum / (n - 2 * k);
}

}  // namespace fedmed
