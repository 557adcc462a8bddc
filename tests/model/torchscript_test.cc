// Bring your own model, take the model out: TorchScript models made with Debian's python3-torch
// (torchscript_test_util.h) are trained from C++ on real PneumoniaMNIST images, exported back to
// TorchScript and run by Python; zoo models are exported and run by Python; scripts that cannot
// be trained properly (or privately) are refused. Architectures, initial weights and frozen
// layers: fine_tuning_test.cc.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/data/medmnist.h"
#include "common/model/evaluation.h"
#include "common/model/local_training.h"
#include "common/model/model_io.h"
#include "common/model/torchscript_model.h"
#include "common/model/zoo.h"
#include "common/privacy/dp_sgd.h"
#include "common/util/error.h"
#include "tests/model/torchscript_test_util.h"
#include "tests/test_util.h"

namespace fedmed::testing {
namespace {

namespace fs = std::filesystem;

// The three lines of docs/MODELS.md that load an exported model and classify an image.
constexpr char kThreeLines[] =
    "model = torch.jit.load(\"global.torchscript.pt\")\n"
    "x = (torch.as_tensor(image, dtype=torch.float32) / 255 - 0.5) / 0.5  # image: (C, S, S) "
    "uint8\n"
    "label = model(x.unsqueeze(0)).argmax(1).item()\n";

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

// Found by fuzz/fuzz_checkpoint (CI, 30 s run): a TorchScript archive given as [model]
// initial_weights whose data.pkl declares a string of 1.9 GB, which torch::jit::load's unpickler
// reserved before reading. LoadTorchScriptFile checks the declarations first (torch_archive.h).
TEST(TorchScriptFileTest, AnArchiveDeclaringMoreBytesThanItHoldsIsRefusedBeforeLibTorchReadsIt) {
  const std::string path =
      SourceDir() + "/fuzz/corpus/fuzz_checkpoint/regression-torchscript-pickle-length-bomb.pt";
  ASSERT_TRUE(std::filesystem::exists(path)) << path;
  try {
    LoadTorchScriptFile(path, "model.initial_weights");
    ADD_FAILURE() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("model.initial_weights: TorchScript file '" + path + "': entry '", 0), 0u)
        << what;
    EXPECT_NE(what.find("the pickle declares a "), std::string::npos) << what;
  }
}

// Found by fuzz/fuzz_checkpoint (600 s run, AddressSanitizer: heap-buffer-overflow in
// ExportState): a TorchScript archive whose pickle declares a storage of 18,432 floats over a
// record of 128 bytes; LibTorch sized the storage from the declaration and filled it from the
// record, so reading the parameter went 73 KB past the buffer. CheckTorchArchive compares every
// declared storage with its record first.
TEST(TorchScriptFileTest, AStorageLargerThanItsRecordIsRefusedBeforeLibTorchReadsIt) {
  const std::string path =
      SourceDir() + "/fuzz/corpus/fuzz_checkpoint/regression-torchscript-parameter-past-storage.pt";
  ASSERT_TRUE(std::filesystem::exists(path)) << path;
  ModelState layout;
  layout.tensors.push_back({"fc.weight", {2, 3}, std::vector<float>(6, 0.0f)});
  try {
    LoadInitialWeights(path, layout);
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("entry 'archive/data.pkl': the pickle declares a "
                                         "FloatStorage of 18432 elements at byte 564 but its "
                                         "record 'archive/data/3' holds 128 bytes"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace fedmed::testing
