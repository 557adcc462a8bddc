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
//
// The parts, each in its own file (this header includes the public ones):
//   simulation_config.h  the config file: SimulationConfig, LoadSimulationConfig, SiteDataFor
//   site_shards.h        what each site trains on (DescribeSiteShards, PrintSiteShards)
//   run_directory.h      the run directory, certificates and configs (PrepareRun)
//   process_mode.h       "process": RunProcesses
//   threads_mode.h       "threads": RunThreads
//   progress.h           following a running federation; the interrupt flag
//   run_output.h         reading metrics.jsonl / status.json, the tables printed at the end
#ifndef FEDMED_SIMULATOR_SIMULATION_H_
#define FEDMED_SIMULATOR_SIMULATION_H_

#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "simulator/progress.h"
#include "simulator/run_output.h"
#include "simulator/simulation_config.h"
#include "simulator/site_shards.h"

namespace fedmed {

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
// sites, rounds, exit status, wall-clock, peak RSS, final metrics). Installs the interrupt
// handlers (progress.h): after SIGINT or SIGTERM the federation is stopped and the result says
// how far it got.
// Throws Error if the federation cannot be set up.
SimulationResult RunSimulation(const SimulationConfig& config, const std::string& data_root,
                               const std::string& bin_dir, std::ostream& progress);

}  // namespace fedmed

#endif  // FEDMED_SIMULATOR_SIMULATION_H_
