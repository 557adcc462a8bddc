// fedmed-simulate: a whole federation on one machine, over the real transport.
//
// RunSimulation provisions throw-away certificates (the same code as fedmed-pki), writes a
// coordinator config and one site config per simulated hospital, and runs the federation over
// gRPC with mutual TLS on 127.0.0.1, in one of two modes ([simulation] mode):
//
//   "process" (default)  fedmed-coordinator and N fedmed-site processes, as deployed; each site
//                        process uses site_threads LibTorch threads.
//   "threads"            the coordinator (fedmed::Coordinator) and N site agents (fedmed::SiteAgent)
//                        as threads of this process. Each site still has its own certificate and
//                        its own gRPC channel to the coordinator over loopback. The data file is
//                        loaded once and shared read-only; at most compute_threads local trainings
//                        or evaluations run at a time (site_agent/compute_slots.h), each on one
//                        LibTorch thread, on the pool's own compute threads; sites drop the
//                        global model between tasks, and glibc's malloc arenas are capped
//                        (mallopt M_ARENA_MAX) for the process. This is how 100 sites fit on a
//                        2-core machine in under 1 GiB (docs/BENCHMARKS.md). Its logs go to each
//                        party's own log file and, all together, to logs/federation.out.
//
// Each site trains on "shard k of N" of the data file with the configured partition (the code a
// real site uses, common/data/partition.h), or on its own data ([data] site_paths), each in its
// own format ([data] site_formats: a mixed federation of .npz files, PNG/JPEG image folders, CSV
// manifests and DICOM files, as hospitals hold them). Every site gets the coordinator's
// [preprocessing] as its [data] preprocessing keys and the coordinator's [model]
// torchscript_path as its own, so that the generated configs agree. The simulator
// prints every site's class histogram at the start, follows the coordinator's status.json and
// metrics.jsonl to show progress, and prints a table of the global metrics per round.
// Everything (configs, certificates, logs, metrics, checkpoints) stays in the run directory,
// whose path is printed at the end. RunExperiment (experiment.h) adds sweeps, the pooled
// baseline and plots on top.
#ifndef FEDMED_SIMULATOR_SIMULATION_H_
#define FEDMED_SIMULATOR_SIMULATION_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"

namespace fedmed {

struct MedMnist;  // common/data/medmnist.h

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
  // are not supported here). Empty = every site "medmnist". See common/config/site_config.h.
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
// compute_threads, baseline, plots, select_split; [data] path, partition, alpha, seed, site_paths,
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

// compute_threads, with 0 replaced by the number of cores (at least 1).
int ComputeThreads(const SimulationConfig& config);

// The [data] settings site `k` (1-based) is given: shard k of `sites` of data_path, or all of
// site_paths[k-1] (in format site_formats[k-1]) with partition "none"; with the coordinator's
// [preprocessing] as its preprocessing keys. Paths are returned as in the config (not resolved).
SiteDataConfig SiteDataFor(const SimulationConfig& config, int k);

// What one site trains and evaluates on, as the site agent will select it.
struct SiteShardSummary {
  std::string site;                      // "site-k"
  std::string path;                      // the resolved data file
  std::vector<int64_t> train_histogram;  // training images per class
  int64_t train_size = 0;
  int64_t test_size = 0;
};

// MedMNIST .npz files loaded once, by resolved path (threads mode shares them with the site
// agents).
using LoadedFiles = std::map<std::string, std::shared_ptr<const MedMnist>>;

// Loads (once, into `files`) every .npz file the sites use and returns each site's share,
// computed with the partition code the site agents use (common/data/partition.h; the minimum
// sizes of LoadSiteSplit: 10 training images and 1 test image per site). Sites with another
// format are loaded as the site will load them (LoadSiteSplit,
// common/data/hospital/site_images.h), and not kept. Throws DataError / ConfigError as
// LoadMedMnist, LoadSiteSplit and PartitionIndices do.
std::vector<SiteShardSummary> DescribeSiteShards(const SimulationConfig& config,
                                                 const std::string& data_root, LoadedFiles* files);

// Prints one line per site: its name, image counts and training class histogram.
void PrintSiteShards(const std::vector<SiteShardSummary>& shards, std::ostream& out);

struct SimulationResult {
  int exit_status = 0;       // 0 when the coordinator and every site finished cleanly
  std::string run_dir;
  double wall_seconds = 0;
  // Threads mode: this process's peak RSS so far (getrusage ru_maxrss; in a sweep it includes
  // earlier runs). Process mode: the sum of the coordinator's and the sites' peaks.
  double peak_rss_mib = 0;
  int rounds_completed = 0;       // rows of metrics.jsonl
  nlohmann::json final_global;    // the last round's "global" metrics (null if none)
  nlohmann::json final_federated; // the last round's "federated" metrics (null if none)
};

// Runs the federation to the end in config.mode, writing progress lines to `progress`. `bin_dir`
// holds fedmed-coordinator and fedmed-site (process mode). Writes <run_dir>/summary.json (mode,
// sites, rounds, exit status, wall-clock, peak RSS, final metrics).
// Throws Error if the federation cannot be set up.
SimulationResult RunSimulation(const SimulationConfig& config, const std::string& data_root,
                               const std::string& bin_dir, std::ostream& progress);

// Reads a JSON-lines file (metrics.jsonl), stopping at the first line that does not parse (one
// still being written).
std::vector<nlohmann::json> ReadJsonLines(const std::string& path);

// `v` with `precision` decimals, or "-" when it is not a number.
std::string FormatNumber(const nlohmann::json& v, int precision = 4);

// True once SIGINT or SIGTERM was received while a simulation ran (the simulator then stops the
// federation and runs nothing more).
bool SimulationInterrupted();

}  // namespace fedmed

#endif  // FEDMED_SIMULATOR_SIMULATION_H_
