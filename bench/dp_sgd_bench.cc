// Training throughput of DP-SGD against non-private training, measured in the same run: the
// "cnn" (and "resnet18", where ghost norms matter most) on PneumoniaMNIST-sized input
// (1 x 28 x 28, 2 classes), batch 32, one compute thread, train mode (dropout on), SGD with
// momentum. Each variant reports images/s as a counter, so the ratio DP / non-private can be
// read off one run (docs/BENCHMARKS.md):
//   BM_NonPrivateStep        forward, mean cross-entropy, backward, optimizer step (TrainLocal's
//                            inner loop)
//   BM_DpSgdStep             DpSgdStep::Run (per-sample clipping by ghost / materialised norms
//                            chosen per layer, noise sigma = 1, C = 1) + optimizer step
//   BM_DpSgdStepMaterialised the same with every per-sample gradient materialised
//                            (NormMethod::kMaterialize: fc1's 32 x 1.18 M per-sample tensor)
//   BM_NaivePerSampleDpStep  the definition: forward and backward once per sample, clip each
//                            .grad, sum, noise, step — what vectorisation saves
// The batch is a fixed 32 images (the expected Poisson batch) of random pixels: throughput does
// not depend on the pixel values.
#include <benchmark/benchmark.h>

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "common/model/local_training.h"
#include "common/model/zoo.h"
#include "common/privacy/dp_sgd.h"
#include "common/privacy/per_sample_gradients.h"

namespace fedmed {
namespace {

constexpr int64_t kBatch = 32;

struct Setup {
  std::shared_ptr<Classifier> model;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  torch::Tensor images, labels;

  explicit Setup(const char* name) {
    SetComputeThreads(1);
    model = MakeModel({name, 1, 2, 28}, 1);
    model->set_dropout_generator(at::make_generator<at::CPUGeneratorImpl>(2));
    model->train();
    TrainSettings settings;
    settings.optimizer = "sgd";
    settings.learning_rate = 0.01;
    optimizer = MakeTrainOptimizer(*model, settings);
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(3);
    images = torch::rand({kBatch, 1, 28, 28}, gen) * 2 - 1;
    labels = torch::randint(0, 2, {kBatch}, gen, torch::kLong);
  }
};

void ReportImages(benchmark::State& state) {
  state.counters["images/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * kBatch), benchmark::Counter::kIsRate);
}

void BM_NonPrivateStep(benchmark::State& state, const char* model) {
  Setup s(model);
  for (auto _ : state) {
    s.optimizer->zero_grad();
    const torch::Tensor loss =
        torch::nn::functional::cross_entropy(s.model->forward(s.images), s.labels);
    benchmark::DoNotOptimize(loss.item<double>());
    loss.backward();
    s.optimizer->step();
  }
  ReportImages(state);
}

void DpSgd(benchmark::State& state, const char* model, NormMethod method) {
  Setup s(model);
  DpSgdStep step(*s.model, {1.0, 1.0, std::nullopt}, static_cast<double>(kBatch),
                 at::make_generator<at::CPUGeneratorImpl>(4), method);
  for (auto _ : state) {
    benchmark::DoNotOptimize(step.Run(s.images, s.labels));
    s.optimizer->step();
  }
  ReportImages(state);
}

void BM_DpSgdStep(benchmark::State& state, const char* model) {
  DpSgd(state, model, NormMethod::kAuto);
}
void BM_DpSgdStepMaterialised(benchmark::State& state, const char* model) {
  DpSgd(state, model, NormMethod::kMaterialize);
}

void BM_NaivePerSampleDpStep(benchmark::State& state, const char* model) {
  Setup s(model);
  const std::vector<torch::Tensor> params = s.model->parameters();
  at::Generator noise = at::make_generator<at::CPUGeneratorImpl>(4);
  const double clip = 1.0, sigma = 1.0;
  for (auto _ : state) {
    std::vector<torch::Tensor> sum;
    for (const torch::Tensor& p : params) sum.push_back(torch::zeros_like(p));
    for (int64_t b = 0; b < kBatch; ++b) {
      s.model->zero_grad();
      torch::nn::functional::cross_entropy(s.model->forward(s.images.narrow(0, b, 1)),
                                           s.labels.narrow(0, b, 1))
          .backward();
      torch::NoGradGuard no_grad;
      torch::Tensor norm_sq = torch::zeros({});
      for (const torch::Tensor& p : params) norm_sq += p.grad().square().sum();
      const double factor = std::min(1.0, clip / (std::sqrt(norm_sq.item<double>()) + 1e-6));
      for (size_t i = 0; i < params.size(); ++i) sum[i].add_(params[i].grad(), factor);
    }
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) {
      torch::Tensor param = params[i];
      param.mutable_grad() =
          (sum[i] + torch::empty_like(sum[i]).normal_(0.0, sigma * clip, noise)) / kBatch;
    }
    s.optimizer->step();
  }
  ReportImages(state);
}

BENCHMARK_CAPTURE(BM_NonPrivateStep, cnn, "cnn")->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK_CAPTURE(BM_DpSgdStep, cnn, "cnn")->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK_CAPTURE(BM_DpSgdStepMaterialised, cnn, "cnn")
    ->Unit(benchmark::kMillisecond)
    ->MinTime(3.0);
BENCHMARK_CAPTURE(BM_NaivePerSampleDpStep, cnn, "cnn")
    ->Unit(benchmark::kMillisecond)
    ->MinTime(3.0);
// ResNet-18 takes seconds per step on one thread: a few iterations only.
BENCHMARK_CAPTURE(BM_NonPrivateStep, resnet18, "resnet18")
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);
BENCHMARK_CAPTURE(BM_DpSgdStep, resnet18, "resnet18")
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

}  // namespace
}  // namespace fedmed

BENCHMARK_MAIN();
