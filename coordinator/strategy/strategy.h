// Aggregation strategies of the coordinator, in the manner of Flower's Strategy
// (flwr.server.strategy.Strategy: configure_fit / aggregate_fit). Pure logic: no gRPC, no
// LibTorch types, no clock, so every strategy is tested on small hand-computed tensors.
//
// One Strategy object lives as long as the coordinator and is used round after round:
//
//   FitInstructions fit = strategy.ConfigureFit(round, rsm.selected());  // who trains, with what
//   strategy.BeginRound(global);                  // fixes the layout, forgets the last round
//   strategy.AddUpdate(site, delta, n_k);         // per accepted update, from any thread
//   ModelState next = strategy.AggregateFit(global);   // once, after the deadline / quorum
//   std::string state = strategy.SaveState();     // checkpoint it with the global model
//
// An update is a delta Δ_k = w_k - w_t (the site's trained weights minus the global weights it
// started from, float32, the layout of the global model) with its sample count n_k >= 1.
//
// Implementations (MakeStrategy picks one from the [strategy] section):
//   fedavg_strategy.h  FedAvg (McMahan et al. 2017), FedProx (Li et al. 2020)
//   fedopt_strategy.h  FedAdam, FedYogi, FedAdagrad (Reddi et al. 2021, Algorithm 2)
//   robust_strategy.h  coordinate-wise median and trimmed mean (Yin et al. 2018)
//
// Site selection is not done here: the round state machine (coordinator/round/) draws
// [federation] sites_per_round of the registered sites, seeded by [federation] seed, the round
// and the attempt, and enforces the min_sites quorum. ConfigureFit takes that selection as is.
//
// Federated evaluation has no strategy hook: the round state machine asks every registered site
// with test samples, and CombineMetrics (common/metrics/) averages their metrics weighted by
// sample count, which is what Flower's default configure_evaluate / aggregate_evaluate do.
#ifndef FEDMED_COORDINATOR_STRATEGY_STRATEGY_H_
#define FEDMED_COORDINATOR_STRATEGY_STRATEGY_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/config/strategy_config.h"
#include "common/model/model_state.h"

namespace fedmed {

// What the selected sites are asked to do in a round (the result of ConfigureFit).
struct FitInstructions {
  std::vector<std::string> sites;  // the sites that train this round, sorted, no duplicates
  double proximal_mu = 0;          // FedProx: mu > 0 of the proximal term; 0 = none
};

class Strategy {
 public:
  virtual ~Strategy() = default;
  Strategy(const Strategy&) = delete;
  Strategy& operator=(const Strategy&) = delete;

  // The [strategy] name: "fedavg", "fedprox", "fedadam", "fedyogi", "fedadagrad", "median" or
  // "trimmed_mean".
  virtual std::string name() const = 0;

  // The sites that train in `round` (>= 1) and what they are told besides the usual [training]
  // settings. `selected_sites` is the round state machine's selection; the result holds the same
  // sites, sorted and without duplicates, and proximal_mu (> 0 for FedProx, else 0). Throws
  // nothing.
  virtual FitInstructions ConfigureFit(int round,
                                       const std::vector<std::string>& selected_sites) const;

  // True if the strategy needs each site's update on its own (median, trimmed mean): then it
  // cannot run under secure aggregation, where the coordinator learns only the sum. False for
  // the weighted-mean family, which can equally be fed one update per site or, under secure
  // aggregation, a single AddUpdate of (Σ n_k Δ_k / Σ n_k, Σ n_k).
  virtual bool NeedsIndividualUpdates() const = 0;

  // Starts collecting a round (or a new attempt of one): forgets every update added before and
  // fixes the layout (tensor names and shapes of `global`) that updates must have. Server state
  // (FedOpt moments) is kept. Not concurrent with the other calls. Throws FormatError when
  // saved server state (LoadState) does not have the layout of `global`.
  void BeginRound(const ModelState& global);

  // Adds the update `delta` of `site` with its sample count `num_samples` (n_k). Thread-safe:
  // may run concurrently with other AddUpdate calls, not with BeginRound / AggregateFit.
  // Throws Error when no round is open (before BeginRound or after AggregateFit) or `site`
  // already added an update this round; ConfigError when num_samples < 1; FormatError naming
  // the site ("update from site <site>") and the first differing tensor when delta's layout
  // differs from the global model's. A refused update leaves the round unchanged.
  void AddUpdate(const std::string& site, const ModelState& delta, int64_t num_samples);

  // The next global model from `global` (the model the round started from; the layout given to
  // BeginRound) and the updates added since BeginRound, rounded to float32. Updates server state
  // (FedOpt moments) and closes the round: call once per BeginRound. Throws Error when no round
  // is open or no update was added (the state is then unchanged); FormatError (naming "global
  // model") when the layout of `global` differs from BeginRound's.
  ModelState AggregateFit(const ModelState& global);

  // Updates added since BeginRound, and the sum of their sample counts.
  int contributions() const;
  int64_t total_samples() const;

  // The server state that must survive a coordinator restart for the next rounds to be
  // identical (the FedOpt moments m and v), as bytes to store beside the checkpointed global
  // model. "" when the strategy keeps none (fedavg, fedprox, median, trimmed_mean) or has not
  // aggregated a round yet. The format is documented in fedopt_strategy.h.
  virtual std::string SaveState() const;

  // Restores what SaveState returned (call before the first BeginRound after a restart; "" means
  // the initial state). Throws FormatError when the bytes are not a state of this strategy (a
  // non-empty state for a stateless strategy, another FedOpt variant's, corrupt bytes); the
  // layout is checked against the global model at the next BeginRound.
  virtual void LoadState(const std::string& bytes);

 protected:
  Strategy() = default;

  // Hooks of the public calls above; the base has already checked the arguments (round open,
  // layout, sample count, duplicate site). DoAddUpdate runs under the base's mutex.
  virtual void DoBeginRound(const ModelState& layout) = 0;
  virtual void DoAddUpdate(const ModelState& delta, int64_t num_samples) = 0;
  virtual ModelState DoAggregate(const ModelState& global) = 0;

 private:
  ModelState layout_;  // the global model given to BeginRound (its layout is what counts)
  bool round_open_ = false;
  mutable std::mutex mu_;  // guards sites_, total_samples_ and DoAddUpdate
  std::set<std::string> sites_;
  int64_t total_samples_ = 0;
};

// The strategy `config` names, with its parameters (unset ones take the defaults documented at
// StrategyConfig, common/config/strategy_config.h). Throws ConfigError as
// ValidateStrategyConfig (the message names "(configuration built in code)") when the config is
// invalid.
std::unique_ptr<Strategy> MakeStrategy(const StrategyConfig& config);

// "fedadam (server_learning_rate 0.1, beta1 0.9, beta2 0.99, tau 1e-09)": the strategy's name
// and every parameter that applies to it, defaults filled in (for the coordinator's log).
std::string DescribeStrategy(const StrategyConfig& config);

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_STRATEGY_STRATEGY_H_
