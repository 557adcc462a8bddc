#include "simulator/process_mode.h"

#include <chrono>
#include <csignal>
#include <fstream>
#include <iomanip>
#include <iterator>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "common/util/error.h"
#include "common/util/process.h"
#include "simulator/event_waiter.h"
#include "simulator/run_output.h"

namespace fedmed {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

ModeOutcome RunProcesses(const SimulationConfig& config, const PreparedRun& p,
                         const std::string& data_root, const std::string& bin_dir,
                         std::ostream& progress) {
  ModeOutcome outcome;
  const fs::path coord_dir = p.run_dir / "coordinator";
  const fs::path coord_log = p.run_dir / "logs" / "coordinator.out";
  std::vector<std::string> coord_argv = {bin_dir + "/fedmed-coordinator", "--config",
                                         p.provisioned.coordinator_config};
  if (!data_root.empty()) coord_argv.insert(coord_argv.end(), {"--data", data_root});
  // Woken when a file of the coordinator's folder is written and when the coordinator ends.
  EventWaiter wake;
  fs::create_directories(coord_dir);
  wake.WatchDirectory(coord_dir);
  auto coordinator = std::make_unique<ChildProcess>(coord_argv, coord_log.string());
  wake.WatchDescriptor(coordinator->exit_fd());
  progress << "coordinator started (pid " << coordinator->pid() << "), waiting for it to listen"
           << std::endl;

  // The coordinator binds port 0; status.json tells which port it got.
  int port = 0;
  const auto listen_deadline = Clock::now() + std::chrono::seconds(60);
  while (port == 0) {
    if (const auto status = ReadJsonFile(coord_dir / "status.json")) port = status->value("port", 0);
    if (port != 0) break;
    if (coordinator->Poll().has_value() || Clock::now() > listen_deadline ||
        SimulationInterrupted()) {
      throw Error("the coordinator did not start; the end of its log " + coord_log.string() +
                  ":\n" + LogTail(coord_log, 15));
    }
    wake.Wait(std::chrono::milliseconds(250));
  }

  if (config.status) {
    const std::string url = StatusPageUrl(p);
    progress << (url.empty() ? "status page: the coordinator wrote no status_url.txt (see its log)"
                             : "status page: " + url)
             << std::endl;
  }

  std::vector<std::unique_ptr<ChildProcess>> sites;
  for (int k = 1; k <= config.sites; ++k) {
    const std::string name = "site-" + std::to_string(k);
    SiteConfigFor(config, p, k, port);
    sites.push_back(std::make_unique<ChildProcess>(
        std::vector<std::string>{bin_dir + "/fedmed-site", "--config",
                                 p.provisioned.site_configs.at(name)},
        (p.run_dir / "logs" / (name + ".out")).string()));
  }
  progress << config.sites << " site processes started; federation '" << config.name
           << "' on 127.0.0.1:" << port << " over mutual TLS, " << config.coordinator.rounds
           << " rounds" << std::endl;

  RunningFederation federation;
  federation.wake = &wake;
  federation.poll_coordinator = [&] { return coordinator->Poll(); };
  federation.stop = [&] {
    coordinator->Signal(SIGTERM);
    for (auto& s : sites) s->Signal(SIGTERM);
  };
  // --kill-site K@R: watch site K's log for the line that says it is in round R past the point
  // of no return (keys shared under secure aggregation, else training started), then SIGKILL it.
  // (site.log is appended to, never closed between lines: no watch of ours sees it, so the
  // marker is found at the progress loop's next wake, within 250 ms.)
  std::vector<std::pair<int, int>> pending_kills = config.kill_sites;
  std::set<int> killed;
  federation.tick = [&] {
    for (auto it = pending_kills.begin(); it != pending_kills.end();) {
      const auto [k, round] = *it;
      const std::string marker =
          config.coordinator.secure_aggregation.enabled
              ? "round " + std::to_string(round) + ": secure aggregation: keys shared"
              : "round " + std::to_string(round) + ": training";
      std::ifstream in(p.run_dir / ("site-" + std::to_string(k)) / "site.log");
      const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (log.find(marker) == std::string::npos) {
        ++it;
        continue;
      }
      sites[static_cast<size_t>(k - 1)]->Signal(SIGKILL);
      killed.insert(k);
      progress << "killed site-" << k << " (pid " << sites[static_cast<size_t>(k - 1)]->pid()
               << ") in round " << round << ", after \"" << marker << "\" (--kill-site)"
               << std::endl;
      it = pending_kills.erase(it);
    }
  };
  const int coord_status = FollowProgress(config, coord_dir, federation, progress, &outcome.stopped);

  outcome.exit_status = coord_status;
  for (std::size_t k = 0; k < sites.size(); ++k) {
    std::optional<int> s = sites[k]->Wait(20.0);
    if (!s.has_value()) s = sites[k]->Stop();
    if (killed.count(static_cast<int>(k) + 1)) continue;  // --kill-site: expected
    if (*s != 0) {
      progress << "site-" << (k + 1) << " exited with status " << *s << "; see "
               << (p.run_dir / "logs" / ("site-" + std::to_string(k + 1) + ".out")).string()
               << std::endl;
      if (outcome.exit_status == 0) outcome.exit_status = *s;
    }
  }
  if (coord_status != 0 && !outcome.stopped) {
    progress << "the coordinator exited with status " << coord_status << "; the end of its log:\n"
             << LogTail(coord_log, 15);
  }
  std::ostringstream rss;
  double total_kib = static_cast<double>(coordinator->max_rss_kib());
  rss << "peak RSS (MiB): coordinator " << coordinator->max_rss_kib() / 1024;
  for (std::size_t k = 0; k < sites.size(); ++k) {
    rss << ", site-" << (k + 1) << " " << sites[k]->max_rss_kib() / 1024;
    total_kib += static_cast<double>(sites[k]->max_rss_kib());
  }
  outcome.peak_rss_mib = total_kib / 1024.0;
  rss << " (sum " << std::fixed << std::setprecision(0) << outcome.peak_rss_mib << ")";
  outcome.rss_detail = rss.str();
  return outcome;
}

}  // namespace fedmed
