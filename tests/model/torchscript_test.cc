// Bring your own model, take the model out, fine-tune: TorchScript models made here with
// Debian's python3-torch are trained from C++ on real PneumoniaMNIST images, exported back to
// TorchScript and run by Python; zoo models are exported and run by Python; initial weights are
// loaded from state dicts and scripts; layers are frozen.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/data/medmnist.h"
#include "common/model/architecture.h"
#include "common/model/checkpoint.h"
#include "common/model/evaluation.h"
#include "common/model/frozen_layers.h"
#include "common/model/local_training.h"
#include "common/model/model_io.h"
#include "common/model/torch_state.h"
#include "common/model/torchscript_model.h"
#include "common/model/zoo.h"
#include "common/privacy/dp_sgd.h"
#include "common/util/data_path.h"
#include "common/util/error.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;

// Makes the TorchScript models and state dicts the tests use, in argv[1]; prints, for the
// models the tests compare with, their eval-mode logits on the probe input and their parameters.
constexpr char kMakeModels[] = R"PY(
import sys, torch, torch.nn as nn, torch.nn.functional as F
out = sys.argv[1]

class Tiny(nn.Module):
    def __init__(self, K=2):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3), nn.GroupNorm(4, 8), nn.ReLU(),
                                      nn.MaxPool2d(2))
        self.head = nn.Linear(8 * 13 * 13, K)
    def forward(self, x):
        return self.head(self.features(x).flatten(1))

class WithDropout(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(28 * 28, 2)
    def forward(self, x):
        return self.fc(F.dropout(x.flatten(1), 0.5, self.training))

class WithBatchNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 26 * 26, 2)
    def forward(self, x):
        return self.fc(F.relu(self.bn(self.conv(x))).flatten(1))

class NoParameters(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :2]

class Cnn(nn.Module):  # zoo.h's "cnn"
    def __init__(self, C=1, K=2, S=28):
        super().__init__()
        self.conv1 = nn.Conv2d(C, 32, 3)
        self.gn1 = nn.GroupNorm(8, 32)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.gn2 = nn.GroupNorm(8, 64)
        self.fc1 = nn.Linear(64 * ((S - 4) // 2) ** 2, 128)
        self.fc2 = nn.Linear(128, K)
    def forward(self, x):
        x = F.relu(self.gn1(self.conv1(x)))
        x = F.relu(self.gn2(self.conv2(x)))
        x = F.dropout(F.max_pool2d(x, 2), 0.25, self.training).flatten(1)
        x = F.dropout(F.relu(self.fc1(x)), 0.5, self.training)
        return self.fc2(x)

def probe():
    return torch.linspace(-1, 1, 2 * 28 * 28).reshape(2, 1, 28, 28)

def report(tag, model):
    for name, p in model.named_parameters():
        print("param", tag, name, ",".join(str(d) for d in p.shape))
    model.eval()
    with torch.no_grad():
        print("logits", tag, " ".join(repr(v) for v in model(probe()).flatten().tolist()))
    model.train()

torch.manual_seed(1)
tiny = Tiny()
torch.jit.script(tiny).save(out + "/tiny.pt")  # saved in training mode
torch.save(dict(tiny.state_dict()), out + "/tiny_sd.pt")
torch.jit.trace(tiny, probe()).save(out + "/tiny_traced.pt")
report("tiny", tiny)
torch.jit.script(Tiny(K=3)).save(out + "/wrong_shape.pt")
torch.jit.script(WithDropout()).save(out + "/dropout.pt")
torch.jit.script(WithBatchNorm()).save(out + "/batchnorm.pt")
torch.jit.script(NoParameters()).save(out + "/noparams.pt")
cnn = Cnn()
torch.save(dict(cnn.state_dict()), out + "/cnn_sd.pt")
torch.jit.script(cnn).save(out + "/cnn_script.pt")
report("cnn", cnn)
torch.save(dict(Cnn(K=3).state_dict()), out + "/cnn3_sd.pt")
print("done")
)PY";

// Runs an exported TorchScript file argv[1] on the tensor "x" of the state dict argv[2].
constexpr char kRunExport[] = R"PY(
import sys, torch
model = torch.jit.load(sys.argv[1])
x = torch.load(sys.argv[2])["x"]
print("training", model.training)
for name, p in model.named_parameters():
    print("param", name, ",".join(str(d) for d in p.shape))
with torch.no_grad():
    print("logits", " ".join(repr(v) for v in model(x).flatten().tolist()))
print("done")
)PY";

// The three lines of docs/MODELS.md that load an exported model and classify an image.
constexpr char kThreeLines[] =
    "model = torch.jit.load(\"global.torchscript.pt\")\n"
    "x = (torch.as_tensor(image, dtype=torch.float32) / 255 - 0.5) / 0.5  # image: (C, S, S) "
    "uint8\n"
    "label = model(x.unsqueeze(0)).argmax(1).item()\n";

std::vector<double> ParseDoubles(const std::string& text) {
  std::istringstream in(text);
  std::vector<double> v;
  for (double d; in >> d;) v.push_back(d);
  return v;
}

// The lines of `output` that start with `kind` + " " (+ tag + " "), without that prefix.
std::vector<std::string> Lines(const std::string& output, const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix + " ", 0) == 0) out.push_back(line.substr(prefix.size() + 1));
  }
  return out;
}

std::vector<double> ToDoubles(const torch::Tensor& t) {
  const torch::Tensor d = t.detach().flatten().to(torch::kDouble).contiguous();
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

// Largest |a - b| (the sizes must agree).
double MaxAbsDiff(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

std::vector<std::string> ParamLines(const ModelState& state) {
  std::vector<std::string> out;
  for (const NamedTensor& t : state.tensors) {
    std::string shape;
    for (int64_t d : t.shape) shape += (shape.empty() ? "" : ",") + std::to_string(d);
    out.push_back(t.name + " " + shape);
  }
  return out;
}

// Eval-mode logits of `model` with parameters `state` on `x`.
std::vector<double> Logits(const ModelSpec& spec, const ModelState& state, const torch::Tensor& x) {
  std::shared_ptr<Classifier> model = MakeModel(spec);
  ImportState(*model, state);
  model->eval();
  torch::NoGradGuard no_grad;
  return ToDoubles(model->forward(x));
}

torch::Tensor Probe() { return torch::linspace(-1, 1, 2 * 28 * 28).reshape({2, 1, 28, 28}); }

std::vector<int64_t> Range(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

bool AllZero(const NamedTensor& t) {
  for (float v : t.values) {
    if (v != 0.0f) return false;
  }
  return true;
}

#define EXPECT_CONTAINS(text, needle) \
  EXPECT_NE(std::string(text).find(needle), std::string::npos) << "'" << (text) << "'"

// --- Architecture comparison (no LibTorch in the code under test) ---

TEST(ArchitectureTest, DigestCoversOrderedNamesAndShapesOnly) {
  ModelState a;
  a.tensors.push_back({"conv1.weight", {2, 1, 1, 2}, {1, 2, 3, 4}});
  a.tensors.push_back({"scale", {}, {5}});
  // The documented encoding, written out by hand.
  std::string bytes = "fedmed-architecture-v1\n";
  const auto u32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>(v >> (8 * i)));
  };
  const auto u64 = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>(v >> (8 * i)));
  };
  u32(12);
  bytes += "conv1.weight";
  u32(4);
  for (uint64_t d : {2, 1, 1, 2}) u64(d);
  u32(5);
  bytes += "scale";
  u32(0);
  EXPECT_EQ(ArchitectureDigest(a), Sha256Hex(bytes));

  ModelState values_changed = a;
  values_changed.tensors[0].values[0] = -7;
  EXPECT_EQ(ArchitectureDigest(values_changed), ArchitectureDigest(a));
  ModelState renamed = a;
  renamed.tensors[1].name = "scale2";
  EXPECT_NE(ArchitectureDigest(renamed), ArchitectureDigest(a));
  ModelState reshaped = a;
  reshaped.tensors[0].shape = {2, 1, 2, 1};
  EXPECT_NE(ArchitectureDigest(reshaped), ArchitectureDigest(a));
  ModelState reordered = a;
  std::swap(reordered.tensors[0], reordered.tensors[1]);
  EXPECT_NE(ArchitectureDigest(reordered), ArchitectureDigest(a));
}

TEST(ArchitectureTest, CheckSameArchitectureNamesTheDifferences) {
  const ModelArchitecture cnn2 = DescribeArchitecture(InitialModelState({"cnn", 1, 2, 28}, 0));
  const ModelArchitecture cnn2_other_seed =
      DescribeArchitecture(InitialModelState({"cnn", 1, 2, 28}, 9));
  const ModelArchitecture cnn3 = DescribeArchitecture(InitialModelState({"cnn", 1, 3, 28}, 0));
  const ModelArchitecture resnet =
      DescribeArchitecture(InitialModelState({"resnet18", 1, 2, 28}, 0));
  EXPECT_EQ(cnn2.parameters.size(), 12u);
  CheckSameArchitecture(cnn2, "coordinator", cnn2_other_seed, "site-1");  // values do not count
  ModelArchitecture digest_only{{}, cnn2.digest};
  CheckSameArchitecture(cnn2, "coordinator", digest_only, "site-1");

  std::string e = testing::ErrorMessageOf<ConfigError>(
      [&] { CheckSameArchitecture(cnn2, "coordinator", cnn3, "site-2"); });
  EXPECT_CONTAINS(e, "coordinator");
  EXPECT_CONTAINS(e, "site-2");
  EXPECT_CONTAINS(e, "#10: 'fc2.weight' [2, 128] at coordinator vs 'fc2.weight' [3, 128] at "
                     "site-2");
  EXPECT_CONTAINS(e, "2 differing positions");

  e = testing::ErrorMessageOf<ConfigError>(
      [&] { CheckSameArchitecture(cnn2, "coordinator", resnet, "site-3"); });
  EXPECT_CONTAINS(e, "12 vs 62 parameters, 62 differing positions, the first 5 listed");
  EXPECT_CONTAINS(e, "#0: 'conv1.weight' [32, 1, 3, 3] at coordinator vs 'conv1.weight' "
                     "[64, 1, 3, 3] at site-3");
  EXPECT_EQ(std::string(e).find("#5:"), std::string::npos) << e;

  ModelState longer = InitialModelState({"cnn", 1, 2, 28}, 0);
  longer.tensors.push_back({"extra.scale", {}, {1}});
  e = testing::ErrorMessageOf<ConfigError>([&] {
    CheckSameArchitecture(cnn2, "coordinator", DescribeArchitecture(longer), "site-6");
  });
  EXPECT_CONTAINS(e, "(12 vs 13 parameters, 1 differing position)");
  EXPECT_CONTAINS(e, "#12: missing at coordinator vs 'extra.scale' [] at site-6");

  e = testing::ErrorMessageOf<ConfigError>(
      [&] { CheckSameArchitecture(cnn2, "coordinator", {{}, cnn3.digest}, "site-4"); });
  EXPECT_CONTAINS(e, cnn2.digest);
  EXPECT_CONTAINS(e, cnn3.digest);

  ModelArchitecture forged = cnn3;
  forged.digest = cnn2.digest;
  e = testing::ErrorMessageOf<FormatError>(
      [&] { CheckSameArchitecture(cnn2, "coordinator", forged, "site-5"); });
  EXPECT_CONTAINS(e, "site-5");
}

// --- Layer freezing (no LibTorch in the matching) ---

TEST(FrozenLayersTest, PrefixesMatchAtDotsAndMustMatchSomething) {
  EXPECT_TRUE(MatchesLayerPrefix("conv1.weight", "conv1"));
  EXPECT_TRUE(MatchesLayerPrefix("conv1.weight", "conv1.weight"));
  EXPECT_FALSE(MatchesLayerPrefix("conv10.weight", "conv1"));
  EXPECT_FALSE(MatchesLayerPrefix("conv1", "conv1.weight"));
  const std::vector<std::string> names = {"conv1.weight", "conv1.bias", "conv10.weight",
                                          "layer1.0.conv1.weight", "fc.bias"};
  EXPECT_EQ(MatchFrozenLayers(names, {"conv1", "layer1"}),
            (std::vector<bool>{true, true, false, true, false}));
  EXPECT_EQ(MatchFrozenLayers(names, {}), std::vector<bool>(5, false));

  std::string e = testing::ErrorMessageOf<ConfigError>([&] {
    MatchFrozenLayers(names, {"conv1", "conv2"});
  });
  EXPECT_CONTAINS(e, "frozen_layers[1]: \"conv2\" matches no parameter");
  EXPECT_CONTAINS(e, "conv1, conv10, layer1.0.conv1, fc");
  e = testing::ErrorMessageOf<ConfigError>(
      [&] { MatchFrozenLayers(names, {"conv1", "conv10", "layer1", "fc"}); });
  EXPECT_CONTAINS(e, "every parameter");
  for (const std::vector<std::string>& bad : std::vector<std::vector<std::string>>{
           {""}, {".conv1"}, {"conv1."}, {"layer1..conv1"}, {"fc", "fc"}}) {
    EXPECT_THROW(ValidateFrozenLayers(bad), ConfigError) << bad.back();
    TrainSettings settings;
    settings.frozen_layers = bad;
    EXPECT_THROW(ValidateTrainSettings(settings), ConfigError) << bad.back();
  }
}

TEST(ModelSpecTest, TorchScriptNeedsItsPathAndOnlyIt) {
  ModelSpec spec{"torchscript", 1, 2, 28};
  std::string e =
      testing::ErrorMessageOf<ConfigError>([&] { ValidateModelSpec(spec, "site.toml [model]"); });
  EXPECT_CONTAINS(e, "site.toml [model].torchscript_path");
  spec.torchscript_path = "mynet.pt";
  ValidateModelSpec(spec);
  ModelSpec cnn{"cnn", 1, 2, 28};
  cnn.torchscript_path = "mynet.pt";
  e = testing::ErrorMessageOf<ConfigError>([&] { ValidateModelSpec(cnn); });
  EXPECT_CONTAINS(e, "model.torchscript_path");
  e = testing::ErrorMessageOf<ConfigError>([&] { ValidateModelSpec({"vgg", 1, 2, 28}); });
  EXPECT_CONTAINS(e, "\"torchscript\"");
  EXPECT_EQ(ModelNames(), (std::vector<std::string>{"cnn", "resnet18"}));
}

// --- TorchScript models made by Python ---

class TorchScriptTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SetComputeThreads(1);
    dir_ = new testing::TempDir("fedmed-torchscript-test");
    std::string tried;
    python_ = new std::string(testing::FindPythonWith("torch", &tried));
    tried_ = new std::string(tried);
    if (python_->empty()) return;
    std::ofstream(*dir_ / "make_models.py") << kMakeModels;
    int status = 0;
    const std::string command =
        *python_ + " -B " + (*dir_ / "make_models.py") + " " + dir_->path().string() + " 2>&1";
    made_ = new std::string(testing::RunCommand(command, &status));
    if (status != 0) made_->insert(0, "make_models.py failed (" + std::to_string(status) + "):\n");
    try {
      data_path_ = new std::string(ResolveDataPath("medmnist/pneumoniamnist.npz"));
      const MedMnist data = LoadMedMnist(*data_path_);
      train_ = new ImageSet(data.train.Subset(Range(400)));
      test_ = new ImageSet(data.test.Subset(Range(8)));
    } catch (const DataError&) {
      // The training tests skip.
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete python_;
    delete tried_;
    delete made_;
    delete data_path_;
    delete train_;
    delete test_;
    dir_ = nullptr;
    python_ = tried_ = made_ = data_path_ = nullptr;
    train_ = test_ = nullptr;
  }

  void SetUp() override {
    ASSERT_FALSE(python_->empty())
        << "no Python interpreter that can 'import torch' (tried:" << *tried_
        << "); install Debian's python3-torch (apt-get install -y python3-torch) or set "
           "FEDMED_PYTHON to an interpreter with torch";
    ASSERT_NE(made_->find("\ndone"), std::string::npos) << *made_;
  }

  static std::string Path(const std::string& name) { return *dir_ / name; }

  static ModelSpec ScriptSpec(const std::string& file, int64_t num_classes = 2) {
    ModelSpec spec{"torchscript", 1, num_classes, 28};
    spec.torchscript_path = Path(file);
    return spec;
  }

  // Runs kRunExport on `model_file` with input `x` (written as a one-entry state dict).
  static std::string RunExported(const std::string& model_file, const torch::Tensor& x) {
    ModelState input;
    const torch::Tensor c = x.contiguous();
    input.tensors.push_back({"x", c.sizes().vec(),
                             std::vector<float>(c.data_ptr<float>(),
                                                c.data_ptr<float>() + c.numel())});
    SaveCheckpoint(input, Path("input.pt"));
    std::ofstream(Path("run_export.py")) << kRunExport;
    int status = 0;
    const std::string out = testing::RunCommand(*python_ + " -B " + Path("run_export.py") + " " +
                                           model_file + " " + Path("input.pt") + " 2>&1",
                                       &status);
    EXPECT_EQ(status, 0) << out;
    EXPECT_NE(out.find("\ndone"), std::string::npos) << out;
    return out;
  }

  static inline testing::TempDir* dir_ = nullptr;
  static inline std::string* python_ = nullptr;
  static inline std::string* tried_ = nullptr;
  static inline std::string* made_ = nullptr;
  static inline std::string* data_path_ = nullptr;
  static inline ImageSet* train_ = nullptr;
  static inline ImageSet* test_ = nullptr;
};

TEST_F(TorchScriptTest, ExposesTheScriptsParametersUnderItsNames) {
  for (const std::string file : {"tiny.pt", "tiny_traced.pt"}) {
    SCOPED_TRACE(file);
    std::shared_ptr<Classifier> model = MakeModel(ScriptSpec(file), /*seed=*/1);
    EXPECT_TRUE(model->is_training());
    const ModelState state = ExportState(*model);
    EXPECT_EQ(ParamLines(state), Lines(*made_, "param tiny"));
    EXPECT_EQ(ParamLines(state),
              (std::vector<std::string>{"features.0.weight 8,1,3,3", "features.0.bias 8",
                                        "features.1.weight 8", "features.1.bias 8",
                                        "head.weight 2,1352", "head.bias 2"}));
    // The values are the file's (the seed is ignored), the state dict Python saved beside it.
    EXPECT_EQ(EncodeModelState(state), EncodeModelState(LoadCheckpoint(Path("tiny_sd.pt"))));
    EXPECT_EQ(EncodeModelState(ExportState(*MakeModel(ScriptSpec(file), 2))),
              EncodeModelState(state));
    EXPECT_EQ(InitialModelState(ScriptSpec(file), 3).NumValues(), state.NumValues());
    // Forward is the script's: Python's logits, in eval mode.
    const std::vector<double> python = ParseDoubles(Lines(*made_, "logits tiny").at(0));
    EXPECT_LT(MaxAbsDiff(Logits(ScriptSpec(file), state, Probe()), python), 1e-5);
    // The parameters are the script's tensors: changing them changes what forward computes.
    ModelState zeroed = state;
    for (float& v : zeroed.tensors.back().values) v = 0;   // head.bias
    for (float& v : zeroed.tensors[4].values) v = 0;       // head.weight
    EXPECT_EQ(MaxAbsDiff(Logits(ScriptSpec(file), zeroed, Probe()), std::vector<double>(4, 0.0)),
              0.0);
  }
}

TEST_F(TorchScriptTest, TrainAndEvalReachTheScript) {
  auto model = LoadScriptedClassifier(ScriptSpec("dropout.pt"));
  torch::NoGradGuard no_grad;
  const torch::Tensor x = Probe();
  EXPECT_TRUE(model->script().is_training());
  EXPECT_FALSE(torch::equal(model->forward(x), model->forward(x)));  // dropout on
  model->eval();
  EXPECT_FALSE(model->is_training());
  EXPECT_FALSE(model->script().is_training());
  EXPECT_TRUE(torch::equal(model->forward(x), model->forward(x)));   // dropout off
  model->train();
  EXPECT_TRUE(model->script().is_training());
}

TEST_F(TorchScriptTest, RefusesScriptsItCannotTrainProperly) {
  std::string e =
      testing::ErrorMessageOf<ConfigError>([] { MakeModel(ScriptSpec("wrong_shape.pt")); });
  EXPECT_CONTAINS(e, Path("wrong_shape.pt"));
  EXPECT_CONTAINS(e, "(2, 1, 28, 28) float32 input to a (2, 3) float32 output");
  EXPECT_CONTAINS(e, "expected (2, 2) float32 logits");
  // The same file is fine for a 3-class spec.
  EXPECT_EQ(ExportState(*MakeModel(ScriptSpec("wrong_shape.pt", 3))).tensors.back().shape,
            std::vector<int64_t>{3});
  // Input of the wrong size: forward fails inside the script.
  ModelSpec big = ScriptSpec("tiny.pt");
  big.image_size = 32;
  e = testing::ErrorMessageOf<ConfigError>([&] { MakeModel(big); });
  EXPECT_CONTAINS(e, "forward fails on a (2, 1, 32, 32) float32 input");
  EXPECT_CONTAINS(e, "model.image_size = 32");

  e = testing::ErrorMessageOf<ConfigError>([] { MakeModel(ScriptSpec("batchnorm.pt")); });
  EXPECT_CONTAINS(e, Path("batchnorm.pt"));
  EXPECT_CONTAINS(e, "bn.running_mean");
  EXPECT_CONTAINS(e, "GroupNorm");

  e = testing::ErrorMessageOf<ConfigError>([] { MakeModel(ScriptSpec("noparams.pt")); });
  EXPECT_CONTAINS(e, "has no parameters");
  e = testing::ErrorMessageOf<ConfigError>(
      [] { MakeModel(ScriptSpec("tiny_sd.pt")); });  // a state dict
  EXPECT_CONTAINS(e, "is not a TorchScript file");
  e = testing::ErrorMessageOf<ConfigError>([] { MakeModel(ScriptSpec("absent.pt")); });
  EXPECT_CONTAINS(e, "cannot open TorchScript file '" + Path("absent.pt") + "'");
}

TEST_F(TorchScriptTest, DpSgdRefusesScriptsAndFrozenLayers) {
  DpSgdSettings dp;
  dp.reproducible_seed = 1;
  ImageSet data;
  data.height = data.width = 28;
  data.channels = 1;
  data.num_classes = 2;
  data.pixels.assign(2 * 28 * 28, 0);
  data.labels = {0, 1};
  std::string e = testing::ErrorMessageOf<ConfigError>([&] {
    TrainLocalDpSgd(ScriptSpec("tiny.pt"), InitialModelState(ScriptSpec("tiny.pt"), 0), data,
                    TrainSettings{}, dp);
  });
  EXPECT_CONTAINS(e, "DP-SGD does not support TorchScript models");
  EXPECT_CONTAINS(e, Path("tiny.pt"));
  auto scripted = MakeModel(ScriptSpec("tiny.pt"));
  EXPECT_THROW(CheckDpSgdSupport(*scripted), ConfigError);

  const ModelSpec cnn{"cnn", 1, 2, 28};
  TrainSettings frozen;
  frozen.frozen_layers = {"conv1"};
  e = testing::ErrorMessageOf<ConfigError>(
      [&] { TrainLocalDpSgd(cnn, InitialModelState(cnn, 0), data, frozen, dp); });
  EXPECT_CONTAINS(e, "frozen_layers: not supported with DP-SGD");
}

TEST_F(TorchScriptTest, ScriptTrainsOnPneumoniaMnistAndComesBackOutForPython) {
  if (train_ == nullptr) GTEST_SKIP() << "medmnist/pneumoniamnist.npz not found";
  const ModelSpec spec = ScriptSpec("tiny.pt");
  const ModelState global = InitialModelState(spec, 0);
  TrainSettings settings;
  settings.local_epochs = 2;
  settings.learning_rate = 0.02;
  settings.seed = 5;
  const double loss_before = EvaluateModel(spec, global, *train_, 100).loss;
  const TrainResult result = TrainLocal(spec, global, *train_, settings);
  ModelState trained = global;
  for (size_t i = 0; i < trained.tensors.size(); ++i) {
    EXPECT_FALSE(AllZero(result.delta.tensors[i])) << trained.tensors[i].name;
    for (size_t j = 0; j < trained.tensors[i].values.size(); ++j) {
      trained.tensors[i].values[j] += result.delta.tensors[i].values[j];
    }
  }
  const double loss_after = EvaluateModel(spec, trained, *train_, 100).loss;
  EXPECT_EQ(result.steps, 2 * ((400 + 31) / 32));
  EXPECT_LT(loss_after, 0.8 * loss_before) << loss_before << " -> " << loss_after;
  // No dropout in this script: the seed alone decides the result.
  EXPECT_EQ(EncodeModelState(TrainLocal(spec, global, *train_, settings).delta),
            EncodeModelState(result.delta));

  // Out as TorchScript: Python runs it and gets C++'s logits.
  const std::string exported = Path("tiny_trained.pt");
  ExportTorchScript(spec, trained, exported);
  EXPECT_FALSE(fs::exists(exported + ".tmp"));
  const torch::Tensor x = ImagesToTensor(*test_, 0, test_->size());
  const std::vector<double> cpp = Logits(spec, trained, x);
  const std::string out = RunExported(exported, x);
  EXPECT_EQ(Lines(out, "training"), std::vector<std::string>{"False"});
  EXPECT_EQ(Lines(out, "param"), ParamLines(trained));
  ASSERT_EQ(Lines(out, "logits").size(), 1u) << out;
  const double diff = MaxAbsDiff(ParseDoubles(Lines(out, "logits")[0]), cpp);
  EXPECT_LT(diff, 1e-5) << out;
  std::cout << "trained script: max |Python - C++| logit difference " << diff << "\n";
  // ... and it is a TorchScript model again, with exactly the trained weights.
  EXPECT_EQ(EncodeModelState(InitialModelState(ScriptSpec("tiny_trained.pt"), 0)),
            EncodeModelState(trained));
  EXPECT_EQ(EncodeModelState(LoadInitialWeights(exported, global)), EncodeModelState(trained));

  // A state of another layout is refused, naming the file and the parameter.
  const std::string e = testing::ErrorMessageOf<FormatError>(
      [&] { ExportTorchScript(spec, InitialModelState({"cnn", 1, 2, 28}, 0), Path("x.pt")); });
  EXPECT_CONTAINS(e, Path("x.pt"));
  EXPECT_CONTAINS(e, "'conv1.weight', expected 'features.0.weight'");
  EXPECT_FALSE(fs::exists(Path("x.pt")));
}

TEST_F(TorchScriptTest, ZooModelsComeOutAsTorchScriptThatPythonRuns) {
  for (const ModelSpec& spec : {ModelSpec{"cnn", 1, 2, 28}, ModelSpec{"cnn", 3, 4, 32},
                                ModelSpec{"resnet18", 3, 3, 28}}) {
    SCOPED_TRACE(spec.name + " C=" + std::to_string(spec.in_channels));
    const ModelState state = InitialModelState(spec, 11);
    const std::string path = Path(spec.name + ".torchscript.pt");
    ExportTorchScript(spec, state, path);
    const torch::Tensor x =
        torch::linspace(-1, 1, 4 * spec.in_channels * spec.image_size * spec.image_size)
            .reshape({4, spec.in_channels, spec.image_size, spec.image_size});
    const std::vector<double> cpp = Logits(spec, state, x);
    const std::string out = RunExported(path, x);
    EXPECT_EQ(Lines(out, "param"), ParamLines(state));
    ASSERT_EQ(Lines(out, "logits").size(), 1u) << out;
    const std::vector<double> python = ParseDoubles(Lines(out, "logits")[0]);
    EXPECT_EQ(python.size(), static_cast<size_t>(4 * spec.num_classes));
    const double diff = MaxAbsDiff(python, cpp);
    EXPECT_LT(diff, 1e-5) << out;
    std::cout << spec.name << " C=" << spec.in_channels << " K=" << spec.num_classes
              << " S=" << spec.image_size << ": max |Python - C++| logit difference " << diff
              << "\n";
    // LibTorch reads it back: same weights, and it runs as a TorchScript model too.
    EXPECT_EQ(EncodeModelState(LoadInitialWeights(path, state)), EncodeModelState(state));
    ModelSpec as_script = spec;
    as_script.name = "torchscript";
    as_script.torchscript_path = path;
    EXPECT_LT(MaxAbsDiff(Logits(as_script, state, x), cpp), 1e-5);
  }
  const std::string e = testing::ErrorMessageOf<DataError>([] {
    ExportTorchScript({"cnn", 1, 2, 28}, InitialModelState({"cnn", 1, 2, 28}, 0),
                      Path("no/such/dir/m.pt"));
  });
  EXPECT_CONTAINS(e, Path("no/such/dir/m.pt"));
}

TEST_F(TorchScriptTest, TheDocumentedThreeLinesClassifyAnImage) {
  if (train_ == nullptr) GTEST_SKIP() << "medmnist/pneumoniamnist.npz not found";
  // docs/MODELS.md shows exactly these lines.
  const std::string docs = testing::ReadFile(testing::SourceDir() + "/docs/MODELS.md");
  EXPECT_CONTAINS(docs, kThreeLines);

  const ModelSpec spec{"cnn", 1, 2, 28};
  const ModelState global = InitialModelState(spec, 3);
  TrainSettings settings;
  settings.seed = 3;
  ModelState trained = global;
  const ModelState delta = TrainLocal(spec, global, *train_, settings).delta;
  for (size_t i = 0; i < trained.tensors.size(); ++i) {
    for (size_t j = 0; j < trained.tensors[i].values.size(); ++j) {
      trained.tensors[i].values[j] += delta.tensors[i].values[j];
    }
  }
  ExportTorchScript(spec, trained, Path("global.torchscript.pt"));
  const std::vector<double> cpp = Logits(spec, trained, ImagesToTensor(*test_, 0, test_->size()));
  std::string script = "import numpy, sys, torch\n";
  script += "images = numpy.load(sys.argv[1])[\"test_images\"]\n";
  script += "for i in range(" + std::to_string(test_->size()) + "):\n";
  script += "    image = images[i][None]  # (1, 28, 28) uint8\n";
  std::istringstream lines(kThreeLines);
  for (std::string line; std::getline(lines, line);) script += "    " + line + "\n";
  script += "    print(\"label\", label)\n";
  std::ofstream(Path("three_lines.py")) << script;
  int status = 0;
  const std::string out =
      testing::RunCommand("cd " + dir_->path().string() + " && " + *python_ +
                              " -B three_lines.py " + *data_path_ + " 2>&1",
                          &status);
  ASSERT_EQ(status, 0) << out;
  std::vector<std::string> expected;
  for (int64_t i = 0; i < test_->size(); ++i) {
    expected.push_back(cpp[2 * i + 1] > cpp[2 * i] ? "1" : "0");
  }
  EXPECT_EQ(Lines(out, "label"), expected) << out;
}

TEST_F(TorchScriptTest, InitialWeightsFromAStateDictOrAScript) {
  const ModelSpec cnn{"cnn", 1, 2, 28};
  const ModelState layout = InitialModelState(cnn, 0);
  const ModelState from_dict = LoadInitialWeights(Path("cnn_sd.pt"), layout);
  const ModelState from_script = LoadInitialWeights(Path("cnn_script.pt"), layout);
  EXPECT_EQ(EncodeModelState(from_dict), EncodeModelState(from_script));
  EXPECT_NE(EncodeModelState(from_dict), EncodeModelState(layout));
  // Loaded into the zoo's cnn, the weights compute what Python's module computed.
  const std::vector<double> python = ParseDoubles(Lines(*made_, "logits cnn").at(0));
  EXPECT_LT(MaxAbsDiff(Logits(cnn, from_dict, Probe()), python), 1e-5);

  std::string e =
      testing::ErrorMessageOf<FormatError>([&] { LoadInitialWeights(Path("cnn3_sd.pt"), layout); });
  EXPECT_CONTAINS(e, Path("cnn3_sd.pt"));
  EXPECT_CONTAINS(e, "'fc2.weight' has shape [3, 128]");
  e = testing::ErrorMessageOf<FormatError>([&] { LoadInitialWeights(Path("tiny.pt"), layout); });
  EXPECT_CONTAINS(e, Path("tiny.pt"));
  EXPECT_CONTAINS(e, "TorchScript file");
  EXPECT_CONTAINS(e, "tensor #0 is 'features.0.weight', expected 'conv1.weight'");
  e = testing::ErrorMessageOf<ConfigError>(
      [&] { LoadInitialWeights(Path("batchnorm.pt"), layout); });
  EXPECT_CONTAINS(e, "running_mean");
  std::ofstream(Path("garbage.pt")) << "not a model";
  e = testing::ErrorMessageOf<FormatError>([&] { LoadInitialWeights(Path("garbage.pt"), layout); });
  EXPECT_CONTAINS(e, Path("garbage.pt"));
  e = testing::ErrorMessageOf<DataError>([&] { LoadInitialWeights(Path("absent.pt"), layout); });
  EXPECT_CONTAINS(e, Path("absent.pt"));
}

TEST_F(TorchScriptTest, FrozenLayersKeepExactlyTheirValues) {
  if (train_ == nullptr) GTEST_SKIP() << "medmnist/pneumoniamnist.npz not found";
  const ImageSet data = train_->Subset(Range(160));
  TrainSettings settings;
  settings.seed = 2;
  settings.weight_decay = 1e-3;  // would move a parameter with a zero gradient
  settings.proximal_mu = 0.1;    // FedProx too
  struct Case {
    ModelSpec spec;
    std::vector<std::string> frozen;
  };
  for (const Case& c : {Case{{"cnn", 1, 2, 28}, {"conv1", "gn2"}},
                        Case{ScriptSpec("tiny.pt"), {"features.0"}}}) {
    SCOPED_TRACE(c.spec.name);
    for (const std::string optimizer : {"sgd", "adam"}) {
      settings.optimizer = optimizer;
      settings.frozen_layers = c.frozen;
      const TrainResult result = TrainLocal(c.spec, InitialModelState(c.spec, 4), data, settings);
      for (const NamedTensor& t : result.delta.tensors) {
        bool frozen = false;
        for (const std::string& prefix : c.frozen) frozen |= MatchesLayerPrefix(t.name, prefix);
        EXPECT_EQ(AllZero(t), frozen) << optimizer << " " << t.name;
      }
    }
  }
  settings.frozen_layers = {"conv3"};
  const std::string e = testing::ErrorMessageOf<ConfigError>([&] {
    TrainLocal({"cnn", 1, 2, 28}, InitialModelState({"cnn", 1, 2, 28}, 0), data, settings);
  });
  EXPECT_CONTAINS(e, "\"conv3\" matches no parameter");
  EXPECT_CONTAINS(e, "conv1, gn1, conv2, gn2, fc1, fc2");
}

}  // namespace
}  // namespace fedmed
