// [strategy] of coordinator.toml (and of fedmed-simulate's experiment files): which aggregation
// strategy the coordinator runs and its parameters, with their validation and defaults. No TOML
// types: the strategy library (coordinator/strategy/) needs only this header.
#ifndef FEDMED_COMMON_CONFIG_STRATEGY_CONFIG_H_
#define FEDMED_COMMON_CONFIG_STRATEGY_CONFIG_H_

#include <optional>
#include <string>

namespace fedmed {

// [strategy]: how the coordinator turns a round's updates into the next global model
// (coordinator/strategy/strategy.h implements the strategies). `name` is one of
//   "fedavg"       weighted mean of the updates by sample count (McMahan et al., AISTATS 2017)
//   "fedprox"      FedAvg aggregation; the sites add (mu/2)||w - w_global||^2 to their local
//                  loss (Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020)
//   "fedadam", "fedyogi", "fedadagrad"
//                  adaptive server optimisers applied to the weighted mean update (Reddi et al.,
//                  "Adaptive Federated Optimization", ICLR 2021, Algorithm 2)
//   "median", "trimmed_mean"
//                  coordinate-wise median / trimmed mean of the updates, unweighted (Yin et al.,
//                  "Byzantine-Robust Distributed Learning", ICML 2018)
//
// Each numeric key is optional and applies only to some strategies; a key that is set but does
// not apply to `name` is an error (ValidateStrategyConfig). An applicable key left unset takes
// the default below (WithStrategyDefaults), which is Flower's default (flwr.server.strategy,
// Flower 1.x: FedAdam, FedYogi, FedAdagrad, FedTrimmedAvg):
//
//   key                   applies to                       default                  range
//   proximal_mu           fedprox                          none: required           > 0
//   server_learning_rate  fedadam, fedyogi, fedadagrad     0.1, 0.01, 0.1           > 0
//   beta1                 fedadam, fedyogi, fedadagrad     0.9, 0.9, 0.0            [0, 1)
//   beta2                 fedadam, fedyogi                 0.99, 0.99               [0, 1)
//   tau                   fedadam, fedyogi, fedadagrad     1e-9, 1e-3, 1e-9         > 0
//   trim_fraction         trimmed_mean                     0.2                      [0, 0.5)
//
// Every number must also be finite. The optionals record whether the file set the key, so that
// rendering and loading give back exactly the same configuration.
struct StrategyConfig {
  std::string name = "fedavg";
  std::optional<double> proximal_mu;           // mu of the FedProx proximal term
  std::optional<double> server_learning_rate;  // eta of the FedOpt update
  std::optional<double> beta1;                 // first-moment (momentum) decay
  std::optional<double> beta2;                 // second-moment decay
  std::optional<double> tau;                   // adaptivity / numerical floor of the FedOpt step
  std::optional<double> trim_fraction;         // beta of the trimmed mean: share cut per side
};

// Every key is equal (an unset key differs from a set one). Never throws.
bool operator==(const StrategyConfig& a, const StrategyConfig& b);
inline bool operator!=(const StrategyConfig& a, const StrategyConfig& b) { return !(a == b); }

// The strategies by their `name`.
enum class StrategyKind { kFedAvg, kFedProx, kFedAdam, kFedYogi, kFedAdagrad, kMedian,
                          kTrimmedMean };

// The kind named `name` ("fedavg" ... "trimmed_mean"), or nullopt for an unknown name. Never
// throws.
std::optional<StrategyKind> ParseStrategyKind(const std::string& name);

// True for the strategies that need each site's update on its own (median, trimmed_mean), which
// secure aggregation (the coordinator sees only the sum) cannot serve. False for unknown names.
bool StrategyNeedsIndividualUpdates(const std::string& name);

// Checks a [strategy] section (see StrategyConfig). Throws ConfigError
//   "<config_path>: [strategy] <key>: expected <what>, got <value>"
// for an unknown name, a value out of range or not finite, or fedprox without proximal_mu; and
//   "<config_path>: [strategy] <key>: applies only to <strategies>, not to name = \"<name>\" ..."
// for a key that is set but does not apply to the chosen strategy. An empty config_path is shown
// as "(configuration built in code)".
void ValidateStrategyConfig(const StrategyConfig& config, const std::string& config_path);

// `config` with every key that applies to config.name and is unset given its default (the table
// at StrategyConfig). Keys that do not apply stay as they are. proximal_mu has no default and
// stays unset. Does not validate; never throws.
StrategyConfig WithStrategyDefaults(const StrategyConfig& config);

}  // namespace fedmed

#endif  // FEDMED_COMMON_CONFIG_STRATEGY_CONFIG_H_
