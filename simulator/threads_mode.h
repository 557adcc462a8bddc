// Threads mode ([simulation] mode = "threads"): the coordinator (fedmed::Coordinator) and one
// site agent (fedmed::SiteAgent) per simulated hospital as threads of this process. Each site
// still has its own certificate and its own gRPC channel to the coordinator over loopback; what
// the sites share is the CPU and the data:
//   - at most ComputeThreads(config) local trainings or evaluations run at a time, each on one
//     LibTorch thread of one shared pool (site_agent/compute_slots.h);
//   - a .npz file already loaded by DescribeSiteShards is handed to every site that uses it,
//     read-only (other formats are loaded by each site itself);
//   - sites drop the global model between tasks (4.8 MB per site for the cnn otherwise);
//   - each thread gets an 8 MiB stack whatever `ulimit -s` says, and glibc's malloc arenas are
//     capped (mallopt M_ARENA_MAX, compute threads + 2, at least 4) for the rest of the process's
//     life, so that the peak RSS stays close to what is live.
// This is how 100 sites fit on a 2-core machine in under 1 GiB (docs/BENCHMARKS.md). Every
// logger of the process writes to its party's own log file and, while the federation runs,
// stderr goes to <run_dir>/logs/federation.out.
#ifndef FEDMED_SIMULATOR_THREADS_MODE_H_
#define FEDMED_SIMULATOR_THREADS_MODE_H_

#include <ostream>
#include <string>

#include "simulator/progress.h"
#include "simulator/run_directory.h"
#include "simulator/simulation_config.h"
#include "simulator/site_shards.h"

namespace fedmed {

// Starts the coordinator on the provisioned config (its port comes from Start), then one site
// agent per site on its final config (SiteConfigFor), each on its own thread, empties `files`
// (the agents hold their shards), and follows progress (FollowProgress) until the coordinator
// ends. Sites get 20 s to finish after it, then are stopped. The outcome's peak RSS is this
// process's (getrusage ru_maxrss, MiB; in a sweep it includes earlier runs).
// Throws Error if a thread cannot be started or the log file cannot be opened; what
// LoadCoordinatorConfig, the Coordinator (constructor, Start), SiteConfigFor and the SiteAgent
// constructor throw (once the coordinator runs, it is stopped first).
ModeOutcome RunThreads(const SimulationConfig& config, const PreparedRun& run,
                       const std::string& data_root, LoadedFiles* files, std::ostream& progress);

}  // namespace fedmed

#endif  // FEDMED_SIMULATOR_THREADS_MODE_H_
