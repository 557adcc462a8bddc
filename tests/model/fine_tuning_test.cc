// Fine-tuning and the architecture a federation agrees on: architecture digests and how a
// mismatch is reported, the [model] spec of a TorchScript model, initial weights from a state
// dict or a TorchScript file (made with Debian's python3-torch, torchscript_test_util.h), and
// frozen layers (prefix matching, and training that leaves them exactly as they were).
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/model/architecture.h"
#include "common/model/frozen_layers.h"
#include "common/model/local_training.h"
#include "common/model/model_io.h"
#include "common/model/zoo.h"
#include "common/util/error.h"
#include "tests/model/torchscript_test_util.h"
#include "tests/test_util.h"

namespace fedmed::testing {
namespace {

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

// --- Initial weights and frozen layers, on TorchScript models made by Python ---

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
}  // namespace fedmed::testing
