#include "coordinator/strategy/strategy.h"

#include <algorithm>
#include <optional>

#include <spdlog/fmt/fmt.h>

#include "common/util/error.h"
#include "coordinator/strategy/fedavg_strategy.h"
#include "coordinator/strategy/fedopt_strategy.h"
#include "coordinator/strategy/robust_strategy.h"

namespace fedmed {

FitInstructions Strategy::ConfigureFit(int /*round*/,
                                       const std::vector<std::string>& selected_sites) const {
  FitInstructions fit;
  fit.sites = selected_sites;
  std::sort(fit.sites.begin(), fit.sites.end());
  fit.sites.erase(std::unique(fit.sites.begin(), fit.sites.end()), fit.sites.end());
  return fit;
}

void Strategy::BeginRound(const ModelState& global) {
  DoBeginRound(global);  // may throw (a saved state of another layout): nothing changed yet
  std::lock_guard<std::mutex> lock(mu_);
  layout_ = global;
  sites_.clear();
  total_samples_ = 0;
  round_open_ = true;
}

void Strategy::AddUpdate(const std::string& site, const ModelState& delta, int64_t num_samples) {
  const std::string what = "update from site " + site;
  std::lock_guard<std::mutex> lock(mu_);
  if (!round_open_) {
    throw Error(name() + ": " + what + " arrived while no round is being collected");
  }
  if (num_samples < 1) {
    throw ConfigError(what + ": sample count must be >= 1, got " + std::to_string(num_samples));
  }
  CheckSameLayout(layout_, delta, what);  // names and shapes only: cheap under the lock
  if (sites_.count(site) != 0) {
    throw Error(name() + ": site " + site + " already sent its update for this round");
  }
  DoAddUpdate(delta, num_samples);
  sites_.insert(site);
  total_samples_ += num_samples;
}

ModelState Strategy::AggregateFit(const ModelState& global) {
  if (!round_open_) throw Error(name() + ": AggregateFit without an open round (BeginRound)");
  CheckSameLayout(layout_, global, "global model");
  if (contributions() == 0) throw Error(name() + ": no update to aggregate in this round");
  ModelState next = DoAggregate(global);
  round_open_ = false;
  return next;
}

int Strategy::contributions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(sites_.size());
}

int64_t Strategy::total_samples() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_samples_;
}

std::string Strategy::SaveState() const { return ""; }

void Strategy::LoadState(const std::string& bytes) {
  if (!bytes.empty()) {
    throw FormatError(name() + " server state: expected none (" + name() +
                      " keeps no state between rounds), got " + std::to_string(bytes.size()) +
                      " bytes");
  }
}

std::unique_ptr<Strategy> MakeStrategy(const StrategyConfig& config) {
  ValidateStrategyConfig(config, "");
  const StrategyConfig c = WithStrategyDefaults(config);
  const auto fedopt = [&c](FedOptVariant variant) {
    FedOptParams p;
    p.variant = variant;
    p.server_learning_rate = *c.server_learning_rate;
    p.beta1 = *c.beta1;
    p.beta2 = c.beta2.value_or(0.0);  // does not apply to FedAdagrad
    p.tau = *c.tau;
    return std::make_unique<FedOptStrategy>(p);
  };
  switch (*ParseStrategyKind(c.name)) {  // a known name: validated above
    case StrategyKind::kFedAvg: return std::make_unique<FedAvgStrategy>();
    case StrategyKind::kFedProx: return std::make_unique<FedAvgStrategy>(*c.proximal_mu);
    case StrategyKind::kFedAdam: return fedopt(FedOptVariant::kAdam);
    case StrategyKind::kFedYogi: return fedopt(FedOptVariant::kYogi);
    case StrategyKind::kFedAdagrad: return fedopt(FedOptVariant::kAdagrad);
    case StrategyKind::kMedian: return std::make_unique<CoordinateMedianStrategy>();
    case StrategyKind::kTrimmedMean: break;
  }
  return std::make_unique<TrimmedMeanStrategy>(*c.trim_fraction);
}

std::string DescribeStrategy(const StrategyConfig& config) {
  const StrategyConfig c = WithStrategyDefaults(config);
  std::string params;
  auto add = [&params](const char* key, const std::optional<double>& value) {
    if (value) params += fmt::format("{}{} {:g}", params.empty() ? "" : ", ", key, *value);
  };
  add("proximal_mu", c.proximal_mu);
  add("server_learning_rate", c.server_learning_rate);
  add("beta1", c.beta1);
  add("beta2", c.beta2);
  add("tau", c.tau);
  add("trim_fraction", c.trim_fraction);
  return params.empty() ? c.name : c.name + " (" + params + ")";
}

}  // namespace fedmed
