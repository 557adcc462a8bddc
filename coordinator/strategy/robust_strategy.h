// Coordinate-wise robust aggregation (Yin, Chen, Ramchandran, Bartlett, "Byzantine-Robust
// Distributed Learning: Towards Optimal Statistical Rates", ICML 2018): every coordinate of the
// new global model is the global value plus the median, or the trimmed mean, of that coordinate
// over the n updates of the round. Unweighted: sample counts are checked (>= 1) but do not
// count, as in Yin et al., so a site cannot gain weight by claiming more samples.
//
//   median        the middle value; for an even n the mean of the two middle values
//   trimmed mean  drop the k = floor(β n) largest and the k smallest values, average the rest
//                 (β = trim_fraction in [0, 0.5), so n - 2k >= 1 values remain)
//
// Robustness: if at most f of the n updates are faulty (arbitrary values), then per coordinate
// the (f+1)-th smallest value is >= the smallest honest value and the (f+1)-th largest is <= the
// largest honest value (only faulty values can lie outside the honest range). The median uses
// order statistics between those positions when f < n/2, and the trimmed mean keeps only such
// positions when f <= k; so the aggregate stays within the range of the honest values.
//
// Both keep every update of the round (n copies of the model in float32) because a median needs
// all values at once; they therefore cannot run under secure aggregation. Aggregation sorts n
// values per coordinate (O(P n log n) for P parameters) and does not depend on arrival order.
#ifndef FEDMED_COORDINATOR_STRATEGY_ROBUST_STRATEGY_H_
#define FEDMED_COORDINATOR_STRATEGY_ROBUST_STRATEGY_H_

#include <string>
#include <vector>

#include "coordinator/strategy/strategy.h"

namespace fedmed {

// Base of the two: keeps the updates and reduces each coordinate's sorted values.
class CoordinateWiseStrategy : public Strategy {
 public:
  // True: each update is needed on its own.
  bool NeedsIndividualUpdates() const override { return true; }

 protected:
  void DoBeginRound(const ModelState& layout) override;
  void DoAddUpdate(const ModelState& delta, int64_t num_samples) override;
  ModelState DoAggregate(const ModelState& global) override;
  // The aggregate of one coordinate's values, sorted ascending (size n >= 1).
  virtual double Reduce(const std::vector<float>& sorted) const = 0;

 private:
  std::vector<ModelState> updates_;
};

class CoordinateMedianStrategy : public CoordinateWiseStrategy {
 public:
  // "median".
  std::string name() const override { return "median"; }

 protected:
  double Reduce(const std::vector<float>& sorted) const override;
};

class TrimmedMeanStrategy : public CoordinateWiseStrategy {
 public:
  // trim_fraction β in [0, 0.5): per coordinate, floor(β n) values are dropped at each end
  // (β n is computed with a 1e-9 tolerance, so that 0.29 * 100 drops 29). Throws ConfigError
  // when β is outside [0, 0.5).
  explicit TrimmedMeanStrategy(double trim_fraction);
  // "trimmed_mean".
  std::string name() const override { return "trimmed_mean"; }
  // The number of values dropped at each end of a coordinate with n >= 1 updates: floor(β n),
  // and never more than (n - 1) / 2.
  int TrimCount(int n) const;

 protected:
  double Reduce(const std::vector<float>& sorted) const override;

 private:
  double trim_fraction_;
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_STRATEGY_ROBUST_STRATEGY_H_
