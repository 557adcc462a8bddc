// Local training: what a site does with the global model in one round (LibTorch inside, not in
// this header).
//
// A site trains the global model on its own images for a few local epochs and sends back the
// update delta = trained - global; the coordinator averages the updates (FedAvg, McMahan et al.,
// AISTATS 2017, weighting by num_samples).
#ifndef FEDMED_COMMON_MODEL_LOCAL_TRAINING_H_
#define FEDMED_COMMON_MODEL_LOCAL_TRAINING_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/data/augmentation_spec.h"
#include "common/data/image_set.h"
#include "common/model/model_spec.h"
#include "common/model/model_state.h"
#include "common/util/error.h"

namespace torch {
namespace nn {
class Module;
}  // namespace nn
namespace optim {
class Optimizer;
}  // namespace optim
}  // namespace torch

namespace fedmed {

struct TrainSettings {
  int local_epochs = 1;         // passes over the site's images, >= 1
  int batch_size = 32;          // images per step, >= 1; the last batch of an epoch may be smaller
  std::string optimizer = "sgd";  // "sgd" (with momentum) | "adam" (Kingma & Ba, ICLR 2015)
  double learning_rate = 0.01;  // > 0
  double momentum = 0.9;        // SGD momentum in [0, 1); unused by "adam" (betas 0.9, 0.999)
  double weight_decay = 0.0;    // L2 penalty added to the gradient, >= 0
  uint64_t seed = 0;            // seeds the shuffling and dropout of this call
  // FedProx (Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020): mu of
  // the proximal term (mu/2) ||w - w_global||^2 added to the local loss, where w are the model's
  // parameters and w_global the global model training started from; it keeps the local model
  // near the global one when sites' data differ. Finite, >= 0; dimensionless (it multiplies a
  // squared distance in weight space, the loss being in nats); 0 = plain FedAvg local training.
  double proximal_mu = 0.0;
  // Fine-tuning: parameter-name prefixes of the layers training leaves unchanged, matched at
  // dots (frozen_layers.h): "conv1" freezes conv1.weight and conv1.bias, "layer1" all of
  // ResNet-18's first stage. A frozen parameter gets no gradient, is not in the optimizer (no
  // weight decay, no momentum) nor in FedProx's proximal term, and its delta is exactly 0.
  // Empty: every parameter trains. ValidateTrainSettings checks the entries' form only
  // (ValidateFrozenLayers); TrainLocal checks them against the model (MatchFrozenLayers).
  // DP-SGD training (TrainLocalDpSgd) refuses a non-empty list.
  std::vector<std::string> frozen_layers = {};
  // Random augmentation of every training batch (never of evaluation), drawn from a generator
  // seeded from `seed` (MakeAugmentationGenerator, common/data/augmentation.h) and applied with
  // the data's mean/std (Augment). Disabled by default: training is then unchanged.
  AugmentationSpec augmentation = {};
  // Called by TrainLocal after each epoch (1-based `epoch`) with the model's parameters and
  // buffers at that point, in `global`'s layout, e.g. to evaluate every epoch and keep the best on
  // a validation split (simulator/model_selection.h). Training goes on unchanged afterwards;
  // what it throws propagates out of TrainLocal. Empty (the default): not called, no copy made.
  std::function<void(int epoch, const ModelState& state)> on_epoch_end = {};
  // Asked before every step (TrainLocal and the DP-SGD trainer): returning true ends training
  // at once with TrainingStopped (a site stopping on SIGTERM, or whose task's deadline is near).
  // Nothing is returned, so nothing is sent or spent. Empty (the default): never asked.
  std::function<bool()> should_stop = {};
};

// Throws ConfigError naming the field and the accepted range when a field of `settings` is out
// of range (see TrainSettings), or not finite; for frozen_layers, as ValidateFrozenLayers
// (frozen_layers.h); for augmentation, as ValidateAugmentationSpec ("augmentation.<field>").
void ValidateTrainSettings(const TrainSettings& settings);

struct TrainResult {
  ModelState delta;         // trained - global, the update a site sends; global's layout
  int64_t num_samples = 0;  // images trained on (data.size(), n_k in FedAvg), not x epochs
  int64_t steps = 0;        // optimizer steps: local_epochs * ceil(num_samples / batch_size)
  // Mean training cross-entropy (nats) over every image of every epoch; without FedProx's
  // proximal term, so that it compares across strategies.
  double mean_loss = 0;
  double seconds = 0;       // wall-clock time of the call
};

// The parameters of a freshly initialised model `spec`, the same for the same seed (and the same
// LibTorch build). Thread-safe. Throws ConfigError as MakeModel (zoo.h).
ModelState InitialModelState(const ModelSpec& spec, uint64_t seed);

// Trains the model `spec`, starting from `global`, on `data`: local_epochs passes, each over a
// fresh permutation of the images (drawn from a generator seeded with settings.seed, which also
// drives dropout), in mini-batches of batch_size (the last one partial), minimising the mean
// cross-entropy of the logits with a new optimizer (no state carried between calls); with
// settings.proximal_mu = mu > 0 the minimised loss of every batch is mean cross-entropy +
// (mu/2) ||w - w_global||^2 over the trainable parameters (FedProx; w_global = `global`, held
// fixed), and with mu = 0 no term is computed at all (results identical to FedAvg's). The
// parameters settings.frozen_layers matches are frozen (see TrainSettings). Images are
// normalised as ImageSet::CopyNormalizedChw does, and each batch is augmented as
// settings.augmentation says (nothing by default). The result is a function of the arguments and
// the number of compute threads (SetComputeThreads; more threads split floating-point sums
// differently). Thread-safe: calls may run at once in several threads without affecting each
// other's results.
// A TorchScript model (spec.name "torchscript", torchscript_model.h) trains the same way, except
// that its dropout, if any, draws from LibTorch's global generator (not reproducible from the
// seed).
// Throws ConfigError for bad settings or spec, or frozen_layers that do not fit the model
// (as MatchFrozenLayers: an entry matching no parameter, or every parameter frozen);
// FormatError if `global` does not have the model's layout (naming the first differing
// parameter); DataError if `data` is empty or does not fit the model (channels, size, classes,
// labels); TrainingDiverged if the loss becomes NaN or infinite (lower the learning rate).
TrainResult TrainLocal(const ModelSpec& spec, const ModelState& global, const ImageSet& data,
                       const TrainSettings& settings);

// Training was ended before its last step because TrainSettings::should_stop said so.
class TrainingStopped : public Error {
 public:
  using Error::Error;
};

// The optimizer of TrainSettings::optimizer.
enum class OptimizerKind { kSgd, kAdam };

// The optimizer named `name` ("sgd", "adam"), or nullopt for any other text. Never throws.
inline std::optional<OptimizerKind> ParseOptimizer(std::string_view name) {
  if (name == "sgd") return OptimizerKind::kSgd;
  if (name == "adam") return OptimizerKind::kAdam;
  return std::nullopt;
}

// Local training diverged: a loss (or, with DP-SGD, a per-sample gradient norm) became NaN or
// infinite. The message names the step and epoch and suggests a lower learning rate. A site
// declines the round with it (nothing is sent, nothing is spent) and stays in the federation.
class TrainingDiverged : public Error {
 public:
  using Error::Error;
};

// The optimizer TrainLocal (and the DP-SGD trainer, common/privacy/dp_sgd.h) steps with, new,
// over those of model.parameters() that require gradients (frozen ones do not): "sgd" with
// settings.momentum or "adam" (betas 0.9, 0.999), with settings.learning_rate and
// settings.weight_decay. Include <torch/torch.h> to use the result.
// `settings` must be valid (ValidateTrainSettings): anything but "sgd" gives Adam.
std::unique_ptr<torch::optim::Optimizer> MakeTrainOptimizer(torch::nn::Module& model,
                                                            const TrainSettings& settings);

// Sets the number of threads LibTorch uses inside one operation (a convolution, a matrix product)
// to n >= 1, for every thread of the process that trains or evaluates afterwards, and, on the
// first call only, the size of LibTorch's inter-op thread pool to n (LibTorch allows that once).
// One thread per site is the right choice when several sites share a machine.
// Throws ConfigError if n < 1.
void SetComputeThreads(int n);

}  // namespace fedmed

#endif  // FEDMED_COMMON_MODEL_LOCAL_TRAINING_H_
