// FedAdam, FedYogi and FedAdagrad: adaptive optimisers applied on the coordinator (Reddi,
// Charles, Zaheer, Garrett, Rush, Konečný, Kumar, McMahan, "Adaptive Federated Optimization",
// ICLR 2021, Algorithm 2). The weighted mean of the round's updates is the pseudo-gradient:
//
//   Δ_t = Σ_k n_k Δ_k / Σ_k n_k                       (as FedAvg; float64 sum, rounded to float32)
//   m_t = β1 m_{t-1} + (1 - β1) Δ_t
//   v_t = v_{t-1} + Δ_t²                              FedAdagrad
//   v_t = β2 v_{t-1} + (1 - β2) Δ_t²                  FedAdam
//   v_t = v_{t-1} - (1 - β2) Δ_t² sign(v_{t-1} - Δ_t²)  FedYogi
//   x_{t+1} = x_t + η m_t / (sqrt(v_t) + τ)
//
// element-wise, in float64, with m_{-1} = 0 and v_{-1} = τ² (Algorithm 2 asks v_{-1} >= τ²; its
// smallest value). There is no bias correction, as in Algorithm 2. Choices against Flower's
// FedOpt strategies (flwr.server.strategy.FedAdam / FedYogi / FedAdagrad): Flower starts v at 0
// (the difference is τ², 1e-18 with FedAdam's default τ = 1e-9), and recent Flower FedAdam scales
// η by sqrt(1 - β2^(t+1)) / (1 - β1^(t+1)) (Kingma & Ba's bias correction); fedmed follows the
// paper. The parameter defaults (Flower's) are in common/config/coordinator_config.h.
//
// m and v are kept in float32 between rounds (like Flower's float32 arrays), one model each;
// with the running sum that is 2 models in float32 plus 2 in float64, whatever the number of
// sites. Each step is a function of (x_t, the stored float32 m and v, Δ_t) only, so a state saved
// and restored gives bit-identical later rounds.
//
// Saved state (SaveState / LoadState): a model state in the byte format of
// common/model/model_state.h, with the tensors
//   "<name>.steps"  rank 0: number of rounds aggregated so far (exact up to 2^24)
//   "m/<tensor>"    the first moment m of each model tensor, in model order
//   "v/<tensor>"    then the second moment v of each model tensor, in model order
// where <name> is "fedadam", "fedyogi" or "fedadagrad" (a state loads only into the same
// variant) and <tensor> is the model tensor's name. Before the first aggregated round the state
// is "" (m = 0, v = τ²).
#ifndef FEDMED_COORDINATOR_STRATEGY_FEDOPT_STRATEGY_H_
#define FEDMED_COORDINATOR_STRATEGY_FEDOPT_STRATEGY_H_

#include <cstdint>
#include <memory>
#include <string>

#include "coordinator/strategy/fedavg_aggregator.h"
#include "coordinator/strategy/strategy.h"

namespace fedmed {

enum class FedOptVariant { kAdam, kYogi, kAdagrad };

// Parameters of the update above. Defaults: Flower's FedAdam.
struct FedOptParams {
  FedOptVariant variant = FedOptVariant::kAdam;
  double server_learning_rate = 0.1;  // η > 0, in units of the weights per unit of m/sqrt(v)
  double beta1 = 0.9;                 // β1 in [0, 1)
  double beta2 = 0.99;                // β2 in [0, 1); not used by FedAdagrad
  double tau = 1e-9;                  // τ > 0, in units of the weights
};

class FedOptStrategy : public Strategy {
 public:
  // Throws ConfigError naming the parameter when one is out of range or not finite.
  explicit FedOptStrategy(const FedOptParams& params);

  // "fedadam", "fedyogi" or "fedadagrad".
  std::string name() const override;
  // False: the pseudo-gradient is a weighted sum, which works under secure aggregation.
  bool NeedsIndividualUpdates() const override { return false; }

  // The state format above; "" before the first aggregated round. Throws FormatError (from
  // EncodeModelState) if a model tensor's name is longer than 1022 bytes.
  std::string SaveState() const override;
  // Throws FormatError naming "<name> server state" when the bytes do not decode, are another
  // variant's, lack the steps tensor, or have m and v tensors that do not pair up (names,
  // shapes), or a negative or non-finite v.
  void LoadState(const std::string& bytes) override;

  // Rounds aggregated so far (including those before a LoadState).
  int64_t steps() const { return steps_; }

 protected:
  // Throws FormatError when a loaded state's moments do not have the layout of `layout`.
  void DoBeginRound(const ModelState& layout) override;
  void DoAddUpdate(const ModelState& delta, int64_t num_samples) override;
  // Throws Error (and changes nothing) when m or v would overflow float32 (|Δ| above ~1e19) or
  // the new global model would not be finite.
  ModelState DoAggregate(const ModelState& global) override;

 private:
  FedOptParams params_;
  std::unique_ptr<FedAvgAggregator> sum_;
  ModelState m_;  // first moment, float32; no tensors before the first step
  ModelState v_;  // second moment, float32; no tensors before the first step
  int64_t steps_ = 0;
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_STRATEGY_FEDOPT_STRATEGY_H_
