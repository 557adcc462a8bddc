// The status board: what the status server (status/status_server.h) shows, gathered without
// touching the round flow's decisions. (It sits beside the round flow, not in status/, because
// it is a SiteHandler; status/ depends on nothing in coordinator/.)
//
// StatusBoard is a SiteHandler (site_handler.h) that wraps the round flow: the transport calls
// the board, the board forwards every call unchanged to the round flow and records what it saw
// (a site's last call, its registration's software version, an update's size and privacy spend,
// a refusal and its reason, a decline, a site gone, model bytes sent). The round's state
// (phase, selected sites, who answered) comes from a FlowSnapshot (status/flow_snapshot.h) taken
// when a
// view is asked for, and the completed rounds from the coordinator's metrics.jsonl
// (metrics_log.h), so resumed federations show their earlier rounds too.
//
// Nothing derived from an individual image is recorded: only counts, sizes, norms, aggregate
// metrics and privacy spends, as in metrics.jsonl.
//
// Thread-safety: every method may be called from any thread (one internal mutex, never held
// while calling the wrapped handler or the snapshot function).
#ifndef FEDMED_COORDINATOR_STATUS_BOARD_H_
#define FEDMED_COORDINATOR_STATUS_BOARD_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/site_handler.h"
#include "coordinator/status/flow_snapshot.h"
#include "coordinator/status/status_view.h"

namespace fedmed {

// The Prometheus label for why an update was refused: "invalid_update" (malformed, bad digest,
// not finite), "norm_bound" (above the update norm bound), "unexpected" (not selected, late,
// already answered: FAILED_PRECONDITION), "unknown_session", "limit" (a per-site limit), or
// "upload_failed" (the transfer broke off). Never throws.
std::string RefusalReason(const Status& status);

// The resident set size of this process in bytes, from /proc/self/statm; 0 when unknown.
int64_t ProcessRssBytes();

class StatusBoard final : public SiteHandler {
 public:
  static constexpr size_t kMaxEvents = 50;

  // `inner`: the handler every call is forwarded to (the round flow), must outlive this.
  // `snapshot`: returns the round flow's state now (RoundFlow::Snapshot); thread-safe.
  // `metrics_jsonl`: the coordinator's metrics.jsonl path (may not exist yet).
  // `allowed_sites`: the [tls] allow-list, one row each. Never throws.
  StatusBoard(SiteHandler* inner, std::function<FlowSnapshot()> snapshot,
              std::string metrics_jsonl, std::vector<std::string> allowed_sites);

  // The current view. Reads metrics.jsonl again only when its size or time changed; a line that
  // does not parse is skipped. Never throws (a snapshot function that throws propagates).
  StatusView View() const;

  // ---- SiteHandler: forwarded to `inner`, recorded ----
  Status Register(const std::string& site, const RegistrationInfo& request,
                  Registration* reply) override;
  Status Poll(const std::string& site, const std::string& session_id, int wait_ms,
              SiteTask* task) override;
  Status GetModel(const std::string& site, const std::string& session_id, int version,
                  std::shared_ptr<const EncodedModel>* model) override;
  Status CheckUpdate(const std::string& site, const UpdateHeader& header) override;
  Status AcceptUpdate(const std::string& site, const UpdateHeader& header, std::string bytes,
                      double transfer_seconds) override;
  Status AcceptEvaluation(const std::string& site, const EvaluationReport& report) override;
  Status DeclineTask(const std::string& site, const DeclineRequest& request) override;
  Status SecAggSend(const std::string& site, const SecAggMessage& message) override;
  Status SecAggReceive(const std::string& site, const SecAggPoll& poll,
                       SecAggStage* stage) override;
  void RecordDownload(const std::string& site, double seconds) override;
  void UploadFailed(const std::string& site, const Status& why) override;
  Status Attend(const std::string& site, const std::string& session_id) override;
  void SiteGone(const std::string& site, const std::string& session_id) override;
  Status Hello(const std::string& site, const std::string& software_version,
               HelloAnswer* answer) override;

 private:
  struct SiteRecord {
    double last_seen_unix = 0;
    bool ever_registered = false;
    bool gone = false;           // its session ended (cleared when it registers again)
    bool excluded_reported = false;
    int uploading_round = 0;     // round of a header accepted whose data is arriving; 0 = none
    int rounds_contributed = 0;
    int64_t last_update_bytes = 0;
    std::optional<double> last_update_norm;
    std::optional<PrivacySpend> privacy;
    std::string software_version;
    int64_t certificate_not_after = 0;  // from its registration; 0 = unknown
  };

  void Seen(const std::string& site);
  void AddEventLocked(const std::string& site, int round, const std::string& kind,
                      const std::string& reason, const std::string& detail);
  void Refused(const std::string& site, int round, const Status& why);
  std::vector<RoundStatus> Rounds() const;

  SiteHandler* const inner_;
  const std::function<FlowSnapshot()> snapshot_;
  const std::string metrics_jsonl_;
  const std::vector<std::string> allowed_sites_;
  const double started_unix_;

  mutable std::mutex mu_;
  std::map<std::string, SiteRecord> sites_;
  std::deque<StatusEvent> events_;
  int64_t bytes_received_ = 0;
  int64_t bytes_sent_ = 0;
  int64_t updates_accepted_ = 0;
  std::map<std::string, int64_t> updates_refused_;
  // metrics.jsonl as last read: its size and modification time, and its rounds.
  mutable uintmax_t metrics_size_ = 0;
  mutable int64_t metrics_mtime_ = 0;
  mutable std::vector<RoundStatus> rounds_;
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_STATUS_BOARD_H_
