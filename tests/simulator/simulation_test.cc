// fedmed-simulate's experiments: the sweep grid and its validation, the shared compute pool of
// the threads mode, and end to end (the fedmed-simulate binary on a small slice of real
// PneumoniaMNIST): threads mode against process mode, a 2-point sweep with the pooled baseline,
// one data file per site, and model selection on the validation split.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/data/medmnist.h"
#include "common/util/data_path.h"
#include "common/util/error.h"
#include "common/util/process.h"
#include "simulator/experiment.h"
#include "simulator/model_selection.h"
#include "simulator/simulation.h"
#include "site_agent/compute_slots.h"
#include "tests/data/npz_test_util.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// The line of `text` that starts with `prefix` ("" if none).
std::string LineStartingWith(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0) return line;
  }
  return "";
}

SimulationConfig Base() {
  SimulationConfig c;
  c.config_path = "sweep.toml";
  c.data_path = "medmnist/pneumoniamnist.npz";
  return c;
}

// ---- the grid ----

TEST(SweepTest, NothingSweptIsOnePointWithoutValues) {
  const std::vector<SweepPoint> points = ExpandSweep(Base());
  ASSERT_EQ(points.size(), 1u);
  EXPECT_TRUE(points[0].values.empty());
}

TEST(SweepTest, CartesianProductWithTheLastKeyFastest) {
  SimulationConfig base = Base();
  base.partition = "dirichlet";
  base.coordinator.strategy.proximal_mu = 0.01;  // for fedprox; dropped for fedavg
  base.sweep.strategy = {"fedavg", "fedprox"};
  base.sweep.alpha = {0.3, 100};
  base.sweep.seed = {0, 1, 2};
  const std::vector<SweepPoint> points = ExpandSweep(base);
  ASSERT_EQ(points.size(), 12u);
  EXPECT_EQ(points[0].label, "strategy=fedavg alpha=0.3 seed=0");
  EXPECT_EQ(points[1].label, "strategy=fedavg alpha=0.3 seed=1");
  EXPECT_EQ(points[3].label, "strategy=fedavg alpha=100 seed=0");
  EXPECT_EQ(points[11].label, "strategy=fedprox alpha=100 seed=2");
  EXPECT_EQ(points[11].slug, "fedprox-alpha100-seed2");
  std::set<std::string> labels;
  for (const SweepPoint& p : points) labels.insert(p.label);
  EXPECT_EQ(labels.size(), 12u);

  const SimulationConfig& fedavg = points[1].config;
  EXPECT_EQ(fedavg.coordinator.strategy.name, "fedavg");
  EXPECT_FALSE(fedavg.coordinator.strategy.proximal_mu.has_value());
  EXPECT_EQ(fedavg.alpha, 0.3);
  EXPECT_EQ(fedavg.coordinator.seed, 1u);
  EXPECT_EQ(fedavg.data_seed, 1u);
  EXPECT_TRUE(fedavg.sweep.empty());
  const SimulationConfig& fedprox = points[11].config;
  EXPECT_EQ(fedprox.coordinator.strategy.name, "fedprox");
  EXPECT_EQ(fedprox.coordinator.strategy.proximal_mu, 0.01);
  EXPECT_EQ(fedprox.alpha, 100);
}

TEST(SweepTest, SitesAndEpsilonApplyToTheirSettings) {
  SimulationConfig base = Base();
  base.privacy.mode = "dp-sgd";
  base.privacy.clipping_norm = 1.0;
  base.privacy.delta = 1e-5;
  base.sweep.sites = {5, 10};
  base.sweep.epsilon = {1, 8};
  const std::vector<SweepPoint> points = ExpandSweep(base);
  ASSERT_EQ(points.size(), 4u);
  EXPECT_EQ(points[3].label, "sites=10 epsilon=8");
  EXPECT_EQ(points[3].slug, "sites10-eps8");
  EXPECT_EQ(points[3].config.sites, 10);
  EXPECT_EQ(points[3].config.privacy.target_epsilon, 8);
  EXPECT_EQ(points[3].config.privacy.budget_epsilon, 8);
}

TEST(SweepTest, ValuesThatCannotApplyAreRefusedWithTheReason) {
  SimulationConfig iid = Base();
  iid.sweep.alpha = {0.1};
  EXPECT_NE(testing::ErrorMessageOf<ConfigError>([&] { ExpandSweep(iid); }).find("[sweep] alpha"),
            std::string::npos);

  SimulationConfig no_privacy = Base();
  no_privacy.sweep.epsilon = {1};
  EXPECT_NE(
      testing::ErrorMessageOf<ConfigError>([&] { ExpandSweep(no_privacy); }).find("mode \"none\""),
      std::string::npos);

  SimulationConfig files = Base();
  files.site_paths = {"a.npz", "b.npz"};
  files.sites = 2;
  files.sweep.sites = {2, 4};
  EXPECT_NE(testing::ErrorMessageOf<ConfigError>([&] { ExpandSweep(files); }).find("site_paths"),
            std::string::npos);

  SimulationConfig fedprox = Base();  // fedprox needs proximal_mu
  fedprox.sweep.strategy = {"fedavg", "fedprox"};
  EXPECT_NE(
      testing::ErrorMessageOf<ConfigError>([&] { ExpandSweep(fedprox); }).find("strategy=fedprox"),
      std::string::npos);

  SimulationConfig twice = Base();
  twice.sweep.seed = {1, 1};
  EXPECT_NE(testing::ErrorMessageOf<ConfigError>([&] { ExpandSweep(twice); }).find("distinct"),
            std::string::npos);
}

TEST(SweepTest, SitePathsSetTheNumberOfSitesAndEachSitesData) {
  TempDir dir("fedmed-sweep-config");
  const std::string path = dir / "files.toml";
  std::ofstream(path) << "[simulation]\nmode = \"threads\"\n[data]\npath = \"eval.npz\"\n"
                         "site_paths = [\"a.npz\", \"b.npz\", \"c.npz\"]\n";
  const SimulationConfig c = LoadSimulationConfig(path);
  EXPECT_EQ(c.sites, 3);
  EXPECT_EQ(c.mode, "threads");
  const SiteDataConfig b = SiteDataFor(c, 2);
  EXPECT_EQ(b.path, "b.npz");
  EXPECT_EQ(b.partition, "none");
  EXPECT_EQ(b.num_shards, 1);

  std::ofstream(path) << "[simulation]\nsites = 2\n[data]\nsite_paths = [\"a.npz\", \"b.npz\", "
                         "\"c.npz\"]\n";
  EXPECT_NE(testing::ErrorMessageOf<ConfigError>([&] {
              LoadSimulationConfig(path);
            }).find("[simulation] sites"),
            std::string::npos);
  std::ofstream(path) << "[simulation]\nmode = \"fibers\"\n[data]\npath = \"x.npz\"\n";
  EXPECT_NE(testing::ErrorMessageOf<ConfigError>([&] {
              LoadSimulationConfig(path);
            }).find("[simulation] mode"),
            std::string::npos);
}

TEST(SweepTest, SiteFormatsPreprocessingAndTheScriptReachEverySite) {
  TempDir dir("fedmed-site-formats");
  const std::string path = dir / "mixed.toml";
  std::ofstream(path) << "[data]\nsite_paths = [\"a.npz\", \"folder\", \"dicom/labels.csv\"]\n"
                         "site_formats = [\"medmnist\", \"image_folder\", \"dicom\"]\n"
                         "[model]\nname = \"torchscript\"\ntorchscript_path = \"net.pt\"\n"
                         "image_size = 32\n"
                         "[preprocessing]\nimage_size = 32\nequalize = true\n"
                         "[evaluation]\ndata = \"eval.npz\"\n";
  const SimulationConfig c = LoadSimulationConfig(path);
  EXPECT_EQ(c.sites, 3);
  // Resolved against the config file, as coordinator.toml's paths are.
  EXPECT_EQ(c.coordinator.torchscript_path, (dir.path() / "net.pt").string());
  const SiteDataConfig folder = SiteDataFor(c, 2), dicom = SiteDataFor(c, 3);
  EXPECT_EQ(SiteDataFor(c, 1).format, "medmnist");
  EXPECT_EQ(folder.format, "image_folder");
  EXPECT_EQ(folder.path, "folder");
  EXPECT_EQ(dicom.format, "dicom");
  EXPECT_EQ(dicom.partition, "none");
  // Every site preprocesses as the coordinator says.
  EXPECT_EQ(dicom.preprocess.Canonical(), c.coordinator.preprocessing.Canonical());
  EXPECT_EQ(dicom.preprocess.Canonical(), "size=32;channels=0;norm=medmnist;equalize=1");

  std::ofstream(path) << "[data]\nsite_paths = [\"a.npz\", \"b\"]\n"
                         "site_formats = [\"medmnist\"]\n[evaluation]\ndata = \"e.npz\"\n";
  EXPECT_NE(testing::ErrorMessageOf<ConfigError>([&] { LoadSimulationConfig(path); })
                .find("[data] site_formats: expected one format per [data] site_paths entry (2)"),
            std::string::npos);
  std::ofstream(path) << "[data]\nsite_paths = [\"a.npz\", \"b\"]\n"
                         "site_formats = [\"medmnist\", \"png\"]\n[evaluation]\ndata = \"e.npz\"\n";
  EXPECT_NE(testing::ErrorMessageOf<ConfigError>([&] { LoadSimulationConfig(path); })
                .find("[data] site_formats: expected \"medmnist\", \"image_folder\", \"csv\" or "
                      "\"dicom\" for each site, got \"png\""),
            std::string::npos);
  std::ofstream(path) << "[data]\npath = \"x.npz\"\n[model]\nname = \"torchscript\"\n";
  EXPECT_NE(testing::ErrorMessageOf<ConfigError>([&] {
              LoadSimulationConfig(path);
            }).find("[model] torchscript_path"),
            std::string::npos);
  std::ofstream(path) << "[data]\npath = \"x.npz\"\n[preprocessing]\nchannels = 2\n";
  EXPECT_NE(testing::ErrorMessageOf<ConfigError>([&] {
              LoadSimulationConfig(path);
            }).find("[preprocessing] channels"),
            std::string::npos);
}

// ---- the compute pool ----

TEST(ComputeSlotsTest, AtMostSlotsHoldersRunOnTheSlotsOwnThreads) {
  auto slots = std::make_shared<ComputeSlots>(2);
  std::atomic<int> running{0}, most{0};
  std::mutex mu;
  std::set<std::thread::id> compute_threads;
  std::vector<std::thread> agents;
  for (int i = 0; i < 8; ++i) {
    agents.emplace_back([&] {
      for (int round = 0; round < 3; ++round) {
        ComputeSlots::Lease lease = slots->Acquire();
        lease.Run([&] {
          const int now = ++running;
          int seen = most.load();
          while (now > seen && !most.compare_exchange_weak(seen, now)) {
          }
          {
            std::lock_guard<std::mutex> lock(mu);
            compute_threads.insert(std::this_thread::get_id());
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
          --running;
        });
      }
    });
  }
  for (std::thread& t : agents) t.join();
  EXPECT_LE(most.load(), 2);
  EXPECT_EQ(slots->peak_in_use(), 2);
  EXPECT_EQ(slots->in_use(), 0);
  EXPECT_LE(compute_threads.size(), 2u);  // 24 jobs, two threads
}

TEST(ComputeSlotsTest, RunRethrowsAndTryAcquireTimesOut) {
  ComputeSlots slots(1);
  {
    ComputeSlots::Lease lease = slots.Acquire();
    EXPECT_THROW(lease.Run([] { throw std::runtime_error("diverged"); }), std::runtime_error);
    EXPECT_FALSE(slots.TryAcquireFor(std::chrono::milliseconds(20)).has_value());
    lease.Run([] {});  // the slot's thread survived the exception
  }
  EXPECT_TRUE(slots.TryAcquireFor(std::chrono::milliseconds(20)).has_value());
  EXPECT_THROW(ComputeSlots(0), ConfigError);
}

// ---- model selection ----

ScoredModel Scored(int index, double selection_auc, double report_auc) {
  ScoredModel s;
  s.index = index;
  s.selection.auc = selection_auc;
  s.report.auc = report_auc;
  return s;
}

TEST(ModelSelectionTest, HighestSelectionAucWinsWhateverTheReportSplitSays) {
  // Round 2 has the best report-split AUC, round 3 the best selection-split AUC: 3 is chosen.
  EXPECT_EQ(BestBySelectionAuc({Scored(1, 0.90, 0.80), Scored(2, 0.91, 0.99),
                                Scored(3, 0.95, 0.70)}),
            2u);
  // Ties go to the earliest model (fewer rounds); a NaN AUC never wins.
  EXPECT_EQ(BestBySelectionAuc({Scored(1, std::nan(""), 0.9), Scored(2, 0.93, 0.5),
                                Scored(3, 0.93, 0.9), Scored(4, 0.92, 0.9)}),
            1u);
  EXPECT_THROW(BestBySelectionAuc({}), Error);
  EXPECT_THROW(BestBySelectionAuc({Scored(1, std::nan(""), 0.9)}), Error);
}

TEST(ModelSelectionTest, SelectingOnTheReportedSplitIsRefused) {
  SimulationConfig same = Base();
  same.select_split = "test";  // [evaluation] split defaults to "test"
  const std::string message =
      testing::ErrorMessageOf<ConfigError>([&] { ValidateSimulationConfig(same); });
  EXPECT_NE(message.find("[simulation] select_split"), std::string::npos) << message;
  EXPECT_NE(message.find("another split than [evaluation] split"), std::string::npos) << message;
  SimulationConfig unknown = Base();
  unknown.select_split = "validation";
  EXPECT_NE(testing::ErrorMessageOf<ConfigError>([&] {
              ValidateSimulationConfig(unknown);
            }).find("\"val\""),
            std::string::npos);
  SimulationConfig val = Base();
  val.select_split = "val";
  EXPECT_NO_THROW(ValidateSimulationConfig(val));
}

// ---- end to end, on a slice of PneumoniaMNIST ----

// Writes n_train training images from train_begin, the first n_val validation images and n_test
// test images from test_begin, of `data`, as a MedMNIST .npz file.
void WriteSlice(const MedMnist& data, int64_t train_begin, int64_t n_train, int64_t n_val,
                int64_t test_begin, int64_t n_test, const std::string& path) {
  std::vector<test_util::NpzEntry> entries;
  auto add = [&](const char* name, const ImageSet& set, int64_t begin, int64_t n) {
    ASSERT_LE(begin + n, set.size()) << name;
    const int64_t numel = set.image_numel();
    const std::string pixels(reinterpret_cast<const char*>(set.pixels.data()) + begin * numel,
                             static_cast<size_t>(n * numel));
    const std::string labels(reinterpret_cast<const char*>(set.labels.data() + begin),
                             static_cast<size_t>(n) * sizeof(int64_t));
    entries.push_back({std::string(name) + "_images.npy",
                       test_util::NpyBytes("|u1", {n, set.height, set.width}, pixels)});
    entries.push_back(
        {std::string(name) + "_labels.npy", test_util::NpyBytes("<i8", {n, 1}, labels)});
  };
  add("train", data.train, train_begin, n_train);
  add("val", data.val, 0, n_val);
  add("test", data.test, test_begin, n_test);
  test_util::WriteNpz(path, entries);
}

class SimulateBinaryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("fedmed-simulate");
    const MedMnist data = LoadMedMnist(ResolveDataPath("medmnist/pneumoniamnist.npz"));
    WriteSlice(data, 0, 600, 20, 0, 200, *dir_ / "slice.npz");
    WriteSlice(data, 600, 240, 20, 200, 60, *dir_ / "hospital-a.npz");
    WriteSlice(data, 900, 160, 20, 260, 40, *dir_ / "hospital-b.npz");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  // Writes `body` after a common [federation]/[model]/[training]/[evaluation] part, runs
  // fedmed-simulate on it with `flags`, and returns its output; fails the test on a non-zero exit.
  std::string Simulate(const std::string& name, const std::string& body,
                       const std::vector<std::string>& flags = {}, int rounds = 1) {
    const std::string config = *dir_ / (name + ".toml");
    std::ofstream(config) << body << "\n[federation]\nrounds = " << rounds << R"(
seed = 0
round_deadline_seconds = 300

[model]
name = "cnn"

[training]
local_epochs = 1
batch_size = 32
optimizer = "adam"
learning_rate = 0.001

[evaluation]
split = "test"
federated = true
)";
    std::vector<std::string> argv = {testing::BinDir() + "/fedmed-simulate", "--config", config};
    if (std::find(flags.begin(), flags.end(), "--select-only") == flags.end()) {
      argv.insert(argv.end(), {"--output", *dir_ / ("runs-" + name)});
    }
    argv.insert(argv.end(), flags.begin(), flags.end());
    const std::string out = *dir_ / (name + ".out");
    ChildProcess simulate(argv, out);
    const std::optional<int> status = simulate.Wait(300);
    EXPECT_TRUE(status.has_value()) << name << ": fedmed-simulate did not finish in 5 minutes";
    EXPECT_EQ(status.value_or(-1), 0) << testing::ReadFile(out);
    return testing::ReadFile(out);
  }

  // The single run directory (or sweep directory) under runs-<name>.
  static fs::path Only(const std::string& name) {
    fs::path found;
    for (const auto& entry : fs::directory_iterator(*dir_ / ("runs-" + name))) found = entry.path();
    return found;
  }

  static std::vector<nlohmann::json> Metrics(const fs::path& run) {
    return ReadJsonLines((run / "coordinator" / "metrics.jsonl").string());
  }

  static std::set<std::string> Keys(const nlohmann::json& j) {
    std::set<std::string> keys;
    for (const auto& [key, value] : j.items()) keys.insert(key);
    return keys;
  }

  static TempDir* dir_;
};

TempDir* SimulateBinaryTest::dir_ = nullptr;

TEST_F(SimulateBinaryTest, ThreadsModeGivesTheProcessModesRecords) {
  const std::string data = "[data]\npath = \"" + (*dir_ / "slice.npz") +
                           "\"\npartition = \"iid\"\nseed = 0\n";
  const std::string threads =
      Simulate("threads", "[simulation]\nname = \"t\"\nsites = 3\nmode = \"threads\"\n"
                          "compute_threads = 2\nplots = false\n" + data);
  const std::string process =
      Simulate("process", "[simulation]\nname = \"p\"\nsites = 3\nplots = false\n" + data);
  // The histogram of every site, computed with the sites' partition code, before anything runs.
  EXPECT_NE(LineStartingWith(threads, "  site-3 ").find(" 200 train [0:"), std::string::npos)
      << threads;
  EXPECT_NE(threads.find("site threads started in this process"), std::string::npos);
  EXPECT_NE(threads.find("compute slots used at most"), std::string::npos);

  const std::vector<nlohmann::json> t = Metrics(Only("threads"));
  const std::vector<nlohmann::json> p = Metrics(Only("process"));
  ASSERT_EQ(t.size(), 1u);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(Keys(t[0]), Keys(p[0]));
  EXPECT_EQ(Keys(t[0]["global"]), Keys(p[0]["global"]));
  EXPECT_EQ(Keys(t[0]["sites"]), Keys(p[0]["sites"]));
  EXPECT_EQ(t[0]["contributors"].size(), 3u);
  EXPECT_EQ(t[0]["num_samples"], 600);
  EXPECT_EQ(t[0]["federated"]["num_samples"], 200);
  EXPECT_EQ(t[0]["num_samples"], p[0]["num_samples"]);
  // Same seeds, one LibTorch thread per training: the same updates, so the same global model up
  // to the order in which the coordinator summed them.
  for (const char* metric : {"accuracy", "auc"}) {
    EXPECT_NEAR(t[0]["global"][metric].get<double>(), p[0]["global"][metric].get<double>(), 1e-3)
        << metric;
  }
  const nlohmann::json summary =
      nlohmann::json::parse(testing::ReadFile((Only("threads") / "summary.json").string()));
  EXPECT_EQ(summary["mode"], "threads");
  EXPECT_GT(summary["peak_rss_mib"].get<double>(), 0);
}

TEST_F(SimulateBinaryTest, SweepWritesOneRowPerGridPointWithTheBaseline) {
  const std::string out = Simulate(
      "sweep",
      "[simulation]\nname = \"s\"\nsites = 2\nmode = \"threads\"\nbaseline = true\n[data]\n"
      "path = \"" + (*dir_ / "slice.npz") + "\"\npartition = \"dirichlet\"\nseed = 0\n"
      "[sweep]\nalpha = [1.0, 100.0]\n");
  const fs::path sweep = Only("sweep");
  std::ifstream csv(sweep / "sweep.csv");
  std::vector<std::string> lines;
  for (std::string line; std::getline(csv, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u) << out;
  EXPECT_EQ(lines[0].rfind("run,alpha,exit_status,rounds_completed,global_acc,global_auc,", 0), 0u)
      << lines[0];
  EXPECT_NE(lines[0].find(",baseline_acc,baseline_auc,"), std::string::npos);
  EXPECT_EQ(lines[1].rfind("01-alpha1,1,0,1,0.", 0), 0u) << lines[1];
  EXPECT_EQ(lines[2].rfind("02-alpha100,100,0,1,0.", 0), 0u) << lines[2];
  EXPECT_TRUE(fs::exists(sweep / "sweep.md"));
  // The pooled baseline: trained once (it does not depend on alpha), written beside each run.
  for (const char* run : {"01-alpha1", "02-alpha100"}) {
    const nlohmann::json b =
        nlohmann::json::parse(testing::ReadFile((sweep / run / "baseline.json").string()));
    EXPECT_EQ(b["train_samples"], 600) << run;
    EXPECT_EQ(b["epochs"], 1);
    EXPECT_EQ(b["global"]["num_samples"], 200);
    EXPECT_GT(b["global"]["auc"].get<double>(), 0.5);
  }
  size_t trainings = 0;
  for (size_t at = 0; (at = out.find("pooled baseline: training", at)) != std::string::npos; ++at) {
    ++trainings;
  }
  EXPECT_EQ(trainings, 1u) << out;
  EXPECT_NE(out.find("AUC federated - pooled"), std::string::npos);
  // Plots, when this machine has matplotlib (fedmed-simulate says so otherwise).
  if (out.find("plots skipped") == std::string::npos) {
    EXPECT_TRUE(fs::exists(sweep / "global_metrics.png")) << out;
    EXPECT_TRUE(fs::exists(sweep / "sweep_metrics.png")) << out;  // per strategy, over seeds
    EXPECT_TRUE(fs::exists(sweep / "01-alpha1" / "site_metrics.png")) << out;
  }
}

TEST_F(SimulateBinaryTest, OneFilePerSiteWithThePooledBaseline) {
  const std::string out = Simulate(
      "files",
      "[simulation]\nname = \"f\"\nmode = \"threads\"\nplots = false\n[data]\npath = \"" +
          (*dir_ / "slice.npz") + "\"\nsite_paths = [\"" + (*dir_ / "hospital-a.npz") + "\", \"" +
          (*dir_ / "hospital-b.npz") + "\"]\n",
      {"--baseline"});
  EXPECT_NE(LineStartingWith(out, "  site-1 ").find(" 240 train [0:"), std::string::npos) << out;
  EXPECT_NE(LineStartingWith(out, "  site-2 ").find(" 160 train [0:"), std::string::npos) << out;
  const fs::path run = Only("files");
  const std::vector<nlohmann::json> rows = Metrics(run);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["num_samples"], 400);                 // each site all of its own file
  EXPECT_EQ(rows[0]["federated"]["num_samples"], 100);    // each site's own test split
  EXPECT_EQ(rows[0]["global"]["num_samples"], 200);       // the coordinator's: [data] path's
  const nlohmann::json b =
      nlohmann::json::parse(testing::ReadFile((run / "baseline.json").string()));
  EXPECT_EQ(b["train_samples"], 400);  // the two files pooled
}

TEST_F(SimulateBinaryTest, TheRoundWithTheBestValidationAucIsReportedOnTest) {
  const std::string body =
      "[simulation]\nname = \"v\"\nsites = 2\nmode = \"threads\"\nplots = false\n"
      "baseline = true\n[data]\npath = \"" + (*dir_ / "slice.npz") +
      "\"\npartition = \"iid\"\nseed = 0\n";
  const std::string out = Simulate("select", body, {"--select-split", "val"}, /*rounds=*/3);
  const fs::path run = Only("select");
  const nlohmann::json sel =
      nlohmann::json::parse(testing::ReadFile((run / "selection.json").string()));
  EXPECT_EQ(sel["unit"], "round");
  EXPECT_EQ(sel["selection_split"], "val");
  EXPECT_EQ(sel["report_split"], "test");
  ASSERT_EQ(sel["candidates"].size(), 3u) << sel.dump(2);
  // The chosen round has the highest validation AUC (the earliest of equals) ...
  int best = 0;
  double best_auc = -1;
  for (const nlohmann::json& c : sel["candidates"]) {
    if (c["selection_auc"].get<double>() > best_auc) {
      best_auc = c["selection_auc"].get<double>();
      best = c["index"].get<int>();
    }
  }
  EXPECT_EQ(sel["chosen"], best);
  EXPECT_EQ(sel["selection"]["num_samples"], 20);  // the slice's validation images
  EXPECT_EQ(sel["report"]["num_samples"], 200);
  // ... and each candidate's test score is what the coordinator measured on that round's global
  // model: the checkpoint is that model.
  const std::vector<nlohmann::json> rows = Metrics(run);
  ASSERT_EQ(rows.size(), 3u);
  for (const nlohmann::json& c : sel["candidates"]) {
    const nlohmann::json& global = rows.at(c["index"].get<size_t>() - 1)["global"];
    EXPECT_NEAR(c["report_auc"].get<double>(), global["auc"].get<double>(), 1e-9) << c;
    EXPECT_EQ(c["report_accuracy"], global["accuracy"]) << c;
  }
  EXPECT_NE(out.find("federation, model selection: round " + std::to_string(best) + " of 3"),
            std::string::npos) << out;

  // The pooled baseline chooses among its 3 epochs the same way; its last epoch is the model it
  // reports as final.
  const nlohmann::json b =
      nlohmann::json::parse(testing::ReadFile((run / "baseline.json").string()));
  ASSERT_EQ(b["selection"]["candidates"].size(), 3u) << b.dump(2);
  EXPECT_EQ(b["selection"]["unit"], "epoch");
  EXPECT_NEAR(b["selection"]["candidates"][2]["report_auc"].get<double>(),
              b["global"]["auc"].get<double>(), 1e-9);

  // After the fact, on the finished run: the same choice; without a selection split, refused.
  fs::remove(run / "selection.json");
  Simulate("select", body, {"--select-split", "val", "--select-only", run.string()}, 3);
  const nlohmann::json again =
      nlohmann::json::parse(testing::ReadFile((run / "selection.json").string()));
  EXPECT_EQ(again["chosen"], sel["chosen"]);
  ASSERT_EQ(again["candidates"].size(), 3u);
  for (size_t i = 0; i < 3; ++i) {  // another process, perhaps another LibTorch thread count
    EXPECT_NEAR(again["candidates"][i]["selection_auc"].get<double>(),
                sel["candidates"][i]["selection_auc"].get<double>(), 1e-9);
  }
  const std::string config = *dir_ / "select.toml";
  const std::string refused = *dir_ / "refused.out";
  ChildProcess no_split({testing::BinDir() + "/fedmed-simulate", "--config", config,
                         "--select-only", run.string()},
                        refused);
  EXPECT_EQ(no_split.Wait(60).value_or(-1), 2);
  EXPECT_NE(testing::ReadFile(refused).find("select_split is not set"), std::string::npos)
      << testing::ReadFile(refused);
}

}  // namespace
}  // namespace fedmed
