// The round report: what the coordinator writes down about the federation, for people and
// programs (the round flow, round_flow.h, decides; this module records).
//
//   metrics.csv / metrics.jsonl  one row / object per completed round (metrics_log.h)
//   audit_log.jsonl              the coordinator's signed audit log (common/audit/privacy_log.h):
//                                start, one "round" entry per completed round (selected sites,
//                                contributors, the digest of every update received, the
//                                aggregate's digest, the global metrics, each contributor's
//                                privacy-log head), stop. Kept only when the coordinator's audit
//                                key (audit.key, audit.pem) sits beside its TLS key.
//   status.json                  the current phase, for progress displays (FederationStatus),
//                                replaced atomically at every change
//   coordinator.log              the round's summary line and the sites' privacy spend
#ifndef FEDMED_COORDINATOR_ROUND_REPORT_H_
#define FEDMED_COORDINATOR_ROUND_REPORT_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/audit/privacy_log.h"
#include "coordinator/metrics_log.h"

namespace spdlog {
class logger;
}

namespace fedmed {

// The contents of status.json.
struct FederationStatus {
  std::string federation;
  std::string phase;  // PhaseName (round/round_state_machine.h), or "stopped"
  int round = 0;
  int attempt = 0;
  int total_rounds = 0;
  int port = 0;
  size_t registered = 0;
  size_t selected = 0;
  size_t updates = 0;
  size_t evaluations = 0;
  std::optional<int> last_round;  // with the global metrics of that round, when evaluated
  double global_accuracy = 0;
  double global_auc = 0;
};

// Replaces output_dir/status.json with `status` (atomically, not synced: it is for displays
// only); a failure is logged to `log` as a warning. Touches no RoundReport: it may run while a
// round's records are being written on another thread.
void WriteStatusFile(const std::string& output_dir, const FederationStatus& status,
                     spdlog::logger& log);

// Not thread-safe: the round flow calls it under its report mutex.
class RoundReport {
 public:
  // Opens output_dir's metrics files (appending) and, when `audit_key_dir` holds audit.key and
  // audit.pem, the signed audit log (appending; a torn last line is repaired and logged), whose
  // start entry names the federation, its rounds and strategy. Without an audit key it logs a
  // warning and keeps no audit log. Throws Error / CryptoError when a file cannot be opened.
  RoundReport(const std::string& output_dir, const std::string& audit_key_dir,
              const std::string& federation, int rounds, const std::string& strategy,
              std::shared_ptr<spdlog::logger> log);
  ~RoundReport();

  // A completed round's rows in metrics.csv and metrics.jsonl. Written before the round's
  // checkpoint, so that a crash between the two repeats the round (whose rows KeepMetricsUpTo
  // then drops) rather than losing its rows. Throws Error naming the file that cannot be written.
  void AppendMetrics(const RoundRecord& record);
  // A resumed coordinator: drops metrics rows of rounds after `completed_round`. Throws as
  // AppendMetrics.
  void KeepMetricsUpTo(int completed_round);

  // The audit entry of a completed round (`selected`: the round's selected sites; `log_heads`:
  // each contributor's privacy-log entry for its update).
  static RoundEvent RoundEventOf(const RoundRecord& record, const std::vector<std::string>& selected,
                                 const std::map<std::string, LogAnchor>& log_heads);
  // After the round's checkpoint: `event` (RoundEventOf) in the audit log and the round's
  // summary in coordinator.log. Throws Error / CryptoError when the audit log cannot be written.
  void AppendRound(const RoundRecord& record, int total_rounds, const RoundEvent& event);
  // A resumed coordinator: when the audit log holds no "round" entry for `round` (the crash came
  // between resume.json and the audit log's append), appends `event_json` (ToJson(RoundEvent),
  // kept in resume.json) and logs that it did. Throws Error / FormatError / CryptoError when the
  // audit log cannot be read, `event_json` is not a round entry, or the append fails.
  void EnsureRoundAudited(int round, const std::string& event_json);

  // A site excluded from the federation (`why`), in the audit log when there is one. Errors are
  // logged, not thrown.
  void AppendExcluded(const std::string& site, int round, const std::string& why);

  // An operator's action (fedmed-admin) in the audit log when there is one: kEventAdmin with
  // {"operator", "action", "round"} and `arguments` (a JSON object's fields, e.g. site, reason,
  // rounds). Errors are logged, not thrown.
  void AppendAdmin(const std::string& operator_name, const std::string& action, int round,
                   const nlohmann::json& arguments);

  // The audit log's stop entry (when there is an audit log); errors are logged, not thrown.
  void AppendStop(bool finished, int completed_rounds);


 private:
  std::string output_dir_;
  std::shared_ptr<spdlog::logger> log_;
  MetricsLog metrics_;
  std::unique_ptr<PrivacyLogWriter> audit_;  // null without an audit key
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_ROUND_REPORT_H_
