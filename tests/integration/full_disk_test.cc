// A full disk under a running coordinator (real binaries, mutual TLS, three sites on
// PneumoniaMNIST): its output_dir is a small tmpfs that fills up during round 2's checkpoint. The
// coordinator stops with exit status 2 and an error naming the file it could not write, leaving
// resume.json at round 1 with the files it names intact; once space is back (the tmpfs made
// larger) a restarted coordinator resumes after round 1 and the federation ends with every round
// exactly once in metrics.csv and metrics.jsonl. The sites wait for it meanwhile, and are back
// within 2 s of it listening again.
//
// Needs to mount a tmpfs (root, as CI runs); skipped, saying why, where mounting is not allowed.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/crypto/sha256.h"
#include "common/model/checkpoint.h"
#include "common/util/process.h"
#include "tests/integration/federation_util.h"
#include "tests/integration/restart_util.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;
using ::fedmed::testing::ReadFile;

constexpr int kRounds = 3;

// A tmpfs mounted on `dir` for the lifetime of this object.
class Tmpfs {
 public:
  Tmpfs(fs::path dir, const std::string& size) : dir_(std::move(dir)) {
    fs::create_directories(dir_);
    mounted_ = Run("mount -t tmpfs -o size=" + size + " fedmed-full-disk '" + dir_.string() + "'");
  }
  ~Tmpfs() {
    if (mounted_) Run("umount '" + dir_.string() + "'");
  }
  bool mounted() const { return mounted_; }
  bool Resize(const std::string& size) {
    return Run("mount -o remount,size=" + size + " '" + dir_.string() + "'");
  }

 private:
  static bool Run(const std::string& command) {
    return std::system((command + " 2>/dev/null").c_str()) == 0;
  }
  fs::path dir_;
  bool mounted_ = false;
};

TEST(FullDiskTest, TheCoordinatorStopsNamingTheFileAndResumesOnceSpaceIsBack) {
  ::fedmed::testing::TempDir dir("fedmed-full-disk");
  const fs::path out = dir.path() / "coordinator";
  // Round 1 needs about 10 MB (two copies of the 4.8 MB model); round 2's checkpoint does not
  // fit in 16 MB.
  Tmpfs disk(out, "16m");
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (not root?)";

  const ProvisionResult pki =
      testing::ProvisionLoopbackFederation(dir.path() / "pki", {"site-1", "site-2", "site-3"});
  CoordinatorConfig coordinator = testing::LoopbackCoordinatorConfig(pki, out);
  const int port = testing::FreeLoopbackPort();
  coordinator.listen_address = "127.0.0.1:" + std::to_string(port);
  coordinator.rounds = kRounds;
  coordinator.min_sites = 3;
  const std::string coordinator_toml = (dir.path() / "coordinator.toml").string();
  std::ofstream(coordinator_toml) << RenderCoordinatorConfig(coordinator);

  std::vector<std::unique_ptr<ChildProcess>> sites;
  for (const std::string name : {"site-1", "site-2", "site-3"}) {
    SiteConfig site = testing::LoopbackSiteConfig(pki, name, port, dir.path() / name);
    site.give_up_after_seconds = 0;  // wait while the coordinator is down
    site.threads = 1;
    sites.push_back(testing::StartSiteProcess(site, dir.path(), name));
  }

  {
    const std::unique_ptr<ChildProcess> full = testing::StartCoordinatorProcess(
        coordinator_toml, (dir.path() / "coordinator-full.out").string());
    ASSERT_EQ(full->Wait(600), std::optional<int>(2)) << ReadFile(out / "coordinator.log");
  }
  const std::string log = ReadFile(dir.path() / "coordinator-full.out");
  // The error names the file that could not be written, under output_dir.
  EXPECT_NE(log.find("cannot record the round"), std::string::npos) << log;
  EXPECT_NE(log.find(out.string()), std::string::npos) << log;
  // resume.json still names round 1, and the checkpoint it names matches its digest.
  const nlohmann::json resume = nlohmann::json::parse(ReadFile(out / "resume.json"));
  EXPECT_EQ(resume.at("completed_round"), 1);
  const ModelState round_1 = LoadCheckpoint((out / resume.at("checkpoint").get<std::string>()).string());
  EXPECT_EQ(Sha256Hex(EncodeModelState(round_1)), resume.at("model_sha256").get<std::string>());
  EXPECT_EQ(testing::MetricsRounds(out / "metrics.jsonl", false), std::vector<int>({1}));

  ASSERT_TRUE(disk.Resize("200m"));
  // The sites were waiting for their next task when the coordinator stopped: every one is back
  // within 2 s of the restarted coordinator listening (status.json's "registered").
  const fs::path status_file = out / "status.json";
  fs::remove(status_file);
  const std::unique_ptr<ChildProcess> resumed = testing::StartCoordinatorProcess(
      coordinator_toml, (dir.path() / "coordinator-resumed.out").string());
  const double back = testing::SecondsUntilRegistered(port, status_file, 3, *resumed);
  std::cout << "every site registered again " << back << " s after the coordinator listened\n";
  ::testing::Test::RecordProperty("site_return_seconds", std::to_string(back));
  EXPECT_LE(back, 2.0);
  ASSERT_EQ(resumed->Wait(600), std::optional<int>(0)) << ReadFile(out / "coordinator.log");
  for (auto& site : sites) {
    EXPECT_EQ(site->Wait(120), std::optional<int>(0))
        << site->name() << ": " << ReadFile(dir.path() / (site->name() + ".out"))
        << ReadFile(dir.path() / site->name() / "site.log");
  }
  const std::vector<int> every_round = {1, 2, 3};
  EXPECT_EQ(testing::MetricsRounds(out / "metrics.csv", true), every_round);
  EXPECT_EQ(testing::MetricsRounds(out / "metrics.jsonl", false), every_round);
}

}  // namespace
}  // namespace fedmed
