// DP-SGD steps and the private local trainer (common/privacy/dp_sgd.h).
#include "common/privacy/dp_sgd.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "common/data/medmnist.h"
#include "common/model/evaluation.h"
#include "common/privacy/dp_sgd_schedule.h"
#include "common/util/data_path.h"
#include "common/util/error.h"

namespace fedmed {
namespace {

const ModelSpec kCnn{"cnn", 1, 2, 28};

std::vector<torch::Tensor> Grads(Classifier& model) {
  std::vector<torch::Tensor> out;
  for (const torch::Tensor& p : model.parameters()) out.push_back(p.grad().clone());
  return out;
}

torch::Tensor Flat(const std::vector<torch::Tensor>& ts) {
  std::vector<torch::Tensor> flat;
  for (const torch::Tensor& t : ts) flat.push_back(t.flatten().to(torch::kDouble));
  return torch::cat(flat);
}

struct Batch {
  torch::Tensor images, labels;
};

Batch RandomBatch(int64_t b, uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return {torch::randn({b, 1, 28, 28}, gen, torch::kFloat),
          torch::randint(0, 2, {b}, gen, torch::kLong)};
}

class DpSgdStepTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { SetComputeThreads(1); }
};

// The added noise: N(0, (sigma C)^2) per coordinate, independent of the data. The cnn has
// 1,199,042 parameters, so one step gives over a million draws.
TEST_F(DpSgdStepTest, NoiseHasStandardDeviationSigmaTimesC) {
  std::shared_ptr<Classifier> model = MakeModel(kCnn, 1);
  model->eval();
  const DpSgdSettings dp{1.3, 0.7, std::nullopt};
  const double expected_batch = 10.0;
  DpSgdStep step(*model, dp, expected_batch, at::make_generator<at::CPUGeneratorImpl>(42));
  EXPECT_DOUBLE_EQ(step.noise_std(), 1.3 * 0.7);

  // An empty Poisson batch: the gradient is noise only.
  const Batch none = RandomBatch(0, 1);
  const DpSgdStepStats empty_stats = step.Run(none.images, none.labels);
  EXPECT_EQ(empty_stats.batch_size, 0);
  EXPECT_EQ(empty_stats.mean_loss, 0.0);
  const torch::Tensor noise = Flat(Grads(*model)) * expected_batch;
  ASSERT_EQ(noise.numel(), 1199042);
  const double mean = noise.mean().item<double>();
  const double stddev = noise.std().item<double>();
  std::printf("empty batch: %lld draws, mean %.3g, std %.5f (expected %.5f)\n",
              static_cast<long long>(noise.numel()), mean, stddev, 1.3 * 0.7);
  EXPECT_NEAR(stddev, 1.3 * 0.7, 0.02 * 1.3 * 0.7);
  EXPECT_LT(std::fabs(mean), 5 * 1.3 * 0.7 / std::sqrt(1199042.0));  // 5 standard errors

  // A real batch: grad * E - (clipped sum) is the noise, same distribution.
  const Batch batch = RandomBatch(8, 2);
  const DpSgdStepStats stats = step.Run(batch.images, batch.labels);
  EXPECT_EQ(stats.batch_size, 8);
  EXPECT_GT(stats.mean_loss, 0.0);
  const torch::Tensor noisy = Flat(Grads(*model)) * expected_batch;
  const ClippedGradientSum clean =
      ComputeClippedGradientSum(*model, batch.images, batch.labels, dp.clipping_norm);
  const torch::Tensor residual = noisy - Flat(clean.sum);
  EXPECT_NEAR(residual.std().item<double>(), 1.3 * 0.7, 0.02 * 1.3 * 0.7);
  EXPECT_LT(std::fabs(residual.mean().item<double>()), 5 * 1.3 * 0.7 / std::sqrt(1199042.0));
  // Different draws each step.
  EXPECT_GT((residual - noise).abs().max().item<double>(), 0.1);
}

TEST_F(DpSgdStepTest, NoiseIsReproducibleFromTheGeneratorAndAbsentWhenSigmaIsZero) {
  std::shared_ptr<Classifier> model = MakeModel(kCnn, 1);
  model->eval();
  const Batch batch = RandomBatch(6, 3);
  const auto run = [&](const DpSgdSettings& dp, uint64_t seed) {
    DpSgdStep step(*model, dp, 6.0, at::make_generator<at::CPUGeneratorImpl>(seed));
    step.Run(batch.images, batch.labels);
    return Flat(Grads(*model));
  };
  const DpSgdSettings noisy{1.0, 1.0, std::nullopt};
  EXPECT_TRUE(run(noisy, 5).equal(run(noisy, 5)));
  EXPECT_FALSE(run(noisy, 5).equal(run(noisy, 6)));
  // sigma = 0: exactly the clipped sum / E, whatever the generator.
  const DpSgdSettings clean{0.0, 1.0, std::nullopt};
  const torch::Tensor g = run(clean, 5);
  EXPECT_TRUE(g.equal(run(clean, 6)));
  const ClippedGradientSum sum =
      ComputeClippedGradientSum(*model, batch.images, batch.labels, 1.0);
  EXPECT_LE((g - Flat(sum.sum) / 6.0).abs().max().item<double>(), 1e-7);
}

// With no noise and a clipping norm no sample reaches, DP-SGD's gradient is the ordinary
// mean-loss gradient of the batch (when the realised batch size equals the expected one).
TEST_F(DpSgdStepTest, WithoutNoiseOrClippingItIsTheOrdinaryGradient) {
  std::shared_ptr<Classifier> model = MakeModel(kCnn, 2);
  model->eval();
  const Batch batch = RandomBatch(16, 4);
  DpSgdStep step(*model, {0.0, 1e6, std::nullopt}, 16.0,
                 at::make_generator<at::CPUGeneratorImpl>(1));
  const DpSgdStepStats stats = step.Run(batch.images, batch.labels);
  EXPECT_EQ(stats.clipped_fraction, 0.0);
  const torch::Tensor dp = Flat(Grads(*model));
  model->zero_grad();
  const torch::Tensor loss =
      torch::nn::functional::cross_entropy(model->forward(batch.images), batch.labels);
  loss.backward();
  EXPECT_NEAR(stats.mean_loss, loss.item<double>(), 1e-5);
  const torch::Tensor ordinary = Flat(Grads(*model));
  EXPECT_LE((dp - ordinary).abs().max().item<double>(),
            1e-5 * ordinary.abs().max().item<double>());
}

TEST_F(DpSgdStepTest, StatsReportClipping) {
  std::shared_ptr<Classifier> model = MakeModel(kCnn, 2);
  model->eval();
  const Batch batch = RandomBatch(12, 5);
  DpSgdStep tight(*model, {0.0, 1e-4, std::nullopt}, 12.0,
                  at::make_generator<at::CPUGeneratorImpl>(1));
  const DpSgdStepStats stats = tight.Run(batch.images, batch.labels);
  EXPECT_EQ(stats.clipped_fraction, 1.0);
  EXPECT_GT(stats.max_gradient_norm, 1e-4);
  // Every clipped gradient has norm C, so their sum has norm <= B C.
  EXPECT_LE(Flat(Grads(*model)).norm().item<double>() * 12.0, 12 * 1e-4 * (1 + 1e-5));
}

TEST(DpSgdSettingsTest, ValidationNamesTheField) {
  const auto message = [](DpSgdSettings s) {
    try {
      ValidateDpSgdSettings(s);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(valid)");
  };
  EXPECT_EQ(message({1.1, 1.0, std::nullopt}), "(valid)");
  EXPECT_EQ(message({0.0, 1.0, std::nullopt}), "(valid)");
  EXPECT_EQ(message({-0.1, 1.0, std::nullopt}).find("noise_multiplier"), 0u);
  EXPECT_EQ(message({NAN, 1.0, std::nullopt}).find("noise_multiplier"), 0u);
  EXPECT_EQ(message({INFINITY, 1.0, std::nullopt}).find("noise_multiplier"), 0u);
  EXPECT_EQ(message({1.0, 0.0, std::nullopt}).find("clipping_norm"), 0u);
  EXPECT_EQ(message({1.0, -1.0, std::nullopt}).find("clipping_norm"), 0u);
  EXPECT_EQ(message({1.0, INFINITY, std::nullopt}).find("clipping_norm"), 0u);
  std::shared_ptr<Classifier> model = MakeModel(kCnn, 1);
  EXPECT_THROW(DpSgdStep(*model, {1.0, 1.0, std::nullopt}, 0.0,
                         at::make_generator<at::CPUGeneratorImpl>(1)),
               ConfigError);
  EXPECT_THROW(DpSgdStep(*model, {1.0, 0.0, std::nullopt}, 4.0,
                         at::make_generator<at::CPUGeneratorImpl>(1)),
               ConfigError);
}

// ---- the trainer, on real PneumoniaMNIST images ----

constexpr int64_t kTrainImages = 1000;

// The first 1000 PneumoniaMNIST training images (74% pneumonia).
class TrainLocalDpSgdTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SetComputeThreads(1);
    const MedMnist data = LoadMedMnist(ResolveDataPath("medmnist/pneumoniamnist.npz"));
    std::vector<int64_t> first(kTrainImages);
    std::iota(first.begin(), first.end(), 0);
    train_ = new ImageSet(data.train.Subset(first));
    std::vector<int64_t> few(200);
    std::iota(few.begin(), few.end(), 0);
    few_ = new ImageSet(data.train.Subset(few));
    global_ = new ModelState(InitialModelState(kCnn, 1));
  }
  static void TearDownTestSuite() {
    delete train_;
    delete few_;
    delete global_;
  }
  // Plain SGD with a large learning rate, the usual DP-SGD recipe (momentum and Adam integrate
  // the noise of every step).
  static TrainSettings Settings() {
    TrainSettings s;
    s.local_epochs = 2;
    s.batch_size = 64;
    s.optimizer = "sgd";
    s.learning_rate = 1.0;
    s.momentum = 0.0;
    s.seed = 3;
    return s;
  }
  static ModelState Add(const ModelState& a, const ModelState& b) {
    ModelState out = a;
    for (size_t i = 0; i < out.tensors.size(); ++i) {
      for (size_t j = 0; j < out.tensors[i].values.size(); ++j) {
        out.tensors[i].values[j] += b.tensors[i].values[j];
      }
    }
    return out;
  }
  static inline ImageSet* train_ = nullptr;
  static inline ImageSet* few_ = nullptr;
  static inline ModelState* global_ = nullptr;
};

TEST_F(TrainLocalDpSgdTest, NoisyTrainingLearns) {
  const DpSgdSettings dp{1.0, 1.0, 13};  // sigma = 1, C = 1
  const TrainResult r = TrainLocalDpSgd(kCnn, *global_, *train_, Settings(), dp);
  const DpSgdSchedule schedule = PlanDpSgd(kTrainImages, 64, 2);
  EXPECT_EQ(r.steps, schedule.steps);
  EXPECT_EQ(r.steps, 32);  // 2 epochs * round(1000 / 64)
  EXPECT_EQ(r.num_samples, kTrainImages);
  EXPECT_GT(r.mean_loss, 0.0);
  EXPECT_GT(r.seconds, 0.0);
  CheckSameLayout(*global_, r.delta, "delta");
  const ClassificationMetrics before = EvaluateModel(kCnn, *global_, *train_, 128);
  const ClassificationMetrics after = EvaluateModel(kCnn, Add(*global_, r.delta), *train_, 128);
  std::printf("DP-SGD (sigma 1, C 1, q %.3f, %lld steps, %.2f s): training loss %.4f -> %.4f, "
              "accuracy %.3f -> %.3f, AUC %.3f -> %.3f\n",
              schedule.sampling_rate, static_cast<long long>(r.steps), r.seconds, before.loss,
              after.loss, before.accuracy, after.accuracy, before.auc, after.auc);
  // Measured (Release, 1 thread): loss 0.774 -> 0.372, accuracy 0.260 -> 0.887, AUC
  // 0.60 -> 0.944. Over 6 secret seeds the AUC always ended in 0.93-0.96, while the final
  // loss ranged 0.28-1.20 (the noise of the last steps often shifts the bias, i.e. the
  // calibration): the loss check holds for this fixed seed, the AUC check for any.
  EXPECT_LT(after.loss, before.loss - 0.2);
  EXPECT_GT(after.auc, 0.9);
  EXPECT_GT(after.auc, before.auc + 0.2);
}

TEST_F(TrainLocalDpSgdTest, FixedSeedsRepeatAndSecretSeedsDiffer) {
  TrainSettings s = Settings();
  s.local_epochs = 1;
  s.batch_size = 32;
  const DpSgdSettings dp{1.0, 1.0, 11};
  const TrainResult r = TrainLocalDpSgd(kCnn, *global_, *few_, s, dp);
  EXPECT_EQ(r.steps, PlanDpSgd(200, 32, 1).steps);  // round(200 / 32) = 6
  EXPECT_EQ(r.steps, 6);
  const TrainResult same = TrainLocalDpSgd(kCnn, *global_, *few_, s, dp);
  EXPECT_EQ(EncodeModelState(same.delta), EncodeModelState(r.delta));
  EXPECT_EQ(same.mean_loss, r.mean_loss);
  DpSgdSettings other = dp;
  other.reproducible_seed = 12;
  EXPECT_NE(EncodeModelState(TrainLocalDpSgd(kCnn, *global_, *few_, s, other).delta),
            EncodeModelState(r.delta));
  // Without a fixed seed, sampling and noise come from OpenSSL: two runs differ.
  DpSgdSettings secret = dp;
  secret.reproducible_seed.reset();
  EXPECT_NE(EncodeModelState(TrainLocalDpSgd(kCnn, *global_, *few_, s, secret).delta),
            EncodeModelState(TrainLocalDpSgd(kCnn, *global_, *few_, s, secret).delta));
}

TEST_F(TrainLocalDpSgdTest, AdamRunsAndSmallSitesGetOneStepPerEpoch) {
  TrainSettings s = Settings();
  s.optimizer = "adam";
  s.learning_rate = 1e-3;
  s.weight_decay = 1e-4;
  s.local_epochs = 1;
  s.batch_size = 64;
  const ImageSet few = few_->Subset({0, 1, 2, 3, 4});
  const TrainResult r = TrainLocalDpSgd(kCnn, *global_, few, s, {1.0, 1.0, 2});
  EXPECT_EQ(r.steps, 1);  // q = 1: the whole site, once
  EXPECT_EQ(r.num_samples, 5);
}

// should_stop (a site's SIGTERM or a near deadline) ends DP-SGD before the next step.
TEST_F(TrainLocalDpSgdTest, ShouldStopEndsTrainingBeforeTheNextStep) {
  TrainSettings settings = Settings();
  int asked = 0;
  settings.should_stop = [&asked] { return ++asked == 2; };
  try {
    TrainLocalDpSgd(kCnn, *global_, *few_, settings, {1.0, 1.0, 1});
    ADD_FAILURE() << "expected TrainingStopped";
  } catch (const TrainingStopped& e) {
    EXPECT_NE(std::string(e.what()).find("stopped at step 2"), std::string::npos) << e.what();
  }
  EXPECT_EQ(asked, 2);
}

TEST_F(TrainLocalDpSgdTest, RejectsBadInputsAndReportsDivergence) {
  EXPECT_THROW(TrainLocalDpSgd(kCnn, *global_, *few_, Settings(), {-1.0, 1.0, 1}),
               ConfigError);
  TrainSettings bad = Settings();
  bad.batch_size = 0;
  EXPECT_THROW(TrainLocalDpSgd(kCnn, *global_, *few_, bad, {1.0, 1.0, 1}), ConfigError);
  EXPECT_THROW(TrainLocalDpSgd(kCnn, *global_, few_->Subset({}), Settings(), {1.0, 1.0, 1}),
               DataError);
  ImageSet rgb = *few_;
  rgb.channels = 3;
  rgb.pixels.resize(rgb.pixels.size() * 3);
  EXPECT_THROW(TrainLocalDpSgd(kCnn, *global_, rgb, Settings(), {1.0, 1.0, 1}), DataError);
  EXPECT_THROW(TrainLocalDpSgd(kCnn, InitialModelState({"resnet18", 1, 2, 28}, 1), *few_,
                               Settings(), {1.0, 1.0, 1}),
               FormatError);
  TrainSettings wild = Settings();
  wild.learning_rate = 1e8;
  try {
    TrainLocalDpSgd(kCnn, *global_, *few_, wild, {1.0, 1e3, 1});
    ADD_FAILURE() << "expected TrainingDiverged";
  } catch (const TrainingDiverged& e) {
    EXPECT_NE(std::string(e.what()).find("diverged"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace fedmed
