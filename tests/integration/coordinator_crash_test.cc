// A coordinator killed with SIGKILL at random moments of a federation and restarted each time on
// the same output_dir (real binaries, mutual TLS, three sites on PneumoniaMNIST with site-level
// DP): the federation ends with every round exactly once in metrics.csv and metrics.jsonl, the
// coordinator's last run and every site exit 0, each site trained (and spent) once per round,
// and fedmed-audit verify passes on the coordinator's audit log and every site's privacy log.
// The kill moments are drawn from a fixed seed. After every restart, the time from the coordinator
// listening again to every site registered again is measured (status.json "registered").
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/util/process.h"
#include "tests/integration/federation_util.h"
#include "tests/integration/restart_util.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;
using ::fedmed::testing::BinDir;
using ::fedmed::testing::ReadFile;

constexpr int kRounds = 5;
constexpr int kKills = 10;

// The "round" of status.json (0 when it cannot be read yet).
int CurrentRound(const std::string& status_file) {
  return std::max(0, testing::StatusField(status_file, "round"));
}


TEST(CoordinatorCrashTest, KilledAtRandomMomentsTheFederationEndsWithEveryRoundOnce) {
  ::fedmed::testing::TempDir dir("fedmed-coordinator-crash");
  const ProvisionResult pki =
      testing::ProvisionLoopbackFederation(dir.path() / "pki", {"site-1", "site-2", "site-3"});

  CoordinatorConfig coordinator =
      testing::LoopbackCoordinatorConfig(pki, dir.path() / "coordinator");
  coordinator.rounds = kRounds;
  coordinator.min_sites = 3;
  const std::string coordinator_toml = (dir.path() / "coordinator.toml").string();
  std::ofstream(coordinator_toml) << RenderCoordinatorConfig(coordinator);
  const std::string status_file = (dir.path() / "coordinator" / "status.json").string();

  // Each run of the coordinator listens on a new port; the sites find it through a fixed one.
  // So pick one free port now and keep it for every run.
  int port = 0;
  {
    const std::unique_ptr<ChildProcess> probe =
        testing::StartCoordinatorProcess(coordinator_toml, (dir.path() / "probe.out").string());
    port = testing::WaitForCoordinatorPort(status_file);
    ASSERT_GT(port, 0) << "the coordinator did not publish its port";
    probe->Signal(SIGKILL);
    probe->Wait(10);
  }
  coordinator.listen_address = "127.0.0.1:" + std::to_string(port);
  std::ofstream(coordinator_toml) << RenderCoordinatorConfig(coordinator);

  std::vector<std::unique_ptr<ChildProcess>> sites;
  for (const std::string name : {"site-1", "site-2", "site-3"}) {
    SiteConfig site = testing::LoopbackSiteConfig(pki, name, port, dir.path() / name);
    site.give_up_after_seconds = 0;  // retry while the coordinator is down
    // Site-level DP: every round's training is a "trained" entry of the site's privacy log.
    site.privacy.mode = "update";
    site.privacy.clipping_norm = 10.0;
    site.privacy.noise_multiplier = 0.01;
    site.privacy.delta = 1e-5;
    site.privacy.budget_epsilon = 1e6;
    site.backoff_max_seconds = 2;
    sites.push_back(testing::StartSiteProcess(site, dir.path(), name));
  }

  // Run k is killed at a random moment of round k / 2 + 1 (0 to 2 s after status.json shows it
  // and the sites are back; in the last round at the latest when its evaluation starts), so that
  // the restarts resume after round 0, 1, ... and land in training, aggregation, evaluation or
  // the checkpoint, as the draw falls.
  std::mt19937 rng(20261206);
  std::uniform_real_distribution<double> moment(0.0, 2.0);
  std::optional<int> last_status;
  int kills = 0;
  int resumed_kills = 0;
  // Per restart: seconds from listening to every site registered (when the sites were not busy
  // training, which they finish before they notice the coordinator went away).
  std::vector<double> returns;
  for (int run = 0; run <= kKills; ++run) {
    fs::remove(status_file);  // so that what is read below is this run's
    const std::unique_ptr<ChildProcess> process = testing::StartCoordinatorProcess(
        coordinator_toml, (dir.path() / ("coordinator-" + std::to_string(run) + ".out")).string());
    if (run > 0) returns.push_back(testing::SecondsUntilRegistered(port, status_file, 3, *process));
    if (run < kKills) {
      // Two kills per round: runs 0 and 1 in round 1, 2 and 3 in round 2, ...
      const int round = run / 2 + 1;
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(5);
      while (CurrentRound(status_file) < round && !process->Poll() &&
             std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      // The drawn moment, or earlier once the last round is being evaluated (a resumed last
      // round whose sites resend their kept updates can end within the draw: every kill must
      // happen before the federation ends).
      const auto kill_at = std::chrono::steady_clock::now() +
                           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                               std::chrono::duration<double>(moment(rng)));
      while (std::chrono::steady_clock::now() < kill_at && !(last_status = process->Poll())) {
        if (CurrentRound(status_file) == kRounds &&
            ReadFile(status_file).find("\"phase\":\"evaluating\"") != std::string::npos) {
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (last_status) break;  // it finished before its kill
      process->Signal(SIGKILL);
      process->Wait(10);
      ++kills;
      if (CurrentRound(status_file) > 1) ++resumed_kills;
      continue;
    }
    last_status = process->Wait(600);
  }
  EXPECT_EQ(kills, kKills) << "the federation finished before every kill";
  EXPECT_GE(resumed_kills, 1) << "no kill fell after a checkpoint: the draw tests nothing";
  std::ostringstream seconds;
  for (double r : returns) seconds << ' ' << r;
  std::cout << "seconds from a restarted coordinator listening to every site registered:"
            << seconds.str() << "\n";
  ::testing::Test::RecordProperty("site_return_seconds", seconds.str());
  ASSERT_EQ(last_status, std::optional<int>(0))
      << ReadFile(dir.path() / "coordinator" / "coordinator.log");
  for (auto& site : sites) {
    EXPECT_EQ(site->Wait(120), std::optional<int>(0))
        << site->name() << ": " << ReadFile(dir.path() / (site->name() + ".out"))
        << ReadFile(dir.path() / site->name() / "site.log");
  }

  std::vector<int> expected;
  for (int r = 1; r <= kRounds; ++r) expected.push_back(r);
  EXPECT_EQ(testing::MetricsRounds(dir.path() / "coordinator" / "metrics.csv", true), expected);
  EXPECT_EQ(testing::MetricsRounds(dir.path() / "coordinator" / "metrics.jsonl", false), expected);

  // A round a site trained before a kill and is asked for again is resent, not retrained: each
  // site's privacy log records exactly one training (and one spend) per round.
  for (const std::string site : {"site-1", "site-2", "site-3"}) {
    std::ifstream log(dir.path() / site / "privacy_log.jsonl");
    int trained = 0;
    for (std::string line; std::getline(log, line);) {
      if (line.find("\"event\":\"trained\"") != std::string::npos) ++trained;
    }
    EXPECT_EQ(trained, kRounds) << site;
  }

  const std::string ca = (dir.path() / "pki" / "ca" / "ca.pem").string();
  const auto verify = [&](const fs::path& log, const fs::path& cert, const std::string& name) {
    ChildProcess audit({BinDir() + "/fedmed-audit", "verify", log.string(), "--cert",
                        cert.string(), "--ca", ca},
                       (dir.path() / name).string());
    EXPECT_EQ(audit.Wait(120), std::optional<int>(0)) << name << ": " << ReadFile(dir.path() / name);
  };
  verify(dir.path() / "coordinator" / "audit_log.jsonl",
         dir.path() / "pki" / "coordinator" / "audit.pem", "verify-coordinator.out");
  for (const std::string site : {"site-1", "site-2", "site-3"}) {
    verify(dir.path() / site / "privacy_log.jsonl",
           dir.path() / "pki" / "sites" / site / "audit.pem", "verify-" + site + ".out");
  }
}

}  // namespace
}  // namespace fedmed
