#include "simulator/progress.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <sstream>
#include <vector>

#include "simulator/run_output.h"

namespace fedmed {

namespace fs = std::filesystem;

namespace {

// The last signal received (0 = none).
std::atomic<int> g_signal{0};

void OnSignal(int signal) { g_signal = signal; }

}  // namespace

int FollowProgress(const SimulationConfig& config, const fs::path& coord_dir,
                   const RunningFederation& federation, std::ostream& progress, bool* stopped) {
  std::string last_line;
  std::size_t rounds_shown = 0;
  std::optional<int> coord_status;
  while (!(coord_status = federation.poll_coordinator()).has_value()) {
    if (g_signal != 0 && !*stopped) {
      progress << "interrupted: stopping the federation" << std::endl;
      federation.stop();
      *stopped = true;
    }
    if (const auto status = ReadJsonFile(coord_dir / "status.json")) {
      std::ostringstream line;
      line << "  round " << status->value("round", 0) << "/" << config.coordinator.rounds << " "
           << status->value("phase", std::string()) << ": " << status->value("updates", 0) << "/"
           << status->value("selected", 0) << " sites done";
      if (line.str() != last_line && status->value("round", 0) > 0) {
        progress << line.str() << std::endl;
        last_line = line.str();
      }
    }
    const std::vector<nlohmann::json> rows = ReadJsonLines((coord_dir / "metrics.jsonl").string());
    for (; rounds_shown < rows.size(); ++rounds_shown) {
      const nlohmann::json& r = rows[rounds_shown];
      const nlohmann::json g = r.value("global", nlohmann::json());
      progress << "round " << r["round"].get<int>() << "/" << config.coordinator.rounds
               << " done in " << FormatNumber(r["seconds"]["round"], 2) << " s: global ACC "
               << (g.is_object() ? FormatNumber(g.value("accuracy", nlohmann::json())) : "-")
               << ", AUC " << (g.is_object() ? FormatNumber(g.value("auc", nlohmann::json())) : "-")
               << std::endl;
    }
    if (federation.tick) federation.tick();
    federation.wake->Wait(std::chrono::milliseconds(250));
  }
  return *coord_status;
}

void InstallInterruptHandlers() {
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
}

bool SimulationInterrupted() { return g_signal != 0; }

}  // namespace fedmed
