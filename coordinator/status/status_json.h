// The status server's JSON documents (/api/status, /api/rounds; docs/OPERATIONS.md has an
// example of each) and its Prometheus text exposition (/metrics), rendered from a StatusView
// (status_view.h). Pure functions: no I/O, never throw (numbers that are not finite become
// JSON null; Prometheus gets NaN).
#ifndef FEDMED_COORDINATOR_STATUS_STATUS_JSON_H_
#define FEDMED_COORDINATOR_STATUS_STATUS_JSON_H_

#include <string>

#include "coordinator/status/status_view.h"

namespace fedmed {

// /api/status: {"federation", "phase", "round", "total_rounds", "attempt", "stage",
// "elapsed_seconds", "round_elapsed_seconds", "eta_seconds" (null: no estimate), "now_unix",
// "sites": [{"name", "state", "last_seen_unix" (null: never), "rounds_contributed",
// "last_update_bytes", "last_update_norm" (null), "privacy": {"mechanism", "epsilon_spent",
// "epsilon_budget", "delta"} (null: not reported), "software_version",
// "certificate_not_after_unix" (null: unknown)}], "events": [...],
// "rounds": [...] (as RoundsJson's), "counters": {...}}.
std::string StatusJson(const StatusView& view);

// /api/rounds: {"rounds": [{"round", "attempt", "unix_time", "global": {"auc", "accuracy",
// "loss"}, "federated": {...}, "train_loss", "seconds": {"round", "training", "aggregation",
// "evaluation", "checkpoint"}, "contributors", "site_auc": {site: AUC on its own test split}}]}.
std::string RoundsJson(const StatusView& view);

// /metrics: Prometheus text format 0.0.4 (every family with # HELP and # TYPE):
//   fedmed_rounds_completed_total, fedmed_round_total_rounds, fedmed_current_round,
//   fedmed_round_duration_seconds and fedmed_round_stage_duration_seconds{stage} (histograms over
//   the completed rounds), fedmed_sites{state}, fedmed_received_bytes_total,
//   fedmed_sent_bytes_total, fedmed_updates_accepted_total, fedmed_updates_refused_total{reason},
//   fedmed_site_epsilon_spent{site}, fedmed_site_epsilon_budget{site},
//   fedmed_global_auc / fedmed_global_accuracy (latest round), process_resident_memory_bytes.
std::string PrometheusText(const StatusView& view);

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_STATUS_STATUS_JSON_H_
