// FlowSnapshot: a consistent copy of the round flow's state at one instant, for status displays
// (the status server, status_server.h). RoundFlow::Snapshot (round_flow.h) fills it under the
// round flow's mutex; everything here is plain data, copied, so a reader never holds that mutex.
// Header-only, no dependencies beyond the standard library.
#ifndef FEDMED_COORDINATOR_STATUS_FLOW_SNAPSHOT_H_
#define FEDMED_COORDINATOR_STATUS_FLOW_SNAPSHOT_H_

#include <map>
#include <set>
#include <string>
#include <vector>

namespace fedmed {

struct FlowSnapshot {
  std::string federation;
  // PhaseName (round/round_state_machine.h): "waiting_for_sites", "training", "evaluating",
  // "finished"; or "stopped" once the coordinator is shutting down before the end.
  std::string phase;
  int round = 0;         // 0 before the first round
  int attempt = 0;       // 1 for a round's first try
  int total_rounds = 0;
  int sites_to_start = 0;                 // registered sites the first round waits for
  std::set<std::string> registered;       // sites with a current session
  std::set<std::string> excluded;         // left out for good (max_invalid_updates)
  std::vector<std::string> selected;      // this round's (attempt's) selected sites
  std::set<std::string> contributed;      // selected sites whose update was accepted
  std::set<std::string> declined;         // selected sites that declined this round
  std::set<std::string> evaluating;       // asked to evaluate this round and not reported yet
  std::set<std::string> evaluated;        // reported this round's evaluation
  // L2 norm of each update accepted in this round (plain rounds only; secure rounds: none).
  std::map<std::string, double> update_norm;
  // Secure rounds in training: the SecAgg stage ("keys", "shares", "masked_input", "unmasking");
  // "" otherwise.
  std::string secagg_stage;
  bool secure = false;
  double round_elapsed_seconds = 0;  // since the current round's (attempt's) start; 0 before
  double phase_seconds_left = 0;     // until the current phase's deadline; 0 when none
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_STATUS_FLOW_SNAPSHOT_H_
