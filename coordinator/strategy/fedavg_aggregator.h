// Federated averaging as a running sum (McMahan et al., "Communication-Efficient Learning of Deep
// Networks from Decentralized Data", AISTATS 2017).
//
// Sites send updates Δ_k = w_k - w_t (trained minus global weights) with their sample counts n_k.
// The new global model is w_{t+1} = w_t + Σ_k n_k Δ_k / Σ_k n_k. Updates are added as they arrive,
// into one float64 accumulator per parameter, so memory is (model size × 2) whatever the number of
// sites, and no site's update is kept after it has been added. The weighted-mean strategies build
// on it: fedavg and fedprox (fedavg_strategy.h), fedadam, fedyogi and fedadagrad
// (fedopt_strategy.h).
#ifndef FEDMED_COORDINATOR_STRATEGY_FEDAVG_AGGREGATOR_H_
#define FEDMED_COORDINATOR_STRATEGY_FEDAVG_AGGREGATOR_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "common/model/model_state.h"

namespace fedmed {

class FedAvgAggregator {
 public:
  // `layout` fixes the tensor names and shapes every update must have.
  explicit FedAvgAggregator(const ModelState& layout);

  // Adds n_k Δ_k. Thread-safe. Throws FormatError (naming `what`) if the layout differs, and
  // ConfigError if num_samples < 1.
  void Add(const ModelState& delta, int64_t num_samples, const std::string& what);

  // w_t + Σ n_k Δ_k / Σ n_k, rounded to float32. Throws Error when nothing was added.
  ModelState Apply(const ModelState& global) const;

  // Forgets every update (a new round, or a retried one).
  void Reset();

  int contributions() const;
  int64_t total_samples() const;

 private:
  ModelState layout_;  // names and shapes only; values empty
  mutable std::mutex mu_;
  std::vector<std::vector<double>> sums_;
  int contributions_ = 0;
  int64_t total_samples_ = 0;
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_STRATEGY_FEDAVG_AGGREGATOR_H_
