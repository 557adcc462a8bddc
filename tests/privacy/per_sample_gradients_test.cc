// Per-sample gradients (common/privacy/per_sample_gradients.h) against the definition: one
// forward and backward per sample. Comparisons use the maximum absolute difference divided by
// the largest magnitude of the reference (per parameter), "relative to max" below.
#include "common/privacy/per_sample_gradients.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "common/model/layer_tape.h"
#include "common/model/local_training.h"
#include "common/util/error.h"

namespace fedmed {
namespace {

namespace nn = torch::nn;

// max |a - b| / max |b| (b the reference); 0 when both are zero.
double RelativeToMax(const torch::Tensor& a, const torch::Tensor& b) {
  const double scale = b.abs().max().item<double>();
  const double diff = (a - b).abs().max().item<double>();
  return scale > 0 ? diff / scale : diff;
}

struct Batch {
  torch::Tensor images, labels;
};

Batch RandomBatch(int64_t b, int64_t channels, int64_t size, int64_t classes,
                  torch::ScalarType dtype, uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  Batch batch;
  batch.images = torch::randn({b, channels, size, size}, gen, torch::kDouble).to(dtype);
  batch.labels = torch::randint(0, classes, {b}, gen, torch::kLong);
  return batch;
}

std::shared_ptr<Classifier> Model(const ModelSpec& spec, torch::ScalarType dtype) {
  std::shared_ptr<Classifier> model = MakeModel(spec, 5);
  model->to(dtype);
  model->eval();  // no dropout: the per-sample loop sees the same function
  return model;
}

// The definition: sample b alone through forward and backward, parameter .grad.
std::vector<torch::Tensor> OneSampleAtATime(Classifier& model, const Batch& batch) {
  const std::vector<torch::Tensor> params = model.parameters();
  std::vector<std::vector<torch::Tensor>> rows(params.size());
  for (int64_t b = 0; b < batch.images.size(0); ++b) {
    model.zero_grad();
    const torch::Tensor loss = torch::nn::functional::cross_entropy(
        model.forward(batch.images.narrow(0, b, 1)), batch.labels.narrow(0, b, 1));
    loss.backward();
    for (size_t i = 0; i < params.size(); ++i) rows[i].push_back(params[i].grad().clone());
  }
  model.zero_grad();
  std::vector<torch::Tensor> out;
  for (auto& r : rows) out.push_back(torch::stack(r));
  return out;
}

// The per-sample norms over all parameters, from materialised per-sample gradients.
torch::Tensor Norms(const std::vector<torch::Tensor>& per_sample) {
  torch::Tensor sq = torch::zeros({per_sample.front().size(0)}, per_sample.front().options());
  for (const torch::Tensor& t : per_sample) sq += t.flatten(1).square().sum(1);
  return sq.sqrt();
}

void ExpectMatchesLoop(const ModelSpec& spec, torch::ScalarType dtype, int64_t b,
                       double tolerance) {
  std::shared_ptr<Classifier> model = Model(spec, dtype);
  const Batch batch = RandomBatch(b, spec.in_channels, spec.image_size, spec.num_classes, dtype, 3);
  const std::vector<torch::Tensor> fast = PerSampleGradients(*model, batch.images, batch.labels);
  const std::vector<torch::Tensor> loop = OneSampleAtATime(*model, batch);
  const auto named = model->named_parameters();
  ASSERT_EQ(fast.size(), named.size());
  double worst = 0;
  for (size_t i = 0; i < fast.size(); ++i) {
    SCOPED_TRACE(named[i].key());
    std::vector<int64_t> shape = named[i].value().sizes().vec();
    shape.insert(shape.begin(), b);
    ASSERT_EQ(fast[i].sizes().vec(), shape);
    EXPECT_EQ(fast[i].scalar_type(), dtype);
    ASSERT_GT(loop[i].abs().max().item<double>(), 0.0);  // a real gradient, not zeros
    const double err = RelativeToMax(fast[i], loop[i]);
    EXPECT_LE(err, tolerance);
    worst = std::max(worst, err);
  }
  std::printf("%s %s B=%lld: worst per-parameter error relative to max %.3g\n",
              spec.name.c_str(), c10::toString(dtype), static_cast<long long>(b), worst);
}

class PerSampleGradientsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { SetComputeThreads(1); }
};

// float64 isolates the formulas from float32 rounding: agreement to ~1e-12 is expected.
TEST_F(PerSampleGradientsTest, CnnMatchesOneSampleAtATimeInFloat64) {
  ExpectMatchesLoop({"cnn", 1, 2, 28}, torch::kDouble, 4, 1e-9);
}

TEST_F(PerSampleGradientsTest, ResNet18MatchesOneSampleAtATimeInFloat64) {
  // 16 px keeps float64 (no oneDNN) fast; every layer kind, stride and the downsample path run.
  ExpectMatchesLoop({"resnet18", 3, 3, 16}, torch::kDouble, 3, 1e-9);
}

// float32 runs the oneDNN kernels (grouped convolution backward, inner products).
TEST_F(PerSampleGradientsTest, CnnMatchesOneSampleAtATimeInFloat32) {
  ExpectMatchesLoop({"cnn", 1, 2, 28}, torch::kFloat, 4, 1e-5);
}

TEST_F(PerSampleGradientsTest, ResNet18MatchesOneSampleAtATimeInFloat32) {
  ExpectMatchesLoop({"resnet18", 1, 2, 28}, torch::kFloat, 4, 1e-5);
}

// The efficient path (each NormMethod) against the definition built from materialised
// per-sample gradients: norms, clip factors, the clipped sum, and that clipping bounds norms.
void ExpectClippedSumMatches(const ModelSpec& spec, torch::ScalarType dtype, int64_t b,
                             double tolerance) {
  std::shared_ptr<Classifier> model = Model(spec, dtype);
  const Batch batch =
      RandomBatch(b, spec.in_channels, spec.image_size, spec.num_classes, dtype, 8);
  const std::vector<torch::Tensor> per_sample =
      PerSampleGradients(*model, batch.images, batch.labels);
  const torch::Tensor norms = Norms(per_sample);
  // C between the smallest and the largest norm: some samples clipped, some not.
  const double clip = norms.median().item<double>();
  const torch::Tensor c = ClipFactors(norms, clip);
  ASSERT_GT((c < 1).sum().item<int64_t>(), 0);
  ASSERT_GT((c == 1).sum().item<int64_t>(), 0);

  // Clipping bounds every per-sample norm by C: to 1e-6 absolute for C ~ 1, and relative for
  // larger C (float32 norms carry a relative rounding error of ~1e-7; here C is the median
  // norm of random images, ~30). Measured in float64.
  std::vector<torch::Tensor> clipped, clipped64;
  for (const torch::Tensor& t : per_sample) {
    std::vector<int64_t> shape(static_cast<size_t>(t.dim()), 1);
    shape[0] = b;
    clipped.push_back(t * c.view(shape));
    clipped64.push_back(t.to(torch::kDouble) * c.to(torch::kDouble).view(shape));
  }
  EXPECT_LE(Norms(clipped64).max().item<double>(), clip + 1e-6 * std::max(1.0, clip));

  for (const NormMethod method :
       {NormMethod::kAuto, NormMethod::kGhost, NormMethod::kMaterialize}) {
    SCOPED_TRACE("method " + std::to_string(static_cast<int>(method)));
    const ClippedGradientSum r =
        ComputeClippedGradientSum(*model, batch.images, batch.labels, clip, method);
    EXPECT_LE(RelativeToMax(r.norms, norms), tolerance);
    EXPECT_LE((r.clip_factors - c).abs().max().item<double>(), 10 * tolerance);
    EXPECT_EQ(r.losses.sizes().vec(), std::vector<int64_t>{b});
    ASSERT_EQ(r.sum.size(), per_sample.size());
    double worst = 0;
    for (size_t i = 0; i < per_sample.size(); ++i) {
      const torch::Tensor expected = clipped[i].sum(0);
      ASSERT_EQ(r.sum[i].sizes(), expected.sizes());
      worst = std::max(worst, RelativeToMax(r.sum[i], expected));
    }
    EXPECT_LE(worst, tolerance);
    std::printf("%s %s method %d: norms error %.3g, worst clipped-sum error %.3g\n",
                spec.name.c_str(), c10::toString(dtype), static_cast<int>(method),
                RelativeToMax(r.norms, norms), worst);
  }
}

TEST_F(PerSampleGradientsTest, CnnClippedSumMatchesMaterialisedInFloat64) {
  ExpectClippedSumMatches({"cnn", 1, 2, 28}, torch::kDouble, 5, 1e-9);
}

TEST_F(PerSampleGradientsTest, ResNet18ClippedSumMatchesMaterialisedInFloat64) {
  ExpectClippedSumMatches({"resnet18", 1, 2, 16}, torch::kDouble, 3, 1e-9);
}

TEST_F(PerSampleGradientsTest, CnnClippedSumMatchesMaterialisedInFloat32) {
  ExpectClippedSumMatches({"cnn", 1, 2, 28}, torch::kFloat, 8, 1e-5);
}

TEST_F(PerSampleGradientsTest, ResNet18ClippedSumMatchesMaterialisedInFloat32) {
  ExpectClippedSumMatches({"resnet18", 1, 2, 28}, torch::kFloat, 4, 1e-5);
}

TEST_F(PerSampleGradientsTest, HugeClippingNormGivesTheBatchGradient) {
  // Nothing clipped: the clipped sum is the gradient of the summed loss.
  std::shared_ptr<Classifier> model = Model({"cnn", 1, 2, 28}, torch::kDouble);
  const Batch batch = RandomBatch(6, 1, 28, 2, torch::kDouble, 4);
  const ClippedGradientSum r =
      ComputeClippedGradientSum(*model, batch.images, batch.labels, 1e9);
  EXPECT_EQ((r.clip_factors == 1).sum().item<int64_t>(), 6);
  model->zero_grad();
  torch::nn::functional::cross_entropy(
      model->forward(batch.images), batch.labels,
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
      .backward();
  const std::vector<torch::Tensor> params = model->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_LE(RelativeToMax(r.sum[i], params[i].grad()), 1e-9) << i;
  }
}

// A layer called twice in one forward accumulates both calls' contributions.
class TwiceCalled : public Classifier {
 public:
  TwiceCalled() {
    shared_ = register_module("shared", nn::Linear(16, 16));
    head_ = register_module("head", nn::Linear(16, 3));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = x.flatten(1);
    x = torch::tanh(Taped(shared_, x));
    x = torch::tanh(Taped(shared_, x));
    return Taped(head_, x);
  }

 private:
  nn::Linear shared_{nullptr}, head_{nullptr};
};

TEST_F(PerSampleGradientsTest, LayerCalledTwiceAccumulates) {
  auto model = std::make_shared<TwiceCalled>();
  model->to(torch::kDouble);
  const Batch batch = RandomBatch(5, 1, 4, 3, torch::kDouble, 6);
  const std::vector<torch::Tensor> fast = PerSampleGradients(*model, batch.images, batch.labels);
  const std::vector<torch::Tensor> loop = OneSampleAtATime(*model, batch);
  for (size_t i = 0; i < fast.size(); ++i) EXPECT_LE(RelativeToMax(fast[i], loop[i]), 1e-10);
  const torch::Tensor norms = Norms(fast);
  const double clip = norms.median().item<double>();
  const ClippedGradientSum r = ComputeClippedGradientSum(*model, batch.images, batch.labels,
                                                         clip, NormMethod::kGhost);
  EXPECT_LE(RelativeToMax(r.norms, norms), 1e-10);
}

// Linear on (B, T, in) inputs: the extra dimension is summed over (ghost norm by Gram matrices).
class TokenLinear : public Classifier {
 public:
  TokenLinear() {
    proj_ = register_module("proj", nn::Linear(4, 5));
    head_ = register_module("head", nn::Linear(5, 2));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = x.flatten(2);  // (B, C, H*W): C "tokens" of H*W = 4 features
    x = torch::relu(Taped(proj_, x)).mean(1);
    return Taped(head_, x);
  }

 private:
  nn::Linear proj_{nullptr}, head_{nullptr};
};

TEST_F(PerSampleGradientsTest, LinearOnSequencesMatchesLoop) {
  auto model = std::make_shared<TokenLinear>();
  model->to(torch::kDouble);
  const Batch batch = RandomBatch(4, 6, 2, 2, torch::kDouble, 9);
  const std::vector<torch::Tensor> fast = PerSampleGradients(*model, batch.images, batch.labels);
  const std::vector<torch::Tensor> loop = OneSampleAtATime(*model, batch);
  for (size_t i = 0; i < fast.size(); ++i) EXPECT_LE(RelativeToMax(fast[i], loop[i]), 1e-10);
  const torch::Tensor norms = Norms(fast);
  for (const NormMethod method : {NormMethod::kGhost, NormMethod::kMaterialize}) {
    const ClippedGradientSum r = ComputeClippedGradientSum(
        *model, batch.images, batch.labels, norms.median().item<double>(), method);
    EXPECT_LE(RelativeToMax(r.norms, norms), 1e-10);
  }
}

// Conv2d with stride, padding and dilation (the zoo has no dilation).
class DilatedConv : public Classifier {
 public:
  DilatedConv() {
    conv_ = register_module(
        "conv", nn::Conv2d(nn::Conv2dOptions(2, 3, 3).stride(2).padding(2).dilation(2)));
    norm_ = register_module("norm", nn::GroupNorm(nn::GroupNormOptions(3, 3)));
    fc_ = register_module("fc", nn::Linear(3 * 5 * 5, 2));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(Taped(norm_, Taped(conv_, x)));
    return Taped(fc_, x.flatten(1));
  }

 private:
  nn::Conv2d conv_{nullptr};
  nn::GroupNorm norm_{nullptr};
  nn::Linear fc_{nullptr};
};

TEST_F(PerSampleGradientsTest, DilatedStridedConvMatchesLoop) {
  auto model = std::make_shared<DilatedConv>();
  model->to(torch::kDouble);
  const Batch batch = RandomBatch(4, 2, 9, 2, torch::kDouble, 10);
  const std::vector<torch::Tensor> fast = PerSampleGradients(*model, batch.images, batch.labels);
  const std::vector<torch::Tensor> loop = OneSampleAtATime(*model, batch);
  for (size_t i = 0; i < fast.size(); ++i) EXPECT_LE(RelativeToMax(fast[i], loop[i]), 1e-10);
  const torch::Tensor norms = Norms(fast);
  const ClippedGradientSum r = ComputeClippedGradientSum(
      *model, batch.images, batch.labels, norms.median().item<double>(), NormMethod::kGhost);
  EXPECT_LE(RelativeToMax(r.norms, norms), 1e-10);
}

// ---- refusals ----

class WithBatchNorm : public Classifier {
 public:
  WithBatchNorm() {
    conv_ = register_module("conv", nn::Conv2d(nn::Conv2dOptions(1, 4, 3)));
    bn_ = register_module("bn1", nn::BatchNorm2d(4));
    fc_ = register_module("fc", nn::Linear(4 * 6 * 6, 2));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(bn_(Taped(conv_, x)));
    return Taped(fc_, x.flatten(1));
  }

 private:
  nn::Conv2d conv_{nullptr};
  nn::BatchNorm2d bn_{nullptr};
  nn::Linear fc_{nullptr};
};

std::string ConfigErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no ConfigError)";
}

TEST_F(PerSampleGradientsTest, BatchNormIsRefusedByName) {
  WithBatchNorm model;
  const std::string message = ConfigErrorOf([&] { CheckDpSgdSupport(model); });
  EXPECT_NE(message.find("\"bn1\""), std::string::npos) << message;
  EXPECT_NE(message.find("BatchNorm2d"), std::string::npos) << message;
  EXPECT_NE(message.find("use GroupNorm"), std::string::npos) << message;
  EXPECT_NE(message.find("Linear, Conv2d"), std::string::npos) << message;
  const Batch batch = RandomBatch(2, 1, 8, 2, torch::kFloat, 1);
  EXPECT_THROW(PerSampleGradients(model, batch.images, batch.labels), ConfigError);
  EXPECT_THROW(ComputeClippedGradientSum(model, batch.images, batch.labels, 1.0), ConfigError);
}

TEST_F(PerSampleGradientsTest, GroupedConvolutionIsRefused) {
  nn::Sequential model(nn::Conv2d(nn::Conv2dOptions(4, 4, 3).groups(2)));
  const std::string message = ConfigErrorOf([&] { CheckDpSgdSupport(*model); });
  EXPECT_NE(message.find("\"0\""), std::string::npos) << message;
  EXPECT_NE(message.find("groups = 2"), std::string::npos) << message;
  nn::Sequential reflect(
      nn::Linear(3, 3),
      nn::Conv2d(nn::Conv2dOptions(4, 4, 3).padding(1).padding_mode(torch::kReflect)));
  const std::string padding = ConfigErrorOf([&] { CheckDpSgdSupport(*reflect); });
  EXPECT_NE(padding.find("\"1\""), std::string::npos) << padding;
  EXPECT_NE(padding.find("zero padding"), std::string::npos) << padding;
  nn::Sequential fine(nn::Conv2d(nn::Conv2dOptions(4, 4, 3)), nn::GroupNorm(2, 4),
                      nn::Linear(3, 3), nn::ReLU());
  EXPECT_NO_THROW(CheckDpSgdSupport(*fine));
  for (const std::string& name : ModelNames()) {
    EXPECT_NO_THROW(CheckDpSgdSupport(*MakeModel({name, 1, 2, 28})));
  }
}

class Untaped : public Classifier {
 public:
  Untaped() {
    conv_ = register_module("conv", nn::Conv2d(nn::Conv2dOptions(1, 2, 3)));
    fc_ = register_module("fc", nn::Linear(2 * 6 * 6, 2));
  }
  torch::Tensor forward(torch::Tensor x) override {
    return fc_(torch::relu(Taped(conv_, x)).flatten(1));  // fc not taped
  }

 private:
  nn::Conv2d conv_{nullptr};
  nn::Linear fc_{nullptr};
};

TEST_F(PerSampleGradientsTest, UntapedLayerIsReportedByParameterName) {
  Untaped model;
  const Batch batch = RandomBatch(2, 1, 8, 2, torch::kFloat, 1);
  try {
    PerSampleGradients(model, batch.images, batch.labels);
    ADD_FAILURE() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"fc.weight\""), std::string::npos) << e.what();
  }
}

TEST_F(PerSampleGradientsTest, BadBatchesAreDataErrors) {
  std::shared_ptr<Classifier> model = Model({"cnn", 1, 2, 28}, torch::kFloat);
  const Batch batch = RandomBatch(2, 1, 28, 2, torch::kFloat, 1);
  EXPECT_THROW(PerSampleGradients(*model, batch.images.to(torch::kDouble), batch.labels),
               DataError);
  EXPECT_THROW(PerSampleGradients(*model, batch.images, batch.labels.to(torch::kInt)),
               DataError);
  EXPECT_THROW(PerSampleGradients(*model, batch.images, batch.labels.narrow(0, 0, 1)),
               DataError);
  EXPECT_THROW(PerSampleGradients(*model, batch.images[0], batch.labels), DataError);
  EXPECT_THROW(PerSampleGradients(*model, batch.images, batch.labels + 5), DataError);
  EXPECT_THROW(PerSampleGradients(*model, batch.images.narrow(0, 0, 0),
                                  batch.labels.narrow(0, 0, 0)),
               DataError);
  EXPECT_THROW(ComputeClippedGradientSum(*model, batch.images, batch.labels, 0.0), ConfigError);
  EXPECT_THROW(ComputeClippedGradientSum(*model, batch.images, batch.labels, NAN), ConfigError);
  // An empty batch is fine for the clipped sum: zeros.
  const ClippedGradientSum empty = ComputeClippedGradientSum(
      *model, batch.images.narrow(0, 0, 0), batch.labels.narrow(0, 0, 0), 1.0);
  EXPECT_EQ(empty.norms.numel(), 0);
  ASSERT_EQ(empty.sum.size(), model->parameters().size());
  for (const torch::Tensor& t : empty.sum) EXPECT_EQ(t.abs().max().item<double>(), 0.0);
}

TEST(LayerTapeTest, RecordsOnlyWhileActiveWithQualifiedNames) {
  std::shared_ptr<Classifier> model = MakeModel({"resnet18", 1, 2, 16});
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({1, 1, 16, 16});
  LayerTape tape(*model);
  model->forward(x);
  EXPECT_TRUE(tape.records().empty());
  EXPECT_EQ(LayerTape::Active(), nullptr);
  {
    LayerTape::Scope scope(tape);
    EXPECT_EQ(LayerTape::Active(), &tape);
    model->forward(x);
  }
  EXPECT_EQ(LayerTape::Active(), nullptr);
  // Every parametrised layer once, in forward order, named as its parameters' prefix.
  std::vector<std::string> names;
  for (const LayerTape::Record& r : tape.records()) names.push_back(r.name);
  ASSERT_EQ(names.size(), 1u + 1u + 4u * 2u * 4u + 3u * 2u + 1u);  // conv1 gn1, blocks, ds, fc
  EXPECT_EQ(names[0], "conv1");
  EXPECT_EQ(names[2], "layer1.0.conv1");
  EXPECT_NE(std::find(names.begin(), names.end(), "layer2.0.downsample.0"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "layer2.0.downsample.1"), names.end());
  EXPECT_EQ(names.back(), "fc");
  std::vector<std::string> prefixes;
  for (const auto& p : model->named_parameters()) {
    prefixes.push_back(p.key().substr(0, p.key().rfind('.')));
  }
  for (const std::string& name : names) {
    EXPECT_NE(std::find(prefixes.begin(), prefixes.end(), name), prefixes.end()) << name;
  }
  EXPECT_EQ(tape.records()[0].output.sizes(), (std::vector<int64_t>{1, 64, 16, 16}));
  EXPECT_TRUE(tape.records()[0].input.equal(x));
}

}  // namespace
}  // namespace fedmed
