// FedProx's proximal term at the sites (Li et al., "Federated Optimization in Heterogeneous
// Networks", MLSys 2020): TrainSettings::proximal_mu in TrainLocal and TrainLocalDpSgd, on the
// first 300 PneumoniaMNIST training images.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/model/local_training.h"
#include "common/privacy/dp_sgd.h"
#include "common/util/error.h"
#include "tests/model/training_test_util.h"

namespace fedmed {
namespace {

constexpr int64_t kTrainImages = 300;

double Norm(const ModelState& s) {
  double sum = 0;
  for (const NamedTensor& t : s.tensors) {
    for (float v : t.values) sum += static_cast<double>(v) * static_cast<double>(v);
  }
  return std::sqrt(sum);
}

class FedProxTrainingTest : public testing::PneumoniaTrainingTest<kTrainImages> {
 protected:
  // SGD with momentum 0.9, learning rate 0.01; proximal_mu left at its default.
  static TrainSettings Settings() { return PneumoniaTrainingTest::Settings(7); }

  // Plain SGD (no momentum) with proximal_mu = mu. With learning_rate * mu = 1 every step lands
  // on w_global - learning_rate * (the batch's data gradient): the model cannot drift, so the
  // update is about one step long, where without the term it is the sum of all steps.
  // (Momentum would turn the pull into a slowly damped oscillation.)
  static TrainSettings PlainSgd(double mu) {
    TrainSettings s = Settings();
    s.momentum = 0;
    s.proximal_mu = mu;
    return s;
  }
};

TEST_F(FedProxTrainingTest, MuZeroIsBitIdenticalToTrainingWithoutTheField) {
  const TrainResult plain = TrainLocal(spec_, *global_, *train_, Settings());
  TrainSettings zero = Settings();
  zero.proximal_mu = 0.0;
  const TrainResult with_zero = TrainLocal(spec_, *global_, *train_, zero);
  EXPECT_TRUE(EncodeModelState(plain.delta) == EncodeModelState(with_zero.delta))
      << "mu = 0 changed the update";
  EXPECT_EQ(plain.mean_loss, with_zero.mean_loss);
  EXPECT_EQ(plain.steps, with_zero.steps);
}

TEST_F(FedProxTrainingTest, LargeMuKeepsTheLocalModelNearTheGlobalModel) {
  TrainSettings fedavg = PlainSgd(0), near = PlainSgd(1), nearer = PlainSgd(100);
  for (TrainSettings* s : {&fedavg, &near, &nearer}) {
    s->local_epochs = 3;
    s->batch_size = 30;  // 30 steps, all full batches (a small last batch has a larger gradient)
  }
  const TrainResult a = TrainLocal(spec_, *global_, *train_, fedavg);
  const TrainResult b = TrainLocal(spec_, *global_, *train_, near);
  const TrainResult c = TrainLocal(spec_, *global_, *train_, nearer);
  const double n0 = Norm(a.delta), n1 = Norm(b.delta), n2 = Norm(c.delta);
  ASSERT_GT(n0, 0);
  EXPECT_LT(n1, n0) << "mu = 1 did not pull the model toward the global model";
  // One step against the sum of 30: between 1/30 (gradients all alike) and about 1/sqrt(30)
  // = 0.18 (batch gradients independent).
  EXPECT_LT(n2, 0.25 * n0) << "|delta| with mu = 100: " << n2 << ", with mu = 0: " << n0;
  EXPECT_GT(n2, 0) << "the data term should still move the model";
  // The reported loss is the cross-entropy alone (no proximal term): comparable, and finite.
  EXPECT_TRUE(std::isfinite(c.mean_loss));
  EXPECT_GT(c.mean_loss, 0);
}

TEST_F(FedProxTrainingTest, DpSgdAddsTheProximalGradientToThePrivateGradient) {
  DpSgdSettings dp;
  dp.noise_multiplier = 1.0;
  dp.clipping_norm = 1.0;
  dp.reproducible_seed = 11;  // the same sampling and noise in every run
  const TrainResult plain = TrainLocalDpSgd(spec_, *global_, *train_, Settings(), dp);
  TrainSettings zero = Settings();
  zero.proximal_mu = 0.0;
  const TrainResult with_zero = TrainLocalDpSgd(spec_, *global_, *train_, zero, dp);
  EXPECT_TRUE(EncodeModelState(plain.delta) == EncodeModelState(with_zero.delta))
      << "mu = 0 changed the DP-SGD update";

  TrainSettings fedavg = PlainSgd(0), fedprox = PlainSgd(100);
  fedavg.local_epochs = fedprox.local_epochs = 2;  // about 19 noisy steps
  const TrainResult a = TrainLocalDpSgd(spec_, *global_, *train_, fedavg, dp);
  const TrainResult b = TrainLocalDpSgd(spec_, *global_, *train_, fedprox, dp);
  // The same noisy steps (the privacy spend does not depend on mu) ...
  EXPECT_EQ(b.steps, a.steps);
  // ... but the update is about one step's private gradient instead of the sum of ~19, mostly
  // independent noise: about 1/sqrt(19) = 0.23 as long.
  EXPECT_LT(Norm(b.delta), 0.4 * Norm(a.delta))
      << "|delta| with mu = 100: " << Norm(b.delta) << ", with mu = 0: " << Norm(a.delta);
}

TEST(FedProxSettingsTest, ProximalMuMustBeFiniteAndNonNegative) {
  for (double bad : {-0.1, std::nan(""), HUGE_VAL}) {
    TrainSettings s;
    s.proximal_mu = bad;
    try {
      ValidateTrainSettings(s);
      FAIL() << "proximal_mu = " << bad << " was accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("proximal_mu"), std::string::npos) << e.what();
    }
  }
  TrainSettings ok;
  ok.proximal_mu = 0.01;
  EXPECT_NO_THROW(ValidateTrainSettings(ok));
}

}  // namespace
}  // namespace fedmed
