// Experiments on top of RunSimulation: grids of federations ([sweep]), the pooled baseline beside
// each federated result, result tables and plots.
//
// A config without [sweep] values is one run: <output>/<name>-<timestamp>/ as RunSimulation
// writes it, plus baseline.json when the baseline is on, plus global_metrics.png and
// site_metrics.png (experiments/plot_results.py) when plots are on.
//
// With [simulation] select_split, each successful run also gets selection.json: the round whose
// checkpoint scores the best AUC on that split, with its metrics on [evaluation] split
// (model_selection.h); the pooled baseline likewise chooses an epoch.
//
// A config with [sweep] values runs the cartesian product of the lists, one federation per grid
// point, into <output>/<name>-sweep-<timestamp>/NN-<values>/, and after every run rewrites
//   sweep.csv  one row per run: its swept values, exit status, rounds completed, the final global
//              ACC and AUC (and federated ACC/AUC), wall-clock seconds, peak RSS, and the
//              baseline's ACC and AUC when the baseline is on; with select_split, the selected
//              round and its ACC and AUC (and the baseline's selected epoch, ACC and AUC)
//   sweep.md   the same as a Markdown table, headed by the command that made it
// in the sweep directory; at the end, global_metrics.png there compares the runs' curves (up to
// 12 runs) and sweep_metrics.png their mean over seeds per strategy (plot_results.py).
#ifndef FEDMED_SIMULATOR_EXPERIMENT_H_
#define FEDMED_SIMULATOR_EXPERIMENT_H_

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "common/config/coordinator_config.h"
#include "simulator/simulation.h"

namespace fedmed {

// One grid point of a sweep.
struct SweepPoint {
  // The swept keys and their values at this point, in the order strategy, alpha, sites,
  // epsilon, seed (only the swept ones), e.g. {{"strategy", "fedprox"}, {"seed", "1"}}.
  std::vector<std::pair<std::string, std::string>> values;
  std::string label;  // "strategy=fedprox seed=1"
  std::string slug;   // "fedprox-seed1", for directory names
  SimulationConfig config;  // the base config with the values applied (sweep cleared)
};

// `base` with name = `name` and only the keys that apply to `name` (the table at StrategyConfig:
// proximal_mu for fedprox; server_learning_rate, beta1, tau for fedadam/fedyogi/fedadagrad;
// beta2 for fedadam/fedyogi; trim_fraction for trimmed_mean), so that one [strategy] section
// can carry the parameters of every strategy a sweep names.
StrategyConfig StrategyForName(const StrategyConfig& base, const std::string& name);

// The grid of base.sweep, strategy outermost and seed innermost; a single point with no values
// when nothing is swept. Each value maps to: strategy -> [strategy] name (StrategyForName);
// alpha -> [data] alpha; sites -> [simulation] sites; epsilon -> [privacy] target_epsilon and
// budget_epsilon; seed -> [federation] seed and [data] seed.
// Throws ConfigError "<file>: [sweep] <key>: ..." when a value cannot apply (alpha without a
// dirichlet or quantity partition; sites with site_paths or budget_epsilon_per_site; epsilon
// without a [privacy] mode, with noise_multiplier or with budget_epsilon_per_site) or makes an
// invalid config (e.g. fedprox without proximal_mu), and when a list repeats a value.
std::vector<SweepPoint> ExpandSweep(const SimulationConfig& base);

// Runs the experiment described above; `bin_dir` holds the fedmed binaries and plot_results.py;
// `command_line` is recorded in sweep.md. Returns 0 when every run succeeded, else the first
// failing run's exit status (1 when interrupted). Throws Error when a run cannot be set up.
int RunExperiment(const SimulationConfig& config, const std::string& data_root,
                  const std::string& bin_dir, const std::string& command_line,
                  std::ostream& progress);

// Model selection after the fact, for runs made without [simulation] select_split: `dir` is a
// run directory (config without [sweep]) or a sweep directory made from `config`'s grid (run
// directories NN-<slug>, read in grid order until the first one without summary.json). For each
// successful run, scores its round checkpoints (SelectCheckpoint, model_selection.h) and writes
// selection.json; with [simulation] baseline, retrains the pooled baseline once per seed with
// per-epoch selection and rewrites baseline.json (training is deterministic: its final metrics
// are those of the first run); for a sweep, rewrites sweep.csv and sweep.md with the selection
// columns (`command_line` recorded in sweep.md). Returns 0 when every run read had succeeded,
// else the first failing run's status. Throws ConfigError when config.select_split is empty,
// Error / FormatError when a run directory or checkpoint cannot be read.
int SelectFinishedExperiment(const SimulationConfig& config, const std::string& data_root,
                             const std::string& dir, const std::string& command_line,
                             std::ostream& progress);

// Runs `bin_dir`/plot_results.py on `dir` with /usr/bin/python3 (else python3 from PATH) when
// matplotlib can be imported, printing the PNGs it wrote; otherwise prints why plots were
// skipped. Returns true when the script ran successfully.
bool RunPlots(const std::string& bin_dir, const std::string& dir, std::ostream& progress);

}  // namespace fedmed

#endif  // FEDMED_SIMULATOR_EXPERIMENT_H_
