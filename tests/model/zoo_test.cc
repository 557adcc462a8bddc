#include "common/model/zoo.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/model/model_spec.h"
#include "common/model/torch_state.h"
#include "common/util/error.h"

namespace fedmed {
namespace {

int64_t ParameterCount(torch::nn::Module& m) {
  int64_t n = 0;
  for (const torch::Tensor& p : m.parameters()) n += p.numel();
  return n;
}

std::vector<std::string> ParameterNames(torch::nn::Module& m) {
  std::vector<std::string> names;
  for (const auto& p : m.named_parameters()) names.push_back(p.key());
  return names;
}

std::string ConfigErrorMessage(const ModelSpec& spec) {
  try {
    MakeModel(spec);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no ConfigError)";
}

TEST(ZooTest, ModelsMapImagesToLogits) {
  for (const std::string& name : ModelNames()) {
    for (int64_t channels : {1, 3}) {
      SCOPED_TRACE(name + " with " + std::to_string(channels) + " channels");
      const ModelSpec spec{name, channels, 3, 28};
      std::shared_ptr<Classifier> model = MakeModel(spec);
      model->eval();
      torch::NoGradGuard no_grad;
      const torch::Tensor logits = model->forward(torch::randn({2, channels, 28, 28}));
      EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 3}));
      EXPECT_EQ(logits.scalar_type(), torch::kFloat);
      EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
    }
  }
  // Other image sizes too (the CNN's fc1 follows image_size; MedMNIST also has 64 px).
  for (const std::string& name : ModelNames()) {
    std::shared_ptr<Classifier> model = MakeModel({name, 1, 2, 64});
    torch::NoGradGuard no_grad;
    EXPECT_EQ(model->forward(torch::randn({1, 1, 64, 64})).sizes(),
              (std::vector<int64_t>{1, 2}));
  }
}

TEST(ZooTest, CnnHasTheExpectedParameters) {
  std::shared_ptr<Classifier> cnn = MakeModel({"cnn", 1, 2, 28});
  EXPECT_EQ(ParameterNames(*cnn),
            (std::vector<std::string>{"conv1.weight", "conv1.bias", "gn1.weight", "gn1.bias",
                                      "conv2.weight", "conv2.bias", "gn2.weight", "gn2.bias",
                                      "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}));
  const int64_t conv1 = 32 * 1 * 3 * 3 + 32;    // 320
  const int64_t gn1 = 2 * 32;                   // 64
  const int64_t conv2 = 64 * 32 * 3 * 3 + 64;   // 18496
  const int64_t gn2 = 2 * 64;                   // 128
  const int64_t fc1 = (64 * 12 * 12) * 128 + 128;  // 28 -> 26 -> 24 -> pool 12: 1179776
  const int64_t fc2 = 128 * 2 + 2;              // 258
  EXPECT_EQ(ParameterCount(*cnn), conv1 + gn1 + conv2 + gn2 + fc1 + fc2);
  EXPECT_EQ(ParameterCount(*cnn), 1199042);
}

TEST(ZooTest, ResNet18HasTorchvisionStructure) {
  std::shared_ptr<Classifier> resnet = MakeModel({"resnet18", 1, 2, 28});
  // torchvision's resnet18 has 11,689,512 parameters (3-channel 7x7 conv1, 1000 classes); with
  // a 1-channel 3x3 conv1 and 2 classes: - 3*7*7*64 + 1*3*3*64 - 513*1000 + 513*2.
  EXPECT_EQ(ParameterCount(*resnet), 11689512 - 9408 + 576 - 513000 + 1026);
  const std::vector<std::string> names = ParameterNames(*resnet);
  ASSERT_EQ(names.size(), 62u);
  EXPECT_EQ(names[0], "conv1.weight");
  EXPECT_EQ(names[1], "gn1.weight");
  EXPECT_EQ(names[3], "layer1.0.conv1.weight");
  EXPECT_EQ(names[21], "layer2.0.downsample.0.weight");
  EXPECT_EQ(names[22], "layer2.0.downsample.1.weight");
  EXPECT_EQ(names[60], "fc.weight");
  EXPECT_EQ(names[61], "fc.bias");
  for (const auto& m : resnet->modules(false)) {
    if (auto* norm = m->as<torch::nn::GroupNorm>()) {
      EXPECT_EQ(norm->options.num_groups(), 32);
    }
  }
}

TEST(ZooTest, NoBatchNormAndNoBuffers) {
  for (const std::string& name : ModelNames()) {
    std::shared_ptr<Classifier> model = MakeModel({name, 3, 4, 28});
    int norms = 0;
    for (const auto& m : model->modules(false)) {
      EXPECT_EQ(m->as<torch::nn::BatchNorm1d>(), nullptr) << name;
      EXPECT_EQ(m->as<torch::nn::BatchNorm2d>(), nullptr) << name;
      EXPECT_EQ(m->as<torch::nn::BatchNorm3d>(), nullptr) << name;
      EXPECT_EQ(m->name().find("BatchNorm"), std::string::npos) << m->name();
      norms += m->as<torch::nn::GroupNorm>() != nullptr;
    }
    EXPECT_GT(norms, 0) << name;
    EXPECT_TRUE(model->buffers().empty()) << name;
  }
}

TEST(ZooTest, InitialisationDependsOnTheSeedOnly) {
  for (const std::string& name : ModelNames()) {
    const ModelSpec spec{name, 1, 2, 28};
    torch::manual_seed(1);
    const ModelState a = ExportState(*MakeModel(spec, 42));
    torch::manual_seed(2);  // the global generator must not matter
    const ModelState b = ExportState(*MakeModel(spec, 42));
    const ModelState c = ExportState(*MakeModel(spec, 43));
    EXPECT_EQ(EncodeModelState(a), EncodeModelState(b)) << name;
    EXPECT_NE(EncodeModelState(a), EncodeModelState(c)) << name;
  }
}

TEST(ZooTest, InitialisationFollowsPyTorch) {
  const ModelState cnn = ExportState(*MakeModel({"cnn", 1, 2, 28}, 5));
  // Uniform in +-1/sqrt(fan_in): max |w| near the bound, std = bound / sqrt(3).
  const NamedTensor* fc1 = cnn.Find("fc1.weight");
  ASSERT_NE(fc1, nullptr);
  const torch::Tensor w = torch::tensor(fc1->values);
  const double bound = 1.0 / std::sqrt(9216.0);
  EXPECT_LE(w.abs().max().item<double>(), bound);
  EXPECT_GT(w.abs().max().item<double>(), 0.99 * bound);
  EXPECT_NEAR(w.std().item<double>(), bound / std::sqrt(3.0), 0.01 * bound);
  EXPECT_EQ(cnn.Find("gn1.weight")->values, std::vector<float>(32, 1.0f));
  EXPECT_EQ(cnn.Find("gn1.bias")->values, std::vector<float>(32, 0.0f));

  // ResNet-18 convolutions: normal with std sqrt(2 / fan_out).
  const ModelState resnet = ExportState(*MakeModel({"resnet18", 1, 2, 28}, 5));
  const torch::Tensor conv = torch::tensor(resnet.Find("layer3.0.conv2.weight")->values);
  EXPECT_NEAR(conv.std().item<double>(), std::sqrt(2.0 / (256 * 9)), 0.002);
  EXPECT_NEAR(conv.mean().item<double>(), 0.0, 0.001);
}

TEST(ZooTest, DropoutIsOffInEvalModeAndSeededInTraining) {
  std::shared_ptr<Classifier> model = MakeModel({"cnn", 1, 2, 28});
  const torch::Tensor x = torch::randn({4, 1, 28, 28});
  torch::NoGradGuard no_grad;
  model->eval();
  EXPECT_TRUE(torch::equal(model->forward(x), model->forward(x)));
  model->train();
  model->set_dropout_generator(at::make_generator<at::CPUGeneratorImpl>(9));
  const torch::Tensor first = model->forward(x);
  const torch::Tensor second = model->forward(x);
  EXPECT_FALSE(torch::equal(first, second));
  model->set_dropout_generator(at::make_generator<at::CPUGeneratorImpl>(9));
  EXPECT_TRUE(torch::equal(model->forward(x), first));
}

TEST(ZooTest, BadSpecsAreConfigErrors) {
  const std::string unknown = ConfigErrorMessage({"vgg16", 1, 2, 28});
  EXPECT_NE(unknown.find("\"vgg16\""), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("\"cnn\", \"resnet18\""), std::string::npos) << unknown;
  EXPECT_NE(ConfigErrorMessage({"cnn", 2, 2, 28}).find("in_channels: 2"), std::string::npos);
  EXPECT_NE(ConfigErrorMessage({"cnn", 1, 1, 28}).find("num_classes: 1"), std::string::npos);
  EXPECT_NE(ConfigErrorMessage({"resnet18", 1, 2, 4}).find("image_size: 4"), std::string::npos);
  EXPECT_NO_THROW(ValidateModelSpec(ModelSpec{}));
  try {
    ValidateModelSpec({"cnn", 0, 2, 28}, "coordinator.toml [model]");
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("coordinator.toml [model].in_channels"),
              std::string::npos)
        << e.what();
  }
}

TEST(TorchStateTest, ExportImportRoundTrip) {
  std::shared_ptr<Classifier> a = MakeModel({"cnn", 1, 2, 28}, 1);
  std::shared_ptr<Classifier> b = MakeModel({"cnn", 1, 2, 28}, 2);
  const ModelState state = ExportState(*a);
  ASSERT_EQ(state.tensors.size(), 12u);
  EXPECT_EQ(state.tensors[8].name, "fc1.weight");
  EXPECT_EQ(state.tensors[8].shape, (std::vector<int64_t>{128, 9216}));
  EXPECT_EQ(state.NumValues(), 1199042);
  const torch::Tensor fc1_before = b->named_parameters()["fc1.weight"];
  ImportState(*b, state);
  // Same tensor object (an optimizer holding it sees the new values), new values.
  EXPECT_TRUE(b->named_parameters()["fc1.weight"].is_same(fc1_before));
  EXPECT_EQ(EncodeModelState(ExportState(*b)), EncodeModelState(state));
}

TEST(TorchStateTest, ImportRejectsOtherLayoutsAndChangesNothing) {
  std::shared_ptr<Classifier> cnn = MakeModel({"cnn", 1, 2, 28}, 1);
  const std::string before = EncodeModelState(ExportState(*cnn));
  const ModelState three_classes = ExportState(*MakeModel({"cnn", 1, 3, 28}));
  try {
    ImportState(*cnn, three_classes);
    ADD_FAILURE() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("'fc2.weight'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[3, 128]"), std::string::npos) << e.what();
  }
  EXPECT_EQ(EncodeModelState(ExportState(*cnn)), before);
  try {
    ImportState(*cnn, ExportState(*MakeModel({"resnet18", 1, 2, 28})));
    ADD_FAILURE() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("'conv1.weight' has shape [64, 1, 3, 3]"),
              std::string::npos)
        << e.what();
  }
  ModelState truncated = ExportState(*cnn);
  truncated.tensors.pop_back();
  try {
    ImportState(*cnn, truncated);
    ADD_FAILURE() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("missing one is 'fc2.bias'"), std::string::npos)
        << e.what();
  }
}

TEST(TorchStateTest, ImagesToTensorNormalises) {
  ImageSet set;
  set.height = 2;
  set.width = 2;
  set.channels = 3;
  set.num_classes = 2;
  // Two images, NHWC: image 0 all 0, image 1 pixel values 0, 51, 255 by channel.
  set.pixels = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 51, 255, 0, 51, 255, 0, 51, 255, 0, 51, 255};
  set.labels = {0, 1};
  const torch::Tensor images = ImagesToTensor(set, 1, 1);
  EXPECT_EQ(images.sizes(), (std::vector<int64_t>{1, 3, 2, 2}));
  EXPECT_FLOAT_EQ(images[0][0][1][1].item<float>(), -1.0f);
  EXPECT_FLOAT_EQ(images[0][1][0][0].item<float>(), -0.6f);
  EXPECT_FLOAT_EQ(images[0][2][1][0].item<float>(), 1.0f);
  EXPECT_EQ(LabelsToTensor(set, 0, 2).sizes(), (std::vector<int64_t>{2}));
  EXPECT_EQ(LabelsToTensor(set, 1, 1)[0].item<int64_t>(), 1);
  EXPECT_THROW(ImagesToTensor(set, 1, 2), DataError);
  EXPECT_THROW(LabelsToTensor(set, -1, 1), DataError);
  EXPECT_THROW(CheckDataFitsModel(set, ModelSpec{}, "tiny set"), DataError);
}

}  // namespace
}  // namespace fedmed
