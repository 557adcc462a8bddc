// Which fedmed-simulate invocations need LibTorch inside the simulator's own process, and the
// hand-off of those to fedmed-simulate-inprocess (simulator/CMakeLists.txt says why there are two
// executables: loading LibTorch alone takes ~0.45 s of a 2-core machine, and a process-mode run
// has its LibTorch in the coordinator and site processes, not in the simulator).
#ifndef FEDMED_SIMULATOR_IN_PROCESS_HANDOFF_H_
#define FEDMED_SIMULATOR_IN_PROCESS_HANDOFF_H_

#include <string>

#include "simulator/simulation_config.h"

namespace fedmed {

// The executable that runs threads mode, the pooled baseline and model selection, in the
// directory of fedmed-simulate.
inline constexpr char kInProcessSimulator[] = "fedmed-simulate-inprocess";

// True when running `config` (with the command line's overrides applied) trains or evaluates a
// model in the simulator's own process: threads mode, the pooled baseline, model selection on a
// split, or `select_only` (model selection on a finished run). Never throws.
bool NeedsInProcessRuntime(const SimulationConfig& config, bool select_only);

// Replaces this process (execv) by `bin_dir`/fedmed-simulate-inprocess with `argv` (argv[0]
// replaced by that path): the same pid, arguments, environment, signals and exit status. Returns
// only if execv fails: throws Error naming the executable and the reason (e.g. it is missing
// from the build).
[[noreturn]] void HandOffToInProcessSimulator(const std::string& bin_dir, int argc, char** argv);

}  // namespace fedmed

#endif  // FEDMED_SIMULATOR_IN_PROCESS_HANDOFF_H_
