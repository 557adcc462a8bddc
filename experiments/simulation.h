// fedmed-simulate: a whole federation on one machine, over the real transport.
//
// Process mode (this file): provisions throw-away certificates (the same code as fedmed-pki),
// writes a coordinator config and one site config per simulated hospital, starts
// fedmed-coordinator and N fedmed-site processes that talk gRPC over mutual TLS on 127.0.0.1,
// gives each site "shard k of N" of the data file with the configured partition (the same code a
// real site uses), follows the coordinator's status.json and metrics.jsonl to show progress, and
// prints a table of the global metrics per round. Everything (configs, certificates, logs,
// metrics, checkpoints) stays in the run directory, whose path is printed at the end.
#ifndef FEDMED_EXPERIMENTS_SIMULATION_H_
#define FEDMED_EXPERIMENTS_SIMULATION_H_

#include <ostream>
#include <string>
#include <vector>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"

namespace fedmed {

struct SimulationConfig {
  std::string config_path;
  std::string name = "simulation";   // run directory name prefix
  int sites = 3;
  std::string output_root = "results";  // the run directory is <output_root>/<name>-<timestamp>
  int site_threads = 1;                 // LibTorch threads per site process
  // How the data file is split across the sites ([data] section).
  std::string data_path;                // relative paths are resolved against the data root
  std::string partition = "iid";        // iid | dirichlet | quantity
  double alpha = 0.5;                   // Dirichlet concentration (dirichlet, quantity)
  uint64_t data_seed = 0;
  // [federation], [model], [training] and [evaluation] exactly as in coordinator.toml.
  CoordinatorConfig coordinator;
  // [privacy] exactly as in a site's site.toml, applied to every site; plus
  // budget_epsilon_per_site: one budget per site (site-1 first) replacing budget_epsilon, to
  // simulate hospitals with different budgets.
  SitePrivacyConfig privacy;
  std::vector<double> budget_epsilon_per_site;
};

// Reads a simulation config: [simulation] name, sites, output_dir, site_threads; [data] path,
// partition, alpha, seed; plus the coordinator's [federation], [model], [training], [evaluation]
// and the sites' [privacy].
// Throws ConfigError naming the file, section and key.
SimulationConfig LoadSimulationConfig(const std::string& path);

struct SimulationResult {
  int exit_status = 0;       // 0 when the coordinator and every site finished cleanly
  std::string run_dir;
  double wall_seconds = 0;
};

// Runs the federation to the end, writing progress lines to `progress`. `bin_dir` holds
// fedmed-coordinator and fedmed-site. Throws Error if the federation cannot be set up.
SimulationResult RunSimulation(const SimulationConfig& config, const std::string& data_root,
                               const std::string& bin_dir, std::ostream& progress);

}  // namespace fedmed

#endif  // FEDMED_EXPERIMENTS_SIMULATION_H_
