// Following a running federation, whatever the mode: the handle each mode gives the progress
// loop (RunningFederation), the loop itself (FollowProgress), what a mode returns (ModeOutcome),
// and the simulator's interrupt flag (SIGINT / SIGTERM stop the federation; a sweep runs nothing
// more).
#ifndef FEDMED_SIMULATOR_PROGRESS_H_
#define FEDMED_SIMULATOR_PROGRESS_H_

#include <filesystem>
#include <functional>
#include <optional>
#include <ostream>
#include <string>

#include "simulator/event_waiter.h"
#include "simulator/simulation_config.h"

namespace fedmed {

// The running federation as the progress loop sees it, whatever the mode.
struct RunningFederation {
  std::function<std::optional<int>()> poll_coordinator;  // exit status once it has finished
  std::function<void()> stop;                            // SIGTERM to everything
  std::function<void()> tick;                            // after each wake (may be empty)
  // Wakes the progress loop: the mode watches the coordinator's folder and end with it (and
  // whatever its tick looks at). A wait ends after 250 ms at the latest (a signal that another
  // thread took).
  EventWaiter* wake = nullptr;
};

// How a mode's run of the federation ended.
struct ModeOutcome {
  int exit_status = 0;     // the coordinator's, else the first failing site's; 0 = all clean
  bool stopped = false;    // stopped on SIGINT / SIGTERM
  double peak_rss_mib = 0; // MiB; see SimulationResult::peak_rss_mib
  std::string rss_detail;  // one line for the summary
};

// Follows `federation` until the coordinator ends, woken by federation.wake, and returns the
// coordinator's exit status. Prints
// to `progress` the coordinator's status.json (round, phase, sites done) whenever it changes and
// one line per round as metrics.jsonl grows, both read from `coord_dir`. Once an interrupt has
// been received it calls federation.stop() (once) and sets *stopped. Throws what the federation's
// functions throw.
int FollowProgress(const SimulationConfig& config, const std::filesystem::path& coord_dir,
                   const RunningFederation& federation, std::ostream& progress, bool* stopped);

// Makes SIGINT and SIGTERM set the interrupt flag (std::signal; for the rest of the process's
// life). Never throws.
void InstallInterruptHandlers();

// True once SIGINT or SIGTERM was received while a simulation ran (the simulator then stops the
// federation and runs nothing more). Never throws.
bool SimulationInterrupted();

}  // namespace fedmed

#endif  // FEDMED_SIMULATOR_PROGRESS_H_
