// SIGTERM to a DP-SGD site in the middle of its local training (real binaries, mutual TLS,
// PneumoniaMNIST): the site stops within 2 s with exit status 1, its privacy log records no
// training and no spend for the round it was stopped in (the spend is committed only before an
// upload), and the log still verifies. Three sites are stopped at three moments drawn from a
// fixed seed. scripts/sanitize.sh also runs this test with AddressSanitizer binaries: the heap
// corruption once seen after SIGTERM to a DP site ("corrupted size vs. prev_size") would show
// there as an ASan report and a non-zero exit.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/util/process.h"
#include "tests/integration/federation_util.h"
#include "tests/integration/refusal_util.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;
using ::fedmed::testing::BinDir;
using ::fedmed::testing::ReadFile;

// The events of a privacy log, in order.
std::vector<std::string> Events(const fs::path& log) {
  std::vector<std::string> events;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) events.push_back(nlohmann::json::parse(line).at("event").get<std::string>());
  }
  return events;
}

TEST(SiteSigtermTest, ADpSiteStoppedWhileTrainingStopsAtOnceAndSpendsNothing) {
  ::fedmed::testing::TempDir dir("fedmed-site-sigterm");
  const ProvisionResult pki =
      testing::ProvisionLoopbackFederation(dir.path() / "pki", {"site-1", "site-2", "site-3"});
  CoordinatorConfig coordinator =
      testing::LoopbackCoordinatorConfig(pki, dir.path() / "coordinator");
  coordinator.rounds = 1;
  coordinator.min_sites = 1;  // each site is its own "round"; the coordinator outlives them
  coordinator.max_attempts = 100;
  const std::string coordinator_toml = (dir.path() / "coordinator.toml").string();
  std::ofstream(coordinator_toml) << RenderCoordinatorConfig(coordinator);
  ::fedmed::testing::CoordinatorProcess process(coordinator_toml, dir.path());
  const int port = process.WaitForPort();
  ASSERT_GT(port, 0);

  std::mt19937 rng(20261206);
  std::uniform_real_distribution<double> moment(0.5, 3.0);
  for (const std::string name : {"site-1", "site-2", "site-3"}) {
    SiteConfig site = testing::LoopbackSiteConfig(pki, name, port, dir.path() / name);
    site.threads = 1;
    site.privacy.mode = "dp-sgd";
    site.privacy.clipping_norm = 1.0;
    site.privacy.noise_multiplier = 1.0;
    site.privacy.delta = 1e-5;
    site.privacy.budget_epsilon = 100;
    const fs::path out = dir.path() / (name + ".out");
    const std::unique_ptr<ChildProcess> site_process =
        testing::StartSiteProcess(site, dir.path(), name);
    ChildProcess& child = *site_process;
    // Training has begun once the site says so; then a moment later, SIGTERM.
    ASSERT_TRUE(::fedmed::testing::WaitForFileContaining(out.string(), "round 1: training", 120))
        << ReadFile(out);
    std::this_thread::sleep_for(std::chrono::duration<double>(moment(rng)));
    const auto signalled = std::chrono::steady_clock::now();
    child.Signal(SIGTERM);
    const std::optional<int> status = child.Wait(30);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - signalled).count();
    EXPECT_EQ(status, std::optional<int>(1)) << name << ": " << ReadFile(out);
    EXPECT_LE(seconds, 2.0) << name << " took " << seconds << " s to stop";
    const fs::path log = dir.path() / name / "privacy_log.jsonl";
    for (const std::string& event : Events(log)) {
      EXPECT_NE(event, "trained") << name << ": stopped while training, yet a spend was logged";
    }
    const std::string ca = (dir.path() / "pki" / "ca" / "ca.pem").string();
    ChildProcess verify({BinDir() + "/fedmed-audit", "verify", log.string(), "--cert",
                         (dir.path() / "pki" / "sites" / name / "audit.pem").string(), "--ca", ca},
                        (dir.path() / ("verify-" + name + ".out")).string());
    EXPECT_EQ(verify.Wait(60), std::optional<int>(0)) << ReadFile(dir.path() / ("verify-" + name + ".out"));
  }
}

}  // namespace
}  // namespace fedmed
