// Shared by the TorchScript tests (torchscript_test.cc: bring your own model, take it out;
// fine_tuning_test.cc: architectures, initial weights, frozen layers): the Python script that makes
// their TorchScript models and state dicts with Debian's python3-torch, the one that runs an
// exported model, the fixture that runs the first once per test executable (and loads 400
// training and 8 test images of PneumoniaMNIST), and small helpers.
#ifndef FEDMED_TESTS_MODEL_TORCHSCRIPT_TEST_UTIL_H_
#define FEDMED_TESTS_MODEL_TORCHSCRIPT_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "common/data/medmnist.h"
#include "common/model/checkpoint.h"
#include "common/model/model_io.h"
#include "common/model/torch_state.h"
#include "common/model/zoo.h"
#include "common/util/data_path.h"
#include "common/util/error.h"
#include "tests/test_util.h"

namespace fedmed::testing {

// Makes the TorchScript models and state dicts the tests use, in argv[1]; prints, for the
// models the tests compare with, their eval-mode logits on the probe input and their parameters.
inline constexpr char kMakeModels[] = R"PY(
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

from fedmed_zoo import Cnn  # tests/python: zoo.h's "cnn" in PyTorch

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
inline constexpr char kRunExport[] = R"PY(
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

inline std::vector<double> ParseDoubles(const std::string& text) {
  std::istringstream in(text);
  std::vector<double> v;
  for (double d; in >> d;) v.push_back(d);
  return v;
}

// The lines of `output` that start with `kind` + " " (+ tag + " "), without that prefix.
inline std::vector<std::string> Lines(const std::string& output, const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix + " ", 0) == 0) out.push_back(line.substr(prefix.size() + 1));
  }
  return out;
}

inline std::vector<double> ToDoubles(const torch::Tensor& t) {
  const torch::Tensor d = t.detach().flatten().to(torch::kDouble).contiguous();
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

// Largest |a - b| (the sizes must agree).
inline double MaxAbsDiff(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

inline std::vector<std::string> ParamLines(const ModelState& state) {
  std::vector<std::string> out;
  for (const NamedTensor& t : state.tensors) {
    std::string shape;
    for (int64_t d : t.shape) shape += (shape.empty() ? "" : ",") + std::to_string(d);
    out.push_back(t.name + " " + shape);
  }
  return out;
}

// Eval-mode logits of `model` with parameters `state` on `x`.
inline std::vector<double> Logits(const ModelSpec& spec, const ModelState& state, const torch::Tensor& x) {
  std::shared_ptr<Classifier> model = MakeModel(spec);
  ImportState(*model, state);
  model->eval();
  torch::NoGradGuard no_grad;
  return ToDoubles(model->forward(x));
}

inline torch::Tensor Probe() { return torch::linspace(-1, 1, 2 * 28 * 28).reshape({2, 1, 28, 28}); }

inline std::vector<int64_t> Range(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

inline bool AllZero(const NamedTensor& t) {
  for (float v : t.values) {
    if (v != 0.0f) return false;
  }
  return true;
}

#define EXPECT_CONTAINS(text, needle) \
  EXPECT_NE(std::string(text).find(needle), std::string::npos) << "'" << (text) << "'"

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
    std::ofstream(*dir_ / "make_models.py") << "import sys\nsys.path.insert(0, '"
                                            << testing::SourceDir() << "/tests/python')\n"
                                            << kMakeModels;
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

}  // namespace fedmed::testing

#endif  // FEDMED_TESTS_MODEL_TORCHSCRIPT_TEST_UTIL_H_
