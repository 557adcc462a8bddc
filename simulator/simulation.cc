#include "simulator/simulation.h"

#include <chrono>
#include <iomanip>
#include <vector>

#include "common/util/file_io.h"
#include "simulator/process_mode.h"
#include "simulator/run_directory.h"
#include "simulator/threads_mode.h"

namespace fedmed {

using Clock = std::chrono::steady_clock;

SimulationResult RunSimulation(const SimulationConfig& config, const std::string& data_root,
                               const std::string& bin_dir, std::ostream& progress) {
  const auto started = Clock::now();
  SimulationResult result;
  InstallInterruptHandlers();

  LoadedFiles files;
  PrintSiteShards(DescribeSiteShards(config, data_root, &files), progress);
  const PreparedRun prepared = PrepareRun(config, data_root);
  result.run_dir = prepared.run_dir.string();

  ModeOutcome outcome;
  if (config.mode == "threads") {
    outcome = RunThreads(config, prepared, data_root, &files, progress);
  } else {
    files.clear();
    outcome = RunProcesses(config, prepared, data_root, bin_dir, progress);
  }
  result.exit_status = outcome.exit_status;
  result.peak_rss_mib = outcome.peak_rss_mib;

  const std::vector<nlohmann::json> rows =
      ReadJsonLines((prepared.run_dir / "coordinator" / "metrics.jsonl").string());
  PrintRoundTable(rows, progress);
  PrintPrivacySpent(rows, progress);
  result.rounds_completed = static_cast<int>(rows.size());
  if (!rows.empty()) {
    result.final_global = rows.back().value("global", nlohmann::json());
    result.final_federated = rows.back().value("federated", nlohmann::json());
  }
  result.wall_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  const nlohmann::json critical_paths = SumCriticalPaths(rows);
  PrintTimeBreakdown(critical_paths, result.wall_seconds, progress);
  progress << "\n" << outcome.rss_detail << std::endl;

  nlohmann::json summary;
  summary["name"] = config.name;
  summary["mode"] = config.mode;
  summary["sites"] = config.sites;
  summary["rounds"] = config.coordinator.rounds;
  summary["rounds_completed"] = result.rounds_completed;
  summary["exit_status"] = result.exit_status;
  summary["wall_seconds"] = result.wall_seconds;
  summary["peak_rss_mib"] = result.peak_rss_mib;
  summary["critical_paths"] = critical_paths;  // summed over the rounds (run_output.h)
  summary["compute_threads"] = config.mode == "threads" ? ComputeThreads(config) : 0;
  summary["global"] = result.final_global;
  summary["federated"] = result.final_federated;
  WriteFileAtomically((prepared.run_dir / "summary.json").string(), summary.dump(2) + "\n",
                      "run summary");

  progress << "wall-clock " << std::fixed << std::setprecision(1) << result.wall_seconds
           << " s; everything (configs, certificates, logs, metrics.csv/jsonl, checkpoints) is in\n  "
           << result.run_dir << std::endl;
  return result;
}

}  // namespace fedmed
