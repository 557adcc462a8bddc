// fedmed-simulate: runs a whole federation (or a grid of them) on this machine. See
// simulator/simulation.h and simulator/experiment.h.
#include <CLI/CLI.hpp>

#include <csignal>
#include <iostream>
#include <string>

#include "common/util/allocator.h"
#include "common/util/data_path.h"
#include "common/util/data_root_option.h"
#include "common/util/error.h"
#include "common/util/process.h"
#include "simulator/experiment.h"
#include "simulator/simulation.h"

int main(int argc, char** argv) {
  // A file-size limit (RLIMIT_FSIZE) then fails the write with EFBIG, which WriteFileAtomically
  // reports naming the file, instead of killing the process (common/util/file_io.h).
  std::signal(SIGXFSZ, SIG_IGN);
  fedmed::KeepFreedMemoryForReuse();  // see common/util/allocator.h
  CLI::App app{"fedmed simulator: one coordinator and N sites over mutual-TLS gRPC, as processes "
               "or as threads of this process"};
  std::string config_path;
  std::string data_root;
  std::string output_dir;
  std::string mode;
  int sites = 0;
  bool baseline = false;
  bool no_baseline = false;
  bool no_plots = false;
  bool status = false;
  bool list = false;
  std::string select_only;
  std::string select_split;
  std::vector<std::string> kill_sites;
  app.add_option("--config", config_path, "simulation config, e.g. experiments/demo.toml")
      ->required();
  fedmed::AddDataRootOption(app, &data_root);
  app.add_option("--output", output_dir, "where run directories go (overrides [simulation] output_dir)");
  app.add_option("--mode", mode, "process | threads (overrides [simulation] mode)")
      ->check(CLI::IsMember({"process", "threads"}));
  app.add_option("--sites", sites, "number of sites (overrides [simulation] sites)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--baseline", baseline,
               "also train the pooled (centralised) baseline ([simulation] baseline = true)");
  app.add_flag("--no-baseline", no_baseline, "do not train the pooled baseline ([simulation] "
               "baseline = false)")->excludes("--baseline");
  app.add_flag("--no-plots", no_plots,
               "do not run plot_results.py nor fedmed-report ([simulation] plots = false)");
  app.add_flag("--status", status,
               "serve the coordinator's status page on a free loopback port and print its URL "
               "with the token ([simulation] status = true; docs/OPERATIONS.md)");
  app.add_option("--kill-site", kill_sites,
                 "K@R: kill site K's process during round R, after it has shared its secure "
                 "aggregation keys (process mode; repeatable), to show dropout recovery");
  app.add_flag("--list", list, "check the config, print the runs it describes and exit");
  app.add_option("--select-split", select_split,
                 "choose each run's round (and the baseline's epoch) by its AUC on this split, "
                 "e.g. val ([simulation] select_split)");
  app.add_option("--select-only", select_only,
                 "run nothing new: apply model selection to the finished run or sweep directory "
                 "DIR made from this config (needs a select_split)");
  CLI11_PARSE(app, argc, argv);
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);
  try {
    fedmed::SimulationConfig config = fedmed::LoadSimulationConfig(config_path);
    if (!output_dir.empty()) config.output_root = output_dir;
    if (!mode.empty()) config.mode = mode;
    if (baseline) config.baseline = true;
    if (no_baseline) config.baseline = false;
    if (no_plots) config.plots = false;
    if (status) config.status = true;
    if (sites > 0) config.sites = sites;
    if (!select_split.empty()) config.select_split = select_split;
    for (const std::string& spec : kill_sites) {
      const auto at = spec.find('@');
      try {
        if (at == std::string::npos) throw std::invalid_argument(spec);
        config.kill_sites.emplace_back(std::stoi(spec.substr(0, at)), std::stoi(spec.substr(at + 1)));
      } catch (const std::exception&) {
        std::cerr << "fedmed-simulate: --kill-site " << spec << ": expected K@R, e.g. 2@3\n";
        return 2;
      }
    }
    if (config.sweep.empty()) fedmed::ValidateSimulationConfig(config);  // the overrides too
    if (list) {
      for (const fedmed::SweepPoint& point : fedmed::ExpandSweep(config)) {
        std::cout << (point.label.empty() ? config.name : point.label) << ": " << config.mode
                  << " mode, " << point.config.sites << " sites, "
                  << point.config.coordinator.rounds << " rounds, strategy "
                  << point.config.coordinator.strategy.name << "\n";
      }
      return 0;
    }
    if (!select_only.empty()) {
      return fedmed::SelectFinishedExperiment(config, data_root, select_only, command_line,
                                              std::cout);
    }
    std::cout << fedmed::DescribeDataRoot(data_root) << std::endl;
    return fedmed::RunExperiment(config, data_root, fedmed::ExecutableDir(), command_line,
                                 std::cout);
  } catch (const std::exception& e) {
    std::cerr << "fedmed-simulate: " << e.what() << std::endl;
    return 2;
  }
}
