// FedAvg and FedProx: the new global model is the global model plus the mean of the updates
// weighted by sample count,
//   w_{t+1} = w_t + Σ_k n_k Δ_k / Σ_k n_k
// (McMahan et al., "Communication-Efficient Learning of Deep Networks from Decentralized Data",
// AISTATS 2017). FedProx (Li et al., "Federated Optimization in Heterogeneous Networks", MLSys
// 2020) aggregates the same way; what differs is local training, where each site minimises
// F_k(w) + (mu/2) ||w - w_t||^2. ConfigureFit hands mu to the sites; applying it is the site's
// job.
//
// Updates go into a float64 running sum (FedAvgAggregator, fedavg_aggregator.h): memory is twice
// the model in float64 whatever the number of sites, and no update is kept.
#ifndef FEDMED_COORDINATOR_STRATEGY_FEDAVG_STRATEGY_H_
#define FEDMED_COORDINATOR_STRATEGY_FEDAVG_STRATEGY_H_

#include <memory>
#include <string>
#include <vector>

#include "coordinator/strategy/fedavg_aggregator.h"
#include "coordinator/strategy/strategy.h"

namespace fedmed {

class FedAvgStrategy : public Strategy {
 public:
  // FedAvg.
  FedAvgStrategy();
  // FedProx with proximal term `proximal_mu` (> 0, finite; dimensionless, it multiplies a
  // squared distance in weight space). Throws ConfigError otherwise.
  explicit FedAvgStrategy(double proximal_mu);

  // "fedavg", or "fedprox" when a proximal term was given.
  std::string name() const override;
  // The selected sites, sorted; proximal_mu as constructed (0 for FedAvg).
  FitInstructions ConfigureFit(int round,
                               const std::vector<std::string>& selected_sites) const override;
  // False: a weighted sum works under secure aggregation.
  bool NeedsIndividualUpdates() const override { return false; }

 protected:
  void DoBeginRound(const ModelState& layout) override;
  void DoAddUpdate(const ModelState& delta, int64_t num_samples) override;
  ModelState DoAggregate(const ModelState& global) override;

 private:
  double proximal_mu_ = 0;
  std::unique_ptr<FedAvgAggregator> sum_;
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_STRATEGY_FEDAVG_STRATEGY_H_
