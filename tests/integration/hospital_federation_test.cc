// Hospital data and bring-your-own models, end to end over mutual-TLS gRPC:
//
// - a mixed federation: PneumoniaMNIST's 3-site IID shards converted so that site-1 reads a .npz
//   file, site-2 an ImageFolder of PNGs (train/ and test/ subfolders) and site-3 16-bit DICOM
//   files (rescale slope 2, intercept -1024, a window in each file) through a CSV manifest; two
//   rounds with fedmed-simulate reach the global test AUC of the same two rounds on the .npz file
//   within 0.01;
// - a TorchScript model scripted here with Debian's python3-torch is fine-tuned for two rounds
//   (the coordinator and every site name the file; the initial weights come from another script
//   of the same architecture, [model] initial_weights, and its first convolution is frozen,
//   [training] frozen_layers), and the global.torchscript.pt the coordinator exports runs in
//   Python with the logits of the C++ model on the final global_model.pt, to 1e-5;
// - registration refusals, with the coordinator and a site agent in this process: a site whose
//   preprocessing differs is refused naming the field, a site whose script's architecture
//   differs is refused naming the parameter, a site without a script is told what to set, and a
//   site with a script of the same architecture is accepted.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/data/hospital/dicom.h"
#include "common/data/medmnist.h"
#include "common/data/partition.h"
#include "common/model/checkpoint.h"
#include "common/model/model_io.h"
#include "common/model/torch_state.h"
#include "common/model/zoo.h"
#include "common/util/data_path.h"
#include "coordinator/app/coordinator.h"
#include "site_agent/site_agent.h"
#include "tests/data/hospital/image_test_util.h"
#include "tests/data/npz_test_util.h"
#include "tests/integration/refusal_util.h"
#include "tests/integration/simulate_util.h"
#include "tools/pki/provision.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::TempDir;

// ---- Python (Debian's python3-torch), as tests/model/torchscript_test.cc finds it ----

// Runs `script` (written to dir/name) with `args`; returns its output, failing the test on a
// non-zero exit.
std::string RunPython(const std::string& python, const TempDir& dir, const std::string& name,
                      const std::string& script, const std::string& args) {
  std::ofstream(dir / name) << script;
  int status = 0;
  const std::string out =
      testing::RunCommand(python + " " + (dir / name) + " " + args + " 2>&1", &status);
  EXPECT_EQ(status, 0) << out;
  return out;
}

// A small GroupNorm CNN for 1x28x28 images and 2 classes: the model of these tests. net.pt and
// net_other_init.pt have the same architecture (different weights); net_wide.pt has 12 instead
// of 8 channels in its first convolution.
constexpr char kMakeScripts[] = R"PY(
import sys, torch, torch.nn as nn
out = sys.argv[1]

class Net(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3), nn.GroupNorm(4, width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 16, 3), nn.GroupNorm(4, 16), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(16 * 5 * 5, 2)
    def forward(self, x):
        return self.head(self.features(x).flatten(1))

torch.manual_seed(0)
torch.jit.script(Net()).save(out + "/net.pt")
torch.manual_seed(1)
torch.jit.script(Net()).save(out + "/net_other_init.pt")
torch.jit.script(Net(width=12)).save(out + "/net_wide.pt")
print("done")
)PY";

// Fixed inputs, built identically in Python and C++: a ramp and a sine pattern, 2 images each.
constexpr char kRunExported[] = R"PY(
import sys, torch
model = torch.jit.load(sys.argv[1])
model.eval()
ramp = torch.linspace(-1, 1, 2 * 28 * 28).reshape(2, 1, 28, 28)
wave = torch.sin(torch.arange(2 * 28 * 28, dtype=torch.float32) * 0.37).reshape(2, 1, 28, 28)
with torch.no_grad():
    logits = model(torch.cat([ramp, wave]))
print("logits", " ".join(repr(v) for v in logits.flatten().tolist()))
)PY";

torch::Tensor FixedInputs() {
  const torch::Tensor ramp = torch::linspace(-1, 1, 2 * 28 * 28).reshape({2, 1, 28, 28});
  const torch::Tensor wave =
      torch::sin(torch::arange(2 * 28 * 28, torch::kFloat32) * 0.37).reshape({2, 1, 28, 28});
  return torch::cat({ramp, wave});
}

std::vector<double> ParseLogits(const std::string& output) {
  std::vector<double> v;
  const auto pos = output.find("logits ");
  if (pos == std::string::npos) return v;
  std::istringstream in(output.substr(pos + 7));
  for (double d; in >> d;) v.push_back(d);
  return v;
}

// The run's last metrics.jsonl row (fails the test if there are not `rounds` rows).
nlohmann::json LastRow(const fs::path& run, size_t rounds, const TempDir& dir) {
  const std::vector<nlohmann::json> rows =
      ReadJsonLines((run / "coordinator" / "metrics.jsonl").string());
  EXPECT_EQ(rows.size(), rounds) << ReadFile(dir / "simulate.out");
  return rows.empty() ? nlohmann::json() : rows.back();
}

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// ---- mixed formats ----

std::string Name(const char* prefix, int64_t i) {
  char buffer[48];
  std::snprintf(buffer, sizeof(buffer), "%s_%05lld", prefix, static_cast<long long>(i));
  return buffer;
}

std::string SetBytes(const ImageSet& set, const std::vector<int64_t>& indices,
                     std::string* labels) {
  std::string pixels;
  const int64_t n = set.image_numel();
  for (const int64_t i : indices) {
    pixels.append(reinterpret_cast<const char*>(set.pixels.data()) + i * n,
                  static_cast<size_t>(n));
    labels->append(reinterpret_cast<const char*>(&set.labels[static_cast<size_t>(i)]),
                   sizeof(int64_t));
  }
  return pixels;
}

// The shard as MedMNIST's .npz (val: the first 5 validation images, which no one uses).
void WriteNpzShard(const MedMnist& data, const std::vector<int64_t>& train,
                   const std::vector<int64_t>& test, const std::string& path) {
  std::vector<test_util::NpzEntry> entries;
  const auto add = [&](const char* name, const ImageSet& set, const std::vector<int64_t>& idx) {
    std::string labels;
    const std::string pixels = SetBytes(set, idx, &labels);
    const int64_t n = static_cast<int64_t>(idx.size());
    entries.push_back({std::string(name) + "_images.npy",
                       test_util::NpyBytes("|u1", {n, set.height, set.width}, pixels)});
    entries.push_back({std::string(name) + "_labels.npy",
                       test_util::NpyBytes("<i8", {n, 1}, labels)});
  };
  add("train", data.train, train);
  add("val", data.val, {0, 1, 2, 3, 4});
  add("test", data.test, test);
  test_util::WriteNpz(path, entries);
}

const char* const kClassFolders[2] = {"0_normal", "1_pneumonia"};

// root/<split>/<class>/<split>_NNNNN.png, NNNNN the image's position in the shard.
void WritePngFolder(const ImageSet& set, const std::vector<int64_t>& indices, const char* split,
                    const fs::path& root) {
  for (size_t k = 0; k < indices.size(); ++k) {
    const int64_t i = indices[k];
    image_test::WritePng8((root / split / kClassFolders[set.labels[static_cast<size_t>(i)]] /
                           (Name(split, static_cast<int64_t>(k)) + ".png"))
                              .string(),
                          28, 28, 1, image_test::ImageAt(set, i));
  }
}

// dir/files/<split>_NNNNN.dcm: 16 bits allocated, 12 stored, stored value s = v + 512, Rescale
// Slope 2 and Intercept -1024 (modality value 2 v), window centre 255.5 and width 511 in each
// file, which maps 2 v back to v exactly (dicom.h); manifest lines path,label,split in shard
// order.
void WriteDicomShard(const ImageSet& set, const std::vector<int64_t>& indices, const char* split,
                     const fs::path& dir, std::string* manifest) {
  fs::create_directories(dir / "files");
  for (size_t k = 0; k < indices.size(); ++k) {
    const int64_t i = indices[k];
    const DicomWriteSpec s = image_test::WindowedDicomSpec(image_test::ImageAt(set, i));
    const std::string file = "files/" + Name(split, static_cast<int64_t>(k)) + ".dcm";
    WriteDicomFile((dir / file).string(), s);
    *manifest += file + "," + std::to_string(set.labels[static_cast<size_t>(i)]) + "," + split +
                 "\n";
  }
}

std::string TomlList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", \"" : "\"") + items[i] + "\"";
  return out + "]";
}

TEST(HospitalFederationTest, NpzImageFolderAndDicomSitesMatchTheAllNpzFederation) {
  TempDir dir("fedmed-mixed");
  const std::string npz = ResolveDataPath("medmnist/pneumoniamnist.npz");
  const MedMnist data = LoadMedMnist(npz);

  // The 3-site IID shards the all-.npz federation's sites take (LoadSiteSplit's partition).
  const auto convert_start = std::chrono::steady_clock::now();
  PartitionSpec spec;
  spec.scheme = PartitionScheme::kIid;
  spec.num_sites = 3;
  spec.seed = 0;
  std::vector<int64_t> train[3], test[3];
  for (int k = 0; k < 3; ++k) {
    spec.min_samples_per_site = 10;
    train[k] = ShardIndices(data.train.labels, data.num_classes, spec, k);
    spec.min_samples_per_site = 1;
    test[k] = ShardIndices(data.test.labels, data.num_classes, spec, k);
  }
  WriteNpzShard(data, train[0], test[0], dir / "site-1.npz");
  WritePngFolder(data.train, train[1], "train", dir / "site-2");
  WritePngFolder(data.test, test[1], "test", dir / "site-2");
  std::string manifest = "path,label,split\n";
  WriteDicomShard(data.train, train[2], "train", dir / "site-3", &manifest);
  WriteDicomShard(data.test, test[2], "test", dir / "site-3", &manifest);
  std::ofstream(dir / "site-3/manifest.csv") << manifest;
  const double convert_seconds = Seconds(convert_start);

  const std::string training =
      "\n[model]\nname = \"cnn\"\n\n[training]\nlocal_epochs = 1\nbatch_size = 32\n"
      "optimizer = \"adam\"\nlearning_rate = 0.001\n";
  const std::string mixed =
      "[simulation]\nname = \"mixed\"\nmode = \"threads\"\n\n[data]\nsite_paths = " +
      TomlList({dir / "site-1.npz", dir / "site-2", dir / "site-3/manifest.csv"}) +
      "\nsite_formats = [\"medmnist\", \"image_folder\", \"dicom\"]\n\n[federation]\n"
      "rounds = 2\nseed = 0\nround_deadline_seconds = 300\n" + training +
      "\n[evaluation]\ndata = \"" + npz + "\"\nsplit = \"test\"\nfederated = true\n";
  TempDir mixed_dir("fedmed-mixed-run");
  const auto mixed_start = std::chrono::steady_clock::now();
  const std::optional<fs::path> mixed_run = testing::RunFederation(mixed_dir, mixed);
  ASSERT_TRUE(mixed_run.has_value());
  const double mixed_seconds = Seconds(mixed_start);

  TempDir npz_dir("fedmed-mixed-npz");
  const auto npz_start = std::chrono::steady_clock::now();
  std::string all_npz = testing::FederationToml(/*sites=*/3, /*rounds=*/2, /*federated=*/true);
  all_npz.insert(all_npz.find("\n") + 1, "mode = \"threads\"\n");
  const std::optional<fs::path> npz_run = testing::RunFederation(npz_dir, all_npz);
  ASSERT_TRUE(npz_run.has_value());
  const double npz_seconds = Seconds(npz_start);

  const nlohmann::json m = LastRow(*mixed_run, 2, mixed_dir);
  const nlohmann::json n = LastRow(*npz_run, 2, npz_dir);
  ASSERT_TRUE(m.is_object() && n.is_object());
  // The same images took part: every training image once, every test image once.
  EXPECT_EQ(m["num_samples"].get<int>(), 4708);
  EXPECT_EQ(n["num_samples"].get<int>(), 4708);
  EXPECT_EQ(m["federated"]["num_samples"].get<int>(), 624);
  EXPECT_EQ(m["global"]["num_samples"].get<int>(), 624);
  const double mixed_auc = m["global"]["auc"].get<double>();
  const double npz_auc = n["global"]["auc"].get<double>();
  std::cout << "mixed formats: global test AUC " << mixed_auc << " (ACC "
            << m["global"]["accuracy"].get<double>() << ", federated AUC "
            << m["federated"]["auc"].get<double>() << ") vs all-.npz " << npz_auc << " (ACC "
            << n["global"]["accuracy"].get<double>() << ", federated AUC "
            << n["federated"]["auc"].get<double>() << "); |difference| "
            << std::fabs(mixed_auc - npz_auc) << "; conversion " << convert_seconds
            << " s, mixed run " << mixed_seconds << " s, .npz run " << npz_seconds << " s"
            << std::endl;
  RecordProperty("mixed_auc", std::to_string(mixed_auc));
  RecordProperty("npz_auc", std::to_string(npz_auc));
  EXPECT_NEAR(mixed_auc, npz_auc, 0.01);
  EXPECT_GE(mixed_auc, 0.90);

  // Each site read its own format, with no bad file, and announced the same preprocessing.
  const fs::path logs = *mixed_run;
  const std::string site2 = ReadFile((logs / "site-2" / "site.log").string());
  const std::string site3 = ReadFile((logs / "site-3" / "site.log").string());
  EXPECT_NE(ReadFile((logs / "site-1" / "site.log").string()).find("(medmnist)"),
            std::string::npos);
  EXPECT_NE(site2.find("(image_folder), all of it: " + std::to_string(train[1].size()) +
                       " training images"),
            std::string::npos)
      << site2;
  EXPECT_NE(site3.find("(dicom), all of it: " + std::to_string(train[2].size()) +
                       " training images"),
            std::string::npos)
      << site3;
  for (const std::string* log : {&site2, &site3}) {
    EXPECT_EQ(log->find("bad file"), std::string::npos) << *log;
    EXPECT_NE(log->find("preprocessing size=0;channels=0;norm=medmnist;equalize=0"),
              std::string::npos);
  }
}

// ---- TorchScript ----

TEST(HospitalFederationTest, TorchScriptModelFineTunesAndItsExportRunsInPythonWithCppOutputs) {
  TempDir dir("fedmed-torchscript");
  const std::string python = testing::FindPythonWith("torch");
  ASSERT_FALSE(python.empty()) << "no Python that can 'import torch'; install Debian's "
                                  "python3-torch or set FEDMED_PYTHON";
  ASSERT_NE(RunPython(python, dir, "make.py", kMakeScripts, dir.path().string()).find("done"),
            std::string::npos);
  const std::string script = dir / "net.pt";

  const std::string config = testing::FederationToml(/*sites=*/3, /*rounds=*/2,
                                                     /*federated=*/false);
  const std::string cnn = "[model]\nname = \"cnn\"\n";
  ASSERT_NE(config.find(cnn), std::string::npos);
  std::string scripted = config;
  scripted.replace(scripted.find(cnn), cnn.size(),
                   "[model]\nname = \"torchscript\"\ntorchscript_path = \"" + script +
                       "\"\ninitial_weights = \"" + (dir / "net_other_init.pt") + "\"\n");
  scripted.insert(scripted.find("[training]\n") + 11, "frozen_layers = [\"features.0\"]\n");
  const auto start = std::chrono::steady_clock::now();
  const std::optional<fs::path> run = testing::RunFederation(dir, scripted);
  ASSERT_TRUE(run.has_value());
  const double run_seconds = Seconds(start);
  const nlohmann::json last = LastRow(*run, 2, dir);
  ASSERT_TRUE(last.is_object());
  EXPECT_EQ(last["num_samples"].get<int>(), 4708);
  const double auc = last["global"]["auc"].get<double>();
  EXPECT_GE(auc, 0.85) << last.dump();

  // Every party named the file: the sites announced its architecture, the coordinator checked it.
  const std::string coordinator_log = ReadFile((*run / "coordinator" / "coordinator.log").string());
  EXPECT_NE(coordinator_log.find("model: TorchScript file " + script), std::string::npos);
  EXPECT_NE(coordinator_log.find("initial weights: " + (dir / "net_other_init.pt")),
            std::string::npos);
  EXPECT_NE(coordinator_log.find("frozen layers (not trained by the sites): features.0"),
            std::string::npos);
  for (const char* site : {"site-1", "site-2", "site-3"}) {
    const std::string log = ReadFile((*run / site / "site.log").string());
    EXPECT_NE(log.find("model: TorchScript file " + script), std::string::npos) << log;
    EXPECT_NE(log.find("training torchscript"), std::string::npos) << log;
    EXPECT_NE(log.find("frozen layers features.0"), std::string::npos) << log;
  }

  // Taken out: both files, named in the log.
  const fs::path state_dict = *run / "coordinator" / "global_model.pt";
  const fs::path exported = *run / "coordinator" / "global.torchscript.pt";
  ASSERT_TRUE(fs::exists(state_dict));
  ASSERT_TRUE(fs::exists(exported));
  EXPECT_NE(coordinator_log.find("global model: " + state_dict.string() + " (state dict, "
                                 "torch.load) and " + exported.string() +
                                 " (TorchScript, torch.jit.load)"),
            std::string::npos)
      << coordinator_log;

  // C++: the network of the file with the final global model's parameters.
  const ModelState global = LoadCheckpoint(state_dict.string());
  const ModelSpec spec{"torchscript", 1, 2, 28, script};
  const std::shared_ptr<Classifier> model = MakeModel(spec);
  const ModelState file_weights = ExportState(*model);
  const ModelState initial = LoadInitialWeights(dir / "net_other_init.pt", file_weights);
  ImportState(*model, global);
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor logits = model->forward(FixedInputs()).flatten().to(torch::kDouble);
  std::vector<double> cpp(logits.data_ptr<double>(), logits.data_ptr<double>() + logits.numel());
  // The federation fine-tuned it from initial_weights: the frozen first convolution
  // (features.0.weight, features.0.bias) is exactly the initial one, not the file's own; every
  // other parameter moved.
  ASSERT_EQ(global.tensors.size(), initial.tensors.size());
  for (size_t t = 0; t < global.tensors.size(); ++t) {
    const NamedTensor& g = global.tensors[t];
    double moved = 0;
    for (size_t i = 0; i < g.values.size(); ++i) {
      moved = std::max(moved, static_cast<double>(std::fabs(g.values[i] -
                                                             initial.tensors[t].values[i])));
    }
    if (g.name.rfind("features.0.", 0) == 0) {
      EXPECT_EQ(moved, 0.0) << g.name;
      EXPECT_NE(g.values, file_weights.tensors[t].values) << g.name;
    } else {
      EXPECT_GT(moved, 1e-4) << g.name;
    }
  }

  // Python: torch.jit.load on the exported file, no fedmed and no model code.
  const std::vector<double> py =
      ParseLogits(RunPython(python, dir, "run.py", kRunExported, exported.string()));
  ASSERT_EQ(py.size(), cpp.size());
  ASSERT_EQ(py.size(), 8u);
  EXPECT_GT(*std::max_element(py.begin(), py.end()) - *std::min_element(py.begin(), py.end()),
            1e-3);  // not a constant
  double max_diff = 0;
  for (size_t i = 0; i < py.size(); ++i) max_diff = std::max(max_diff, std::fabs(py[i] - cpp[i]));
  std::cout << "torchscript federation: global test AUC " << auc << " in " << run_seconds
            << " s; exported model in Python vs C++: max |logit difference| " << max_diff
            << std::endl;
  RecordProperty("torchscript_max_abs_diff", std::to_string(max_diff));
  EXPECT_LE(max_diff, 1e-5);
}

// ---- registration refusals (in this process) ----

class RegistrationRefusalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = ProvisionFederation(testing::TwoSiteFederationOptions(dir_ / "pki"));
  }

  void TearDown() override { StopCoordinator(); }

  // Starts a coordinator on the provisioned config, changed by `change`.
  void StartCoordinator(const std::function<void(CoordinatorConfig*)>& change = nullptr) {
    CoordinatorConfig config = LoadCoordinatorConfig(pki_.coordinator_config);
    config.output_dir = dir_ / "coordinator";
    if (change) change(&config);
    Coordinator::Options options;
    options.handle_signals = false;
    coordinator_ = std::make_unique<Coordinator>(config, options);
    port_ = coordinator_->Start();
    runner_ = std::thread([this] { coordinator_->Run(); });
  }

  void StopCoordinator() {
    if (runner_.joinable()) {
      coordinator_->Stop();
      runner_.join();
    }
    coordinator_.reset();
  }

  SiteConfig Site(const std::string& name) {
    SiteConfig site = LoadSiteConfig(pki_.site_configs.at(name));
    site.coordinator_address = "127.0.0.1:" + std::to_string(port_);
    site.output_dir = dir_ / name;
    site.give_up_after_seconds = 30;
    return site;
  }

  // Runs the site agent to its end (a refused site ends at once, with status 2).
  int RunSite(const SiteConfig& site) {
    SiteAgent agent(site, "");
    return agent.Run(/*handle_signals=*/false);
  }

  // Runs the site agent `site` (named `name`) until the coordinator logs its registration (at
  // most 30 s; a test failure otherwise), then stops it.
  void ExpectRegisters(const SiteConfig& site, const std::string& name) {
    SiteAgent agent(site, "");
    std::thread runner([&] { agent.Run(/*handle_signals=*/false); });
    EXPECT_TRUE(testing::WaitForFileContaining(dir_ / "coordinator/coordinator.log",
                                               name + " registered", 30))
        << CoordinatorLog();
    agent.Stop();
    runner.join();
  }

  std::string SiteLog(const std::string& name) { return ReadFile(dir_ / (name + "/site.log")); }
  std::string CoordinatorLog() { return ReadFile(dir_ / "coordinator/coordinator.log"); }

  // Makes net.pt, net_other_init.pt and net_wide.pt in the test directory.
  void MakeScripts() {
    const std::string python = testing::FindPythonWith("torch");
    ASSERT_FALSE(python.empty()) << "no Python that can 'import torch'; install Debian's "
                                    "python3-torch or set FEDMED_PYTHON";
    ASSERT_NE(RunPython(python, dir_, "make.py", kMakeScripts, dir_.path().string()).find("done"),
              std::string::npos);
  }

  void StartScriptedCoordinator() {
    StartCoordinator([this](CoordinatorConfig* c) {
      c->model = "torchscript";
      c->torchscript_path = dir_ / "net.pt";
    });
  }

  TempDir dir_{"fedmed-refusal"};
  ProvisionResult pki_;
  std::unique_ptr<Coordinator> coordinator_;
  std::thread runner_;
  int port_ = 0;
};

TEST_F(RegistrationRefusalTest, SiteWhosePreprocessingDiffersIsRefusedNamingTheField) {
  StartCoordinator();
  SiteConfig site = Site("site-1");
  site.data.preprocess.equalize = true;
  EXPECT_EQ(RunSite(site), 2);
  const std::string expected =
      "site-1's preprocessing differs from the federation's: equalize: 1 at site-1, 0 at the "
      "coordinator";
  const std::string site_log = SiteLog("site-1");
  EXPECT_NE(site_log.find("the coordinator refused this site"), std::string::npos) << site_log;
  EXPECT_NE(site_log.find(expected), std::string::npos) << site_log;
  const std::string coordinator_log = CoordinatorLog();
  EXPECT_NE(coordinator_log.find("registration refused: " + expected), std::string::npos)
      << coordinator_log;
  EXPECT_EQ(coordinator_log.find("site-1 registered"), std::string::npos);
}

TEST_F(RegistrationRefusalTest, FederationPreprocessingIsWhatSitesMustDeclare) {
  // The coordinator asks for 32 px images: a site with the default (keep the 28 px) is refused,
  // one that resizes to 32 px is accepted.
  StartCoordinator([](CoordinatorConfig* c) {
    c->image_size = 32;
    c->preprocessing.image_size = 32;
  });
  EXPECT_EQ(RunSite(Site("site-2")), 2);
  EXPECT_NE(SiteLog("site-2").find("image_size: 0 at site-2, 32 at the coordinator"),
            std::string::npos)
      << SiteLog("site-2");

  SiteConfig resized = Site("site-1");
  resized.data.preprocess.image_size = 32;
  ExpectRegisters(resized, "site-1");
  EXPECT_NE(SiteLog("site-1").find("32x32 px"), std::string::npos) << SiteLog("site-1");
}

TEST_F(RegistrationRefusalTest, SiteWhoseScriptDiffersIsRefusedNamingTheParameter) {
  MakeScripts();
  StartScriptedCoordinator();
  SiteConfig site = Site("site-1");
  site.model.torchscript_path = dir_ / "net_wide.pt";
  EXPECT_EQ(RunSite(site), 2);
  const std::string site_log = SiteLog("site-1");
  EXPECT_NE(site_log.find("the coordinator refused this site"), std::string::npos) << site_log;
  // The first convolution has 12 output channels in the site's script, 8 in the coordinator's.
  EXPECT_NE(site_log.find("features.0.weight"), std::string::npos) << site_log;
  EXPECT_NE(site_log.find("[8, 1, 3, 3]"), std::string::npos) << site_log;
  EXPECT_NE(site_log.find("[12, 1, 3, 3]"), std::string::npos) << site_log;
  EXPECT_NE(CoordinatorLog().find("registration refused: "), std::string::npos);
  EXPECT_EQ(CoordinatorLog().find("site-1 registered"), std::string::npos);
}

TEST_F(RegistrationRefusalTest, SiteWithoutAScriptIsToldWhatToSetAndASameArchitectureJoins) {
  MakeScripts();
  StartScriptedCoordinator();
  EXPECT_EQ(RunSite(Site("site-2")), 2);
  const std::string site_log = SiteLog("site-2");
  EXPECT_NE(site_log.find("site-2 has no TorchScript model, but this federation trains one"),
            std::string::npos)
      << site_log;
  EXPECT_NE(site_log.find("set [model] torchscript_path in site-2's site.toml"),
            std::string::npos)
      << site_log;

  // Same names and shapes, other weights: accepted (the values are what training changes).
  SiteConfig same = Site("site-1");
  same.model.torchscript_path = dir_ / "net_other_init.pt";
  ExpectRegisters(same, "site-1");
}

TEST_F(RegistrationRefusalTest, SiteDeclinesATrainTaskItCannotTrainWithTheReason) {
  // The federation freezes conv1; a DP-SGD site cannot train frozen layers (per-sample gradients
  // of part of the model are not implemented): it declines the round with the reason, which
  // the coordinator logs, and stays registered.
  StartCoordinator([](CoordinatorConfig* c) {
    c->min_sites = 1;
    c->min_available_sites = 1;
    c->rounds = 1;
    c->federated_evaluation = false;
    c->training.frozen_layers = {"conv1"};
  });
  SiteConfig site = Site("site-1");
  site.privacy.mode = "dp-sgd";
  site.privacy.clipping_norm = 1.0;
  site.privacy.noise_multiplier = 1.1;
  site.privacy.delta = 1e-5;
  site.privacy.budget_epsilon = 8;
  SiteAgent agent(site, "");
  std::thread thread([&] { agent.Run(false); });
  const std::string expected = "site-1 declined: cannot train: frozen_layers: not supported with "
                               "DP-SGD";
  EXPECT_TRUE(testing::WaitForFileContaining(dir_ / "coordinator/coordinator.log", expected, 60))
      << CoordinatorLog();
  // It waits before answering the coordinator's retry of the round (logged after the refusal
  // reached the coordinator: wait for it before stopping the site).
  EXPECT_TRUE(testing::WaitForFileContaining(
      dir_ / "site-1/site.log", "before polling again (1 task(s) refused in a row)", 60))
      << SiteLog("site-1");
  agent.Stop();
  thread.join();
  const std::string site_log = SiteLog("site-1");
  EXPECT_NE(site_log.find("round 1: refusing to train: frozen_layers: not supported with DP-SGD"),
            std::string::npos)
      << site_log;
  // Nothing was spent: the privacy log records no training.
  EXPECT_EQ(ReadFile(dir_ / "site-1/privacy_log.jsonl").find("\"trained\""), std::string::npos);
}

TEST_F(RegistrationRefusalTest, CoordinatorChecksFrozenLayersAndInitialWeightsAtStartUp) {
  CoordinatorConfig config = LoadCoordinatorConfig(pki_.coordinator_config);
  config.output_dir = dir_ / "coordinator";
  Coordinator::Options options;
  options.handle_signals = false;
  config.training.frozen_layers = {"conv1", "conv9"};  // the cnn has conv1 and conv2
  try {
    Coordinator coordinator(config, options);
    ADD_FAILURE() << "a frozen layer that matches no parameter was accepted";
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(pki_.coordinator_config + ": [training] frozen_layers[1]: \"conv9\" "
                           "matches no parameter of the model"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("conv2"), std::string::npos) << message;  // the model's layers
  }

  // Initial weights of another layout: refused naming the file.
  config.training.frozen_layers = {"conv1"};
  ModelState other;
  other.tensors.push_back(NamedTensor{"fc.weight", {2, 3}, {1, 2, 3, 4, 5, 6}});
  SaveCheckpoint(other, dir_ / "other.pt");
  config.initial_weights = dir_ / "other.pt";
  try {
    Coordinator coordinator(config, options);
    ADD_FAILURE() << "initial weights of another layout were accepted";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(dir_ / "other.pt"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace fedmed
