#include "coordinator/strategy/fedavg_strategy.h"

#include <cmath>

#include "common/util/error.h"

namespace fedmed {

FedAvgStrategy::FedAvgStrategy() = default;

FedAvgStrategy::FedAvgStrategy(double proximal_mu) : proximal_mu_(proximal_mu) {
  if (!(std::isfinite(proximal_mu) && proximal_mu > 0)) {
    throw ConfigError("fedprox: proximal_mu must be a finite number > 0, got " +
                      std::to_string(proximal_mu));
  }
}

std::string FedAvgStrategy::name() const { return proximal_mu_ > 0 ? "fedprox" : "fedavg"; }

FitInstructions FedAvgStrategy::ConfigureFit(
    int round, const std::vector<std::string>& selected_sites) const {
  FitInstructions fit = Strategy::ConfigureFit(round, selected_sites);
  fit.proximal_mu = proximal_mu_;
  return fit;
}

void FedAvgStrategy::DoBeginRound(const ModelState& layout) {
  sum_ = std::make_unique<FedAvgAggregator>(layout);
}

void FedAvgStrategy::DoAddUpdate(const ModelState& delta, int64_t num_samples) {
  sum_->Add(delta, num_samples, "update");
}

ModelState FedAvgStrategy::DoAggregate(const ModelState& global) { return sum_->Apply(global); }

}  // namespace fedmed
