// What fedmed-audit checks in privacy logs beyond their integrity (common/audit/privacy_log.h):
//
//   AuditSiteLog   every "trained" entry's epsilon recomputed independently from the recorded
//                  mechanism parameters with the RDP accountant (common/privacy/rdp_accountant.h)
//                  and compared with what the site recorded; the total against the budget.
//   CrossCheckLogs the digests each site says it sent against what the coordinator says it
//                  received and used, round by round.
//
// Both work on parsed entries (ReadLog), so they assume the logs' integrity was checked with
// VerifyLog; they never trust a recorded epsilon, only the recorded mechanism parameters.
#ifndef FEDMED_COMMON_AUDIT_LOG_AUDIT_H_
#define FEDMED_COMMON_AUDIT_LOG_AUDIT_H_

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/audit/privacy_log.h"

namespace fedmed {

// A recorded epsilon is flagged when it differs from the recomputed one by more than this,
// relative to the larger of the two.
inline constexpr double kEpsilonRelativeTolerance = 1e-6;

// |a - b| / max(|a|, |b|); 0 when a == b (including both 0 or both +infinity), +infinity when
// exactly one is infinite or either is NaN.
double RelativeDifference(double a, double b);

// One "trained" entry, recomputed.
struct TrainedRoundAudit {
  int64_t line = 0;              // 1-based line of the entry in its log
  TrainedEvent recorded;
  double recomputed_round = 0;   // epsilon of this round alone at recorded.delta (NaN: unknown)
  double recomputed_total = 0;   // every trained round so far composed (NaN: unknown)
  std::vector<std::string> flags;  // what is wrong with this entry; empty when it checks out
};

// One "declined" entry (nothing was spent).
struct DeclinedRoundAudit {
  int64_t line = 0;
  DeclinedEvent recorded;
};

// The audit of one site's log.
struct SiteLogAudit {
  std::string path;
  std::string site;              // the log's writer
  int64_t entries = 0;
  bool is_coordinator = false;   // the log holds "round" entries: a coordinator's, not audited
  std::vector<TrainedRoundAudit> rounds;
  std::vector<DeclinedRoundAudit> declined;
  double epsilon_total = 0;      // recomputed total after the last trained round (0 if none)
  double budget_epsilon = 0;     // the last budget the log records (0 if none)
  double delta = 0;              // of the last trained round (0 if none)
  std::string conversion;        // of the last trained round ("" if none)
  // Every flag of the log, each "line L (round R): ..."; empty when everything checks out.
  std::vector<std::string> flags;
  bool ok() const { return flags.empty(); }
};

// Audits the entries of one site's log (from ReadLog) found at `path` (for messages).
// For each "trained" entry, in order: the mechanism's RDP is composed into an accountant over
// DefaultRdpOrders() - "dp-sgd": recorded sampling rate q, noise multiplier sigma and steps;
// "update": sigma with q = 1 and steps = 1 - and converted at the entry's delta with its
// conversion; epsilon_round (the mechanism alone) and epsilon_total (everything so far) are
// compared with the recorded values, and the entry is flagged when either differs by more than
// kEpsilonRelativeTolerance (relative), when the recomputed total exceeds the entry's
// budget_epsilon, or when its parameters are unusable (mechanism "none", unknown conversion,
// values out of range; such an entry cannot be composed and every later total is then unknown).
// Throws FormatError naming the path and line if a "trained" or "declined" entry lacks a field
// or a "trained" entry names no mechanism ("none", "dp-sgd", "update"; TrainedEventFromJson).
SiteLogAudit AuditSiteLog(const std::vector<PrivacyLogEntry>& entries, const std::string& path);

// The audit as JSON: {"site", "log", "entries", "is_coordinator", "epsilon_total",
// "budget_epsilon", "delta", "conversion", "ok", "flags": [...], "rounds": [{"line", "round",
// "mechanism", "clipping_norm", "noise_multiplier", "sampling_rate", "steps", "delta",
// "conversion", "epsilon_round", "epsilon_total", "recomputed_epsilon_round",
// "recomputed_epsilon_total", "budget_epsilon", "update_sha256", "flags"}], "declined":
// [{"line", "round", "reason"}]}. Unknown (NaN) recomputed values are null.
nlohmann::json ToJson(const SiteLogAudit& audit);

// Outcome of CrossCheckLogs.
struct CrossCheckResult {
  // Each a line: a digest a site says it sent that differs from what the coordinator recorded;
  // an update the coordinator received or used from a site whose log has no "trained" entry for
  // that round; a contributor without a recorded digest; a log head the coordinator recorded
  // (RoundEvent::log_heads) that the site's log no longer has (entries removed from its end) or
  // has with different content.
  std::vector<std::string> mismatches;
  // Each a line, not failures: updates a site sent that the coordinator never recorded (lost,
  // late or dropped), rounds the coordinator's log does not have, sites the coordinator used
  // whose logs were not given (their updates are unchecked).
  std::vector<std::string> notes;
  int64_t matched = 0;   // (site, round) digests that agree on both sides
  int64_t anchored = 0;  // recorded log heads found unchanged in the sites' logs
  bool ok() const { return mismatches.empty(); }
};

// Cross-checks the coordinator's log (its "round" entries) against the sites' logs (their
// "trained" entries; each site is its log's writer; several logs of one site are merged).
// Throws FormatError naming the line if a "round" or "trained" entry lacks a field.
CrossCheckResult CrossCheckLogs(const std::vector<PrivacyLogEntry>& coordinator_log,
                                const std::vector<std::vector<PrivacyLogEntry>>& site_logs);

}  // namespace fedmed

#endif  // FEDMED_COMMON_AUDIT_LOG_AUDIT_H_
