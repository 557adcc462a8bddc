// The status server's view of a federation at one instant (StatusView): plain data, filled by
// the status board (coordinator/status_board.h) and rendered by status_json.h and the page.
// Header-only, no dependencies beyond the standard library and flow_snapshot.h.
#ifndef FEDMED_COORDINATOR_STATUS_STATUS_VIEW_H_
#define FEDMED_COORDINATOR_STATUS_STATUS_VIEW_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/status/flow_snapshot.h"

namespace fedmed {

// One row per allowed site.
struct SiteStatus {
  std::string name;
  // "not_registered", "registered" (idle), "training", "uploading", "evaluating", "declined",
  // "dead" (its session ended: process or connection gone), "excluded".
  std::string state;
  double last_seen_unix = 0;        // seconds since the epoch of its last call; 0 = never
  int rounds_contributed = 0;       // accepted updates since the coordinator started
  int64_t last_update_bytes = 0;    // size of its last accepted update; 0 = none
  std::optional<double> last_update_norm;  // L2 norm of that update (plain rounds only)
  std::string privacy_mechanism;    // "none", "dp-sgd", "update"; "" = not reported yet
  double epsilon_spent = 0;         // at delta, as last reported
  double epsilon_budget = 0;        // 0 = no budget reported
  double delta = 0;
  std::string software_version;     // from its registration; "" = unknown
  // notAfter of the certificate it registered with (seconds since the epoch); 0 = unknown
  double certificate_not_after_unix = 0;
};

// A refusal or dropout, newest last.
struct StatusEvent {
  double unix_time = 0;
  std::string site;
  int round = 0;
  std::string kind;    // "refused", "declined", "gone", "excluded"
  std::string reason;  // Prometheus label for "refused" (RefusalReason), else ""
  std::string detail;  // the status message or the site's reason
};

// One completed round, as metrics.jsonl has it (global: held-out set; federated: the sites'
// test splits combined). Missing metrics are NaN.
struct RoundStatus {
  int round = 0;
  int attempt = 1;
  double unix_time = 0;
  double global_auc = 0, global_accuracy = 0, global_loss = 0;
  double federated_auc = 0, federated_accuracy = 0, federated_loss = 0;
  double train_loss = 0;
  double round_seconds = 0, training_seconds = 0, aggregation_seconds = 0,
         evaluation_seconds = 0, checkpoint_seconds = 0;
  std::vector<std::string> contributors;
  std::map<std::string, double> update_norm;  // plain rounds: each contributor's update's L2 norm
  // Each reporting site's AUC on its own test split (its federated evaluation report)
  std::map<std::string, double> site_auc;
};

// Everything the page, the JSON API and /metrics show, at one instant.
struct StatusView {
  FlowSnapshot flow;
  std::string stage;             // e.g. "training: 2 of 3 sites answered"
  double started_unix = 0;       // when the board was made (the coordinator started)
  double now_unix = 0;
  double eta_seconds = -1;       // mean round time x rounds left; -1 = no estimate yet
  std::vector<SiteStatus> sites;
  std::vector<StatusEvent> events;  // the latest (at most kMaxEvents), oldest first
  std::vector<RoundStatus> rounds;  // completed rounds, in order
  int64_t bytes_received = 0;       // update bytes accepted into the coordinator's round flow
  int64_t bytes_sent = 0;           // model bytes handed to sites for download
  int64_t updates_accepted = 0;
  std::map<std::string, int64_t> updates_refused;  // reason -> count
  int64_t rss_bytes = 0;            // the process's resident set size (0 = unknown)
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_STATUS_STATUS_VIEW_H_
