// The run directory of one simulated federation, and what goes into it before anything runs:
// certificates for a throw-away CA, the coordinator's config and one site config per simulated
// hospital, written exactly as fedmed-pki writes them (tools/pki/provision.h). Both modes
// (process_mode.h, threads_mode.h) start from it.
//
// Layout, under <output_root>/<name>-<timestamp>/ (or SimulationConfig::run_dir):
//   pki/            CA, keys and certificates; pki/coordinator/coordinator.toml and
//                   pki/sites/site-k/site.toml (see ProvisionFederation)
//   coordinator/    the coordinator's output_dir: status.json, metrics.jsonl, checkpoints, ...
//   site-k/         site k's output_dir (site.log, ...)
//   logs/           coordinator.out and site-k.out (process mode: what each process printed) or
//                   federation.out (threads mode: every logger of the one process)
//   summary.json    written at the end by RunSimulation (simulation.h)
#ifndef FEDMED_SIMULATOR_RUN_DIRECTORY_H_
#define FEDMED_SIMULATOR_RUN_DIRECTORY_H_

#include <filesystem>
#include <string>
#include <vector>

#include "common/config/site_config.h"
#include "simulator/simulation_config.h"
#include "tools/pki/provision.h"

namespace fedmed {

// A run directory set up by PrepareRun.
struct PreparedRun {
  std::filesystem::path run_dir;          // absolute
  ProvisionResult provisioned;            // the paths of the certificates and configs
  std::string eval_path;                  // the coordinator's held-out data, resolved ("" = none)
  std::vector<SiteDataConfig> site_data;  // per site (site-1 first), paths resolved
};

// Creates the run directory (config.run_dir, else <output_root>/<name>-<LocalTimestamp()>),
// resolves every site's data path and the held-out data against `data_root` once (so every
// party reads the same file), and provisions the federation: a CA valid 2 days,
// a coordinator on 127.0.0.1 port 0 that waits for every site before round 1, one site per
// config.sites named site-1..site-N with config.privacy and the coordinator's
// [model] torchscript_path. Throws ConfigError / Error / CryptoError as ProvisionFederation does,
// and std::filesystem::filesystem_error if the directory cannot be created.
PreparedRun PrepareRun(const SimulationConfig& config, const std::string& data_root);

// With config.status: the status page's URL with its token ("http://127.0.0.1:PORT/?token=..."),
// once the coordinator has written output_dir/status_url.txt (waits up to `timeout_seconds`;
// "" when it has not). Throws Error when the file or the token file cannot be read.
std::string StatusPageUrl(const PreparedRun& run, double timeout_seconds = 10);

// The local time as YYYYmmdd-HHMMSS, as run and sweep directory names end. Never throws.
std::string LocalTimestamp();

// Site k's (1-based) final config now that the coordinator's port is known: the provisioned
// site.toml with coordinator_address 127.0.0.1:`port`, its data, its output directory and, with
// budget_epsilon_per_site, its own budget; also written back to its site.toml. Throws
// ConfigError if the provisioned file does not load, Error if it cannot be written,
// std::out_of_range for a k that was not provisioned.
SiteConfig SiteConfigFor(const SimulationConfig& config, const PreparedRun& run, int k, int port);

}  // namespace fedmed

#endif  // FEDMED_SIMULATOR_RUN_DIRECTORY_H_
