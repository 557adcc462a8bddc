// Process mode ([simulation] mode = "process", the default): the federation as deployed, one
// fedmed-coordinator process and one fedmed-site process per simulated hospital, talking gRPC
// with mutual TLS over 127.0.0.1. Each process's output goes to <run_dir>/logs/<name>.out.
#ifndef FEDMED_SIMULATOR_PROCESS_MODE_H_
#define FEDMED_SIMULATOR_PROCESS_MODE_H_

#include <ostream>
#include <string>

#include "simulator/progress.h"
#include "simulator/run_directory.h"
#include "simulator/simulation_config.h"

namespace fedmed {

// Starts `bin_dir`/fedmed-coordinator on the provisioned config (with --data `data_root` when it
// is not empty), waits up to 60 s for status.json to tell the port it bound, writes each site's
// final config (SiteConfigFor) and starts `bin_dir`/fedmed-site for each, then follows progress
// (FollowProgress) until the coordinator ends. --kill-site pairs (config.kill_sites) SIGKILL site
// K once its site.log says it is past the point of no return in round R (keys shared under
// secure aggregation, else training started); such a site's exit status is not counted. Sites
// get 20 s to finish after the coordinator, then are stopped. The outcome's peak RSS is the sum
// of every process's peak (MiB).
// Throws Error (with the end of the coordinator's log) if the coordinator does not start
// listening within 60 s, ends first, or an interrupt arrives meanwhile; Error if a program
// cannot be started; what SiteConfigFor throws.
ModeOutcome RunProcesses(const SimulationConfig& config, const PreparedRun& run,
                         const std::string& data_root, const std::string& bin_dir,
                         std::ostream& progress);

}  // namespace fedmed

#endif  // FEDMED_SIMULATOR_PROCESS_MODE_H_
