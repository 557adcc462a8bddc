// What a fedmed-simulate config file says: the [simulation], [data], [sweep] and per-site
// [privacy] settings of the simulator, plus the coordinator's own sections as in coordinator.toml.
// Reading (LoadSimulationConfig), validation (ValidateSimulationConfig) and what each simulated
// site is given (SiteDataFor). Running it is simulation.h's job; sweeps are experiment.h's.
//
// Errors are ConfigErrors worded as in common/config/toml_util.h:
//   <file>: [section] key: expected <what>, got <value>
#ifndef FEDMED_SIMULATOR_SIMULATION_CONFIG_H_
#define FEDMED_SIMULATOR_SIMULATION_CONFIG_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"

namespace fedmed {

// [sweep]: values to run a grid over (the cartesian product of the non-empty lists); each
// overrides one setting of the base config. Empty lists are not swept.
struct SweepConfig {
  std::vector<std::string> strategy;  // [strategy] name (keys that do not apply are dropped)
  std::vector<double> alpha;          // [data] alpha (partition "dirichlet" or "quantity")
  std::vector<int> sites;             // [simulation] sites (not with [data] site_paths)
  std::vector<double> epsilon;        // [privacy] target_epsilon and budget_epsilon
  std::vector<uint64_t> seed;         // [federation] seed and [data] seed

  // True when no list has a value (a single run).
  bool empty() const {
    return strategy.empty() && alpha.empty() && sites.empty() && epsilon.empty() && seed.empty();
  }
};

struct SimulationConfig {
  std::string config_path;
  std::string name = "simulation";   // run directory name prefix
  int sites = 3;
  std::string output_root = "results";  // the run directory is <output_root>/<name>-<timestamp>
  // Where this run writes; "" = <output_root>/<name>-<timestamp> (sweeps set one per grid point).
  std::string run_dir;
  std::string mode = "process";         // "process" | "threads"
  int site_threads = 1;                 // process mode: LibTorch threads per site process
  // Threads mode: local trainings/evaluations at once (one LibTorch thread each); also the
  // LibTorch threads of the pooled baseline. 0 = the number of cores.
  int compute_threads = 0;
  bool baseline = false;                // also train the pooled baseline (experiment.h)
  bool plots = true;                    // run experiments/plot_results.py at the end
  // The coordinator serves its status page (docs/OPERATIONS.md) on a free loopback port; the
  // URL with its token is printed at start. --status.
  bool status = false;
  // Model selection (model_selection.h): "" = none; else the held-out split ("train" | "val",
  // not [evaluation] split) on which each run's round, and the baseline's epoch, with the best
  // AUC is chosen; its metrics on [evaluation] split are reported beside the final round's.
  std::string select_split;
  // How the data is split across the sites ([data] section).
  std::string data_path;                // relative paths are resolved against the data root
  std::string partition = "iid";        // iid | dirichlet | quantity
  double alpha = 0.5;                   // Dirichlet concentration (dirichlet, quantity)
  uint64_t data_seed = 0;
  // One file per site (a real multi-hospital layout): site k trains on all of site_paths[k-1]
  // (partition "none"); sites = site_paths.size(). Empty = split data_path.
  std::vector<std::string> site_paths;
  // With site_paths: the [data] format of each (site-1 first), one of "medmnist" (a .npz file),
  // "image_folder" (a folder root/<class>/<image> with train/ and test/ subfolders), "csv" (a
  // manifest path,label,split of PNG/JPEG files) or "dicom" (a manifest path,label,split of
  // DICOM files, paths relative to the manifest; sop_instance_uid manifests need a dicom_dir and
  // are not supported here). Empty = every site "medmnist". See common/data/site_data_config.h.
  std::vector<std::string> site_formats;
  // [federation], [model], [training], [strategy] and [evaluation] exactly as in
  // coordinator.toml.
  CoordinatorConfig coordinator;
  // [privacy] exactly as in a site's site.toml, applied to every site; plus
  // budget_epsilon_per_site: one budget per site (site-1 first) replacing budget_epsilon, to
  // simulate hospitals with different budgets.
  SitePrivacyConfig privacy;
  std::vector<double> budget_epsilon_per_site;
  SweepConfig sweep;
  // --kill-site K@R (process mode): SIGKILL site K's process during round R once it has shared
  // its secure-aggregation keys (or, without secure aggregation, once it starts training), to
  // show that the round recovers. Pairs (K, R), 1-based.
  std::vector<std::pair<int, int>> kill_sites;
};

// Reads a simulation config: [simulation] name, sites, output_dir, mode, site_threads,
// compute_threads, baseline, plots, status, select_split; [data] path, partition, alpha, seed, site_paths,
// site_formats; [sweep] strategy, alpha, sites, epsilon, seed; plus the coordinator's
// [federation], [model], [preprocessing], [training], [strategy], [evaluation] and the sites'
// [privacy]. [model] torchscript_path and initial_weights are resolved against the config
// file's directory; data paths against the data root. Every grid point of [sweep] is checked as
// well (ExpandSweep in experiment.h).
// Throws ConfigError naming the file, section and key.
SimulationConfig LoadSimulationConfig(const std::string& path);

// Checks the settings of `config` that LoadSimulationConfig checks (ranges, modes, the partition,
// site_paths against sites, site_formats against site_paths, per-site budgets, [privacy],
// [preprocessing]); not [sweep]. Throws ConfigError naming config_path, section and key.
void ValidateSimulationConfig(const SimulationConfig& config);

// compute_threads, with 0 replaced by the number of cores (at least 1). Never throws.
int ComputeThreads(const SimulationConfig& config);

// The [data] settings site `k` (1-based) is given: shard k of `sites` of data_path, or all of
// site_paths[k-1] (in format site_formats[k-1]) with partition "none"; with the coordinator's
// [preprocessing] as its preprocessing keys. Paths are returned as in the config (not resolved).
// Throws std::out_of_range when site_paths (or site_formats) has no entry k.
SiteDataConfig SiteDataFor(const SimulationConfig& config, int k);

}  // namespace fedmed

#endif  // FEDMED_SIMULATOR_SIMULATION_CONFIG_H_
