// Per-round records of the coordinator: metrics.csv (one row per round, for spreadsheets and
// plots) and metrics.jsonl (one JSON object per round with everything, including per-site metrics
// and the SHA-256 digests of every update received). Each file is rewritten whole after every
// round with WriteFileAtomically (common/util/file_io.h), so a crash or a full disk never leaves
// a partial row, and a resumed coordinator drops the rows of rounds it will run again
// (KeepUpTo): every round appears exactly once.
#ifndef FEDMED_COORDINATOR_METRICS_LOG_H_
#define FEDMED_COORDINATOR_METRICS_LOG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/metrics/classification_metrics.h"
#include "common/privacy/privacy_spend.h"

namespace fedmed {

// A site's privacy spend as it reported it (with its update, or when it declined a round).
struct SitePrivacyReport {
  PrivacySpend spend;      // as reported (common/privacy/privacy_spend.h)
  bool declined = false;   // it declined the round: its budget would have been exceeded
};

struct RoundRecord {
  int round = 0;
  int attempt = 1;                     // > 1 when earlier attempts missed the quorum
  std::string strategy;                // [strategy] name ("fedavg", "fedadam", ...); JSON only
  double unix_time = 0;                // when the round ended, seconds since the epoch
  // Wall-clock seconds. round = training + aggregation + evaluation + checkpoint (the evaluation
  // and checkpoint of a round may overlap the next round: critical_path below); training is the
  // time from the round's start to the last accepted update, of which transfer_seconds (mean per
  // contributing site of the server-side model download and update upload stream time) was spent
  // moving bytes and training_wait_seconds = training - transfer waiting for local training.
  double round_seconds = 0;
  double training_seconds = 0;
  double training_wait_seconds = 0;
  double transfer_seconds = 0;
  std::map<std::string, double> site_transfer_seconds;  // per contributor; JSON only
  double aggregation_seconds = 0;      // from the last update to the new global model
  double evaluation_seconds = 0;       // central and federated evaluation (they overlap)
  double checkpoint_seconds = 0;
  std::vector<std::string> contributors;
  int64_t num_samples = 0;             // Σ n_k over contributors
  double mean_train_loss = 0;          // n_k-weighted
  double mean_site_train_seconds = 0;  // local training time reported by the sites
  double slowest_site_train_seconds = 0;  // the longest a contributor reported; JSON only
  // Where the round's time went (JSON "seconds": {"critical_path": {...}}), on its critical
  // path: from the round's start to the next round's start (the last round: to its checkpoint),
  // the held-out evaluation and the records of a round that is not the last overlapping the next
  // round. The critical site is the contributor whose update arrived last; each part is in
  // seconds:
  //   training      the critical site's local training, as it reported it
  //   queued        its wait for a compute slot shared with other sites of its process
  //                 (fedmed-simulate's threads mode: sites take turns on the cores), as it
  //                 reported it; 0 for a site of its own
  //   transfers     its model download and update upload (server-side stream time)
  //   waiting       for selected sites that did not answer, from the last update to the
  //                 training deadline (0 when every selected site answered)
  //   coordinator   the coordinator's own work the next round waited for: the updates still
  //                 being added after the last arrived, aggregation (secure rounds: the
  //                 unmasking stage too), and (the last round) the checkpoint and records
  //   evaluation    the evaluations the next round waited for: the sites' (federated
  //                 evaluation), and the held-out one in the last round
  //   overhead      everything else: the framework's overhead (waking the site, setting up its
  //                 training, encoding and checking the update, ...); critical_path minus the
  //                 six parts above
  struct CriticalPath {
    double seconds = 0;
    std::string site;
    double training = 0;
    double queued = 0;
    double transfers = 0;
    double waiting = 0;
    double coordinator = 0;
    double evaluation = 0;
    double overhead = 0;
  };
  CriticalPath critical_path;
  bool evaluation_overlapped = false;  // the held-out evaluation ran beside the next round
  std::string model_sha256;            // of the new global model's encoding
  std::map<std::string, std::string> update_sha256;  // site -> digest of the update received
  // Plain rounds: the L2 norm of each accepted update, and of the global model the updates are
  // relative to (the bound [federation] max_update_norm_ratio applies to). JSON only.
  std::map<std::string, double> update_norm;
  double base_model_norm = 0;
  std::vector<std::string> declined;                 // selected sites that declined the round
  // Bytes moved this attempt (JSON "bytes": {"down", "up"}): down = global-model downloads
  // served (training and evaluation), up = the updates (or masked inputs) accepted, in the
  // encoding they travelled in ([transport] update_encoding, JSON "update_encoding").
  int64_t bytes_down = 0;
  int64_t bytes_up = 0;
  std::string update_encoding = "float32";
  // Uploads accepted after a resume: site -> the byte the resumed stream started at (the bytes
  // before it came in an earlier stream that was cut). JSON "resumed_uploads" only.
  std::map<std::string, int64_t> resumed_uploads;
  // The latest report of every site that ever reported one (not only this round's contributors).
  std::map<std::string, SitePrivacyReport> privacy;
  std::optional<ClassificationMetrics> global;       // central evaluation on the held-out set
  std::optional<ClassificationMetrics> federated;    // sites' local test splits, combined
  std::map<std::string, ClassificationMetrics> sites;
  // Secure aggregation: whether the round was a secure one (update_sha256 then holds the digests
  // of the masked inputs), the sites it excluded for misbehaving (name -> why) and those that
  // dropped after sharing their keys and were recovered from their shares. JSON only.
  bool secure = false;
  std::map<std::string, std::string> secagg_excluded;
  std::vector<std::string> secagg_dropped;
};

class MetricsLog {
 public:
  // Reads the rows dir/metrics.csv and dir/metrics.jsonl already hold (an earlier run of this
  // federation); creates dir, but no file until the first Append. Throws Error naming a file that
  // exists but cannot be read.
  explicit MetricsLog(const std::string& dir);

  // Adds one row to each file, rewriting it whole (header first). Throws Error naming the file
  // when it cannot be written; the file then keeps its previous content.
  void Append(const RoundRecord& record);

  // Drops the rows of rounds after `round` (rows a crashed coordinator wrote before its
  // checkpoint), rewriting the files when any was dropped. Throws as Append.
  void KeepUpTo(int round);

  static std::string CsvHeader();
  static std::string ToCsv(const RoundRecord& record);
  static std::string ToJson(const RoundRecord& record);

 private:
  void Write() const;

  std::string dir_;
  // Rows as written, with their round (0 when a row's round cannot be read: kept as is).
  std::vector<std::pair<int, std::string>> csv_rows_;
  std::vector<std::pair<int, std::string>> json_rows_;
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_METRICS_LOG_H_
