// DP-SGD: differentially private local training (Abadi et al., "Deep Learning with Differential
// Privacy", CCS 2016, Algorithm 1), with Poisson sampling as the RDP accountant assumes.
//
// One step: draw a batch by including each of the site's n images independently with
// probability q; compute every sample's gradient g_b and clip it to norm C,
// c_b g_b with c_b = min(1, C / (||g_b|| + 1e-6)) (per_sample_gradients.h: vectorised, ghost
// norms where cheaper); add Gaussian noise N(0, sigma^2 C^2) to every coordinate of the sum;
// divide by the EXPECTED batch size q n (not the realised one, which depends on the data and
// would leak it); hand the result to an ordinary optimizer (SGD with momentum or Adam, with
// weight decay: post-processing of a private gradient, so still private).
//
// Accounting contract: a call of TrainLocalDpSgd runs exactly schedule.steps steps, where
// schedule = PlanDpSgd(data.size(), settings.batch_size, settings.local_epochs)
// (dp_sgd_schedule.h), each the sampled Gaussian mechanism with sampling rate
// schedule.sampling_rate and noise multiplier dp.noise_multiplier. The round's privacy spend is
// therefore ComputeRdp(schedule.sampling_rate, dp.noise_multiplier, schedule.steps, orders)
// (rdp_accountant.h), composed with the site's earlier rounds; compute and record it before the
// update leaves the site. The guarantee is per image (record-level DP) of the site's data set.
//
// Secrecy: the Poisson sampling and the noise are drawn from generators seeded from OpenSSL's
// CSPRNG (SecureRandomUint64, common/crypto/secure_random.h) unless
// DpSgdSettings::reproducible_seed is set. The coordinator chooses TrainSettings::seed, so that
// seed must never drive the noise: whoever knows the noise's seed can subtract the noise. The
// generators themselves are LibTorch's Mersenne Twister (not a CSPRNG, unlike Opacus's
// secure_mode), and the noise is sampled in floating point (Mironov, CCS 2012, showed that such
// samplers can leak through their low-order bits; no mitigation here).
//
// Include this header only from .cc files that need LibTorch.
#ifndef FEDMED_COMMON_PRIVACY_DP_SGD_H_
#define FEDMED_COMMON_PRIVACY_DP_SGD_H_

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "common/data/image_set.h"
#include "common/model/local_training.h"
#include "common/model/model_spec.h"
#include "common/model/model_state.h"
#include "common/model/zoo.h"
#include "common/privacy/per_sample_gradients.h"

namespace fedmed {

struct DpSgdSettings {
  // sigma: noise standard deviation / clipping norm, finite, >= 0 (0: clipping only, no
  // privacy: the accountant reports an infinite epsilon).
  double noise_multiplier = 1.0;
  // C: the per-sample gradient L2 norm bound (nats per unit of parameter), finite, > 0.
  double clipping_norm = 1.0;
  // Unset (the default, and the only safe choice on a site): the sampling and noise generators
  // are seeded from OpenSSL's CSPRNG. Set: they are seeded from this value, so that a run can
  // be repeated exactly — for tests and simulations only, since anyone who knows it can remove
  // the noise.
  std::optional<uint64_t> reproducible_seed;
};

// Throws ConfigError naming the field ("noise_multiplier" or "clipping_norm") and the accepted
// range when a field of `settings` is out of range or not finite.
void ValidateDpSgdSettings(const DpSgdSettings& settings);

// What one DP-SGD step saw. Computed from the private batch: for monitoring on the site only
// (it is not covered by the privacy guarantee; never send it to the coordinator).
struct DpSgdStepStats {
  int64_t batch_size = 0;         // the realised (Poisson) batch size B, >= 0
  double mean_loss = 0;           // mean per-sample cross-entropy of the batch (nats); 0 if B = 0
  double clipped_fraction = 0;    // fraction of the B samples with c_b < 1; 0 if B = 0
  double max_gradient_norm = 0;   // max_b ||g_b|| before clipping; 0 if B = 0
};

// The private gradient of one Poisson-sampled batch, written into the parameters' .grad so that
// a torch::optim optimizer over model.parameters() can step. Not thread-safe; one per training.
class DpSgdStep {
 public:
  // model: the classifier being trained; it must outlive this object, and is checked with
  // CheckDpSgdSupport (throws ConfigError as that does).
  // expected_batch_size: q n, the divisor of every step (> 0, finite; e.g.
  // schedule.sampling_rate * num_samples).
  // noise_generator: the CPU generator the noise is drawn from (keep its seed secret).
  // method: how per-sample norms are computed (kAuto is fastest; the others are for tests).
  // Throws ConfigError as ValidateDpSgdSettings, or if expected_batch_size is not > 0.
  DpSgdStep(Classifier& model, const DpSgdSettings& settings, double expected_batch_size,
            at::Generator noise_generator, NormMethod method = NormMethod::kAuto);

  // One step on the batch images (B, C, H, W) in the parameters' dtype and labels (B,) int64
  // (B = 0 allowed: the gradient is then noise only). For every parameter p, sets
  //   p.grad = (sum_b c_b g_b + N(0, (sigma C)^2 I)) / expected_batch_size
  // (shape and dtype of p; the noise is drawn from noise_generator in named_parameters()
  // order, nothing drawn when sigma = 0), replacing any previous .grad. Runs the model in its
  // current mode (train mode: dropout masks are per sample, which keeps the clipping valid).
  // Throws as ComputeClippedGradientSum (DataError for bad shapes or labels). A non-finite loss
  // or norm is not thrown: it shows in the returned stats (the caller decides), and the .grad
  // written then is not finite either.
  DpSgdStepStats Run(const torch::Tensor& images, const torch::Tensor& labels);

  // The noise standard deviation per coordinate of the sum, sigma * C.
  double noise_std() const { return settings_.noise_multiplier * settings_.clipping_norm; }

 private:
  Classifier& model_;
  DpSgdSettings settings_;
  double expected_batch_size_;
  at::Generator noise_generator_;
  NormMethod method_;
};

// Trains the model `spec`, starting from `global`, on `data` with DP-SGD: schedule.steps steps
// (schedule = PlanDpSgd(data.size(), settings.batch_size, settings.local_epochs)), each on a
// Poisson sample of the images with rate schedule.sampling_rate, with the private gradient of
// DpSgdStep and a new optimizer as TrainLocal's (settings.optimizer, learning_rate, momentum,
// weight_decay). The model stays in train mode (dropout on). Images are normalised as
// TrainLocal's, and each sampled batch is augmented as settings.augmentation says (from
// MakeAugmentationGenerator(settings.seed); per-image, so the accounting is unchanged).
// settings.seed drives dropout and augmentation only; sampling and noise are seeded as
// DpSgdSettings::reproducible_seed says (so two calls differ unless it is set).
// Returns: delta = trained - global; num_samples = data.size() (n); steps = schedule.steps;
// mean_loss = mean per-sample cross-entropy over every sampled image of every step (0 if no
// image was ever sampled); seconds = wall-clock time. Thread-safe as TrainLocal.
// The privacy spend of the call: see the accounting contract at the top of this header.
// Throws ConfigError for bad settings, dp settings or spec, non-empty settings.frozen_layers
// (layer freezing is not supported with DP-SGD), or a model that CheckDpSgdSupport refuses
// (TorchScript models included); FormatError if `global` does not have the model's layout;
// DataError if `data` is empty or does not fit the model; TrainingDiverged
// (common/model/local_training.h) if a loss or per-sample gradient norm becomes NaN or infinite;
// CryptoError if OpenSSL cannot seed.
TrainResult TrainLocalDpSgd(const ModelSpec& spec, const ModelState& global,
                            const ImageSet& data, const TrainSettings& settings,
                            const DpSgdSettings& dp);

}  // namespace fedmed

#endif  // FEDMED_COMMON_PRIVACY_DP_SGD_H_
