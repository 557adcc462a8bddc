#include "common/privacy/dp_sgd.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "common/crypto/secure_random.h"
#include "common/data/augmentation.h"
#include "common/model/torch_state.h"
#include "common/privacy/dp_sgd_schedule.h"
#include "common/util/error.h"

namespace fedmed {

namespace {

// SplitMix64's finaliser: distinct, well-mixed seeds for the generators derived from one seed.
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace

void ValidateDpSgdSettings(const DpSgdSettings& s) {
  if (!std::isfinite(s.noise_multiplier) || s.noise_multiplier < 0) {
    throw ConfigError("noise_multiplier: " + std::to_string(s.noise_multiplier) +
                      ", expected a finite value >= 0");
  }
  if (!std::isfinite(s.clipping_norm) || s.clipping_norm <= 0) {
    throw ConfigError("clipping_norm: " + std::to_string(s.clipping_norm) +
                      ", expected a finite value > 0");
  }
}

DpSgdStep::DpSgdStep(Classifier& model, const DpSgdSettings& settings,
                     double expected_batch_size, at::Generator noise_generator,
                     NormMethod method)
    : model_(model),
      settings_(settings),
      expected_batch_size_(expected_batch_size),
      noise_generator_(std::move(noise_generator)),
      method_(method) {
  ValidateDpSgdSettings(settings_);
  if (!std::isfinite(expected_batch_size_) || expected_batch_size_ <= 0) {
    throw ConfigError("DP-SGD: expected batch size " + std::to_string(expected_batch_size_) +
                      ", expected a finite value > 0 (q * n)");
  }
  CheckDpSgdSupport(model_);
}

DpSgdStepStats DpSgdStep::Run(const torch::Tensor& images, const torch::Tensor& labels) {
  const ClippedGradientSum clipped = ComputeClippedGradientSum(
      model_, images, labels, settings_.clipping_norm, method_);
  DpSgdStepStats stats;
  stats.batch_size = images.size(0);
  if (stats.batch_size > 0) {
    stats.mean_loss = clipped.losses.to(torch::kDouble).mean().item<double>();
    stats.clipped_fraction = (clipped.clip_factors < 1.0).to(torch::kDouble).mean().item<double>();
    stats.max_gradient_norm = clipped.norms.max().item<double>();
  }

  torch::NoGradGuard no_grad;
  const double stddev = noise_std();
  const std::vector<torch::Tensor> params = model_.parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    torch::Tensor grad = clipped.sum[i];
    if (stddev > 0) {
      grad = grad + torch::empty_like(grad).normal_(0.0, stddev, noise_generator_);
    }
    torch::Tensor param = params[i];
    param.mutable_grad() = grad.div_(expected_batch_size_);
  }
  return stats;
}

TrainResult TrainLocalDpSgd(const ModelSpec& spec, const ModelState& global,
                            const ImageSet& data, const TrainSettings& settings,
                            const DpSgdSettings& dp) {
  const auto start = std::chrono::steady_clock::now();
  ValidateTrainSettings(settings);
  ValidateDpSgdSettings(dp);
  if (!settings.frozen_layers.empty()) {
    throw ConfigError("frozen_layers: not supported with DP-SGD (got " +
                      std::to_string(settings.frozen_layers.size()) +
                      " entries, first \"" + settings.frozen_layers.front() +
                      "\"); fine-tune every layer under DP-SGD, or train without DP");
  }
  std::shared_ptr<Classifier> model = MakeModel(spec);
  ImportState(*model, global);
  CheckDpSgdSupport(*model);
  if (data.size() == 0) throw DataError("DP-SGD training: the training data holds no images");
  CheckDataFitsModel(data, spec, "DP-SGD training data");
  at::init_num_threads();  // apply SetComputeThreads to this thread

  const int64_t n = data.size();
  const DpSgdSchedule schedule = PlanDpSgd(n, settings.batch_size, settings.local_epochs);
  const torch::Tensor images = ImagesToTensor(data, 0, n);
  const torch::Tensor labels = LabelsToTensor(data, 0, n);

  const uint64_t secret = dp.reproducible_seed ? *dp.reproducible_seed : SecureRandomUint64();
  at::Generator sampling = at::make_generator<at::CPUGeneratorImpl>(Mix(secret));
  at::Generator noise = at::make_generator<at::CPUGeneratorImpl>(Mix(Mix(secret)));
  at::Generator dropout = at::make_generator<at::CPUGeneratorImpl>(settings.seed);
  model->set_dropout_generator(dropout);
  // Augmentation is per-image preprocessing of the sampled batch: each augmented image still
  // enters the step once and is clipped on its own, so the privacy accounting is unchanged.
  at::Generator augmentation = MakeAugmentationGenerator(settings.seed);
  model->train();
  std::unique_ptr<torch::optim::Optimizer> optimizer = MakeTrainOptimizer(*model, settings);
  DpSgdStep step(*model, dp,
                 schedule.sampling_rate * static_cast<double>(n), noise);
  // FedProx (Li et al., MLSys 2020): the proximal term (mu/2) ||w - w_global||^2 is not a
  // per-sample quantity, so it is neither clipped nor noised: its gradient mu (w - w_global) is
  // added to the private gradient DpSgdStep wrote. It is a function of w_global (public: every
  // selected site received it) and of the current w (itself a function of earlier private
  // gradients only), so adding it is post-processing and costs no privacy: the accounting
  // contract of dp_sgd.h is unchanged.
  const double mu = settings.proximal_mu;
  const std::vector<torch::Tensor> params = model->parameters();
  std::vector<torch::Tensor> global_params;
  if (mu > 0) {
    for (const torch::Tensor& p : params) global_params.push_back(p.detach().clone());
  }

  TrainResult result;
  double loss_sum = 0;
  int64_t sampled = 0;
  for (int64_t t = 0; t < schedule.steps; ++t) {
    if (settings.should_stop && settings.should_stop()) {
      throw TrainingStopped("DP-SGD training stopped at step " + std::to_string(t + 1) + " of " +
                            std::to_string(schedule.steps));
    }
    // Poisson sampling: each image independently with probability q.
    const torch::Tensor chosen =
        torch::empty({n}, torch::kFloat).bernoulli_(schedule.sampling_rate, sampling);
    const torch::Tensor index = chosen.nonzero().flatten();
    const DpSgdStepStats stats =
        step.Run(Augment(images.index_select(0, index), settings.augmentation, data.mean,
                         data.std, augmentation),
                 labels.index_select(0, index));
    if (!std::isfinite(stats.mean_loss) || !std::isfinite(stats.max_gradient_norm)) {
      throw TrainingDiverged("DP-SGD training diverged: " +
                  std::string(std::isfinite(stats.mean_loss) ? "a per-sample gradient norm"
                                                             : "the loss") +
                  " is not finite at step " + std::to_string(t + 1) + " (epoch " +
                  std::to_string(t / schedule.steps_per_epoch + 1) +
                  "); lower the learning rate (" + std::to_string(settings.learning_rate) + ")");
    }
    if (mu > 0) {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < params.size(); ++i) {
        params[i].mutable_grad().add_(params[i] - global_params[i], mu);
      }
    }
    optimizer->step();
    loss_sum += stats.mean_loss * static_cast<double>(stats.batch_size);
    sampled += stats.batch_size;
  }

  result.delta = Subtract(ExportState(*model), global);
  result.num_samples = n;
  result.steps = schedule.steps;
  result.mean_loss = sampled > 0 ? loss_sum / static_cast<double>(sampled) : 0.0;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace fedmed
