// Tamper-evident privacy logs: what a site spent and sent, what the coordinator received and
// used, as evidence a privacy officer can check (fedmed-audit verify / report / cross-check).
//
// File format (version 1). A log is a UTF-8 text file of JSON lines, one entry per line, each
// line ended by "\n", written by one writer (a site, or the coordinator) only ever by appending.
// An entry is a JSON object with exactly these members:
//
//   seq     integer, 0 for the first entry of the file and +1 for each following one
//   time    when it was written, UTC, "YYYY-MM-DDTHH:MM:SS.mmmZ" (ISO 8601, milliseconds)
//   writer  the writer's name: the CN of its audit certificate (a site name, or the
//           coordinator's CN "<federation>-coordinator")
//   event   what happened: "start", "stop", "registered", "trained", "declined", "budget",
//           "recovered" (sites), "round" (coordinator); see the event structs below
//   data    object: the event's fields (never patient data, images or image file names)
//   prev    64 lowercase hex characters: SHA-256 of the previous line's bytes (without its
//           "\n"); for the first entry, SHA-256 of "fedmed privacy log v1\n" + writer
//           (GenesisHash)
//   sig     128 lowercase hex characters: the Ed25519 signature (RFC 8032) of the entry's
//           signed bytes, by the writer's audit key
//
// Canonical serialisation. Every line is exactly nlohmann::json::dump() of its entry: no
// whitespace outside strings, object members sorted by key (bytewise, as std::map; nested
// objects too), strings as UTF-8 with only '"', '\\' and control characters escaped (as
// \", \\, \b \f \n \r \t, other controls \u00XX lowercase), integers in decimal, floating-point
// numbers in the shortest form that reads back to the same double (e.g. 1e-05, 0.5, 2.0). A line
// that parses but is not in this form is rejected, so no byte of a line can change without the
// change being caught. The signed bytes of an entry are the canonical serialisation of the
// entry without its "sig" member (SignedBytes). Non-finite numbers (NaN, infinity) are refused
// when writing.
//
// Example (one line, wrapped here):
//   {"data":{"budget_epsilon":8.0,"clipping_norm":1.0,"conversion":"balle2020","delta":1e-05,
//   "epsilon_round":0.61,"epsilon_total":1.02,"mechanism":"dp-sgd","noise_multiplier":1.1,
//   "round":3,"sampling_rate":0.0125,"steps":80,"update_sha256":"9f86...0f00"},
//   "event":"trained","prev":"5d41...2a9b","seq":4,"sig":"a3c1...0e07",
//   "time":"2025-06-01T12:34:56.789Z","writer":"site-1"}
//
// What this proves: an entry cannot be altered, removed from the middle, reordered or inserted
// without the writer's key (the hash chain and the signatures break, at the first line that
// differs); a cut-short last line shows as a missing newline. Removing whole entries from the
// end is only visible against other evidence (the coordinator's log, cross-check).
//
// Durability: PrivacyLogWriter::Append fsyncs the file before returning, so callers append the
// record of a spend before the update it describes leaves the site. A crash while appending
// leaves at most one torn last line, which the writer repairs when it reopens the log and
// records in a "recovered" entry.
#ifndef FEDMED_COMMON_AUDIT_PRIVACY_LOG_H_
#define FEDMED_COMMON_AUDIT_PRIVACY_LOG_H_

#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/crypto/audit_key.h"
#include "common/crypto/pki.h"
#include "common/privacy/privacy_spend.h"

namespace fedmed {

// Files fedmed-pki writes for every party, in the party's directory beside its TLS files:
// OUT/sites/<name>/audit.key|audit.pem and OUT/coordinator/audit.key|audit.pem.
inline constexpr const char* kAuditKeyFile = "audit.key";   // Ed25519 PKCS#8 PEM, mode 0600
inline constexpr const char* kAuditCertFile = "audit.pem";  // its certificate, CN = the party
// The subject OU of audit-log certificates.
inline constexpr const char* kAuditCertOrganizationalUnit = "fedmed audit log";

// The request fedmed-pki issues a party's audit-log certificate from (IssueCertificate,
// common/crypto/pki.h): a fresh Ed25519 key, CN `common_name`, OU kAuditCertOrganizationalUnit,
// documentSigning only (no TLS use), valid for `validity_days` days.
inline CertificateRequest AuditCertificateRequest(const std::string& common_name,
                                                  int validity_days) {
  CertificateRequest request;
  request.common_name = common_name;
  request.client_auth = false;
  request.server_auth = false;
  request.document_signing = true;
  request.key_type = CertificateKeyType::kEd25519;
  request.organizational_unit = kAuditCertOrganizationalUnit;
  request.validity_days = validity_days;
  return request;
}

// Conventional log file names, in the party's output directory.
inline constexpr const char* kSitePrivacyLogFile = "privacy_log.jsonl";
inline constexpr const char* kCoordinatorAuditLogFile = "audit_log.jsonl";

// Event names.
inline constexpr const char* kEventStart = "start";
inline constexpr const char* kEventStop = "stop";
inline constexpr const char* kEventRegistered = "registered";
inline constexpr const char* kEventTrained = "trained";
inline constexpr const char* kEventDeclined = "declined";
inline constexpr const char* kEventBudget = "budget";
inline constexpr const char* kEventRecovered = "recovered";
inline constexpr const char* kEventRound = "round";
// The coordinator excluded a site from the federation ({"site", "round", "reason"}).
inline constexpr const char* kEventExcluded = "excluded";
// An operator's action on the coordinator (fedmed-admin): {"operator" (certificate CN), "action"
// ("pause", "resume", "stop", "exclude", "extend"), "round", and the action's arguments}.
inline constexpr const char* kEventAdmin = "admin";

// ---- event data ----------------------------------------------------------------------------
//
// "start"      {"role": "site"|"coordinator", ...}: the process started; further members are
//              settings worth recording (e.g. "privacy_mode", "budget_epsilon", "delta",
//              "conversion" for a site; "federation", "rounds", "strategy" for the
//              coordinator). Free-form, no patient data.
// "stop"       {"reason": string}: the process is shutting down cleanly.
// "registered" {"total_rounds": int, ...}: the site registered with the coordinator.
// "trained"    TrainedEvent  (site)
// "declined"   DeclinedEvent (site)
// "budget"     BudgetEvent   (site)
// "recovered"  RecoveredEvent (written by PrivacyLogWriter itself)
// "round"      RoundEvent    (coordinator)

// A round the site trained: the spend, recorded (fsync'ed) before the update is sent.
struct TrainedEvent {
  int round = 0;
  // kDpSgd | kUpdate (common/privacy/privacy_spend.h); "dp-sgd" | "update" in the entry's JSON,
  // by PrivacyModeName. A site never logs kNone ("none"); the auditor flags such an entry.
  PrivacyMode mechanism = PrivacyMode::kNone;
  double clipping_norm = 0;      // C (per sample for dp-sgd, of the whole update for update)
  double noise_multiplier = 0;   // sigma (dp-sgd) or z (update)
  double sampling_rate = 1;      // q per step (dp-sgd); 1 for update
  int64_t steps = 1;             // DP-SGD steps; 1 for update
  double delta = 0;              // of the (epsilon, delta) guarantee
  std::string conversion = "balle2020";  // RDP conversion: "balle2020" | "classic"
  double epsilon_round = 0;      // this round alone, at delta
  double epsilon_total = 0;      // every trained round so far composed, this one included
  double budget_epsilon = 0;     // the site's budget when it trained
  std::string update_sha256;     // SHA-256 (hex) of the exact bytes uploaded for this round
};

// A round the site declined (e.g. its budget would be exceeded). Nothing was spent.
struct DeclinedEvent {
  int round = 0;
  std::string reason;
  double epsilon_round = 0;   // what the round would have cost (0 if unknown)
  double epsilon_total = 0;   // spent so far (without this round)
  double budget_epsilon = 0;
  double delta = 0;
};

// The site's budget changed (configuration edited between runs).
struct BudgetEvent {
  double budget_epsilon = 0;           // the new budget
  double previous_budget_epsilon = 0;  // the one before (0 if none was recorded)
  double delta = 0;
  double epsilon_spent = 0;            // spent so far, at delta
};

// Written by PrivacyLogWriter when it repaired a torn last line on opening.
struct RecoveredEvent {
  int64_t dropped_bytes = 0;   // bytes removed from the end of the file
  std::string dropped_sha256;  // SHA-256 (hex) of those bytes
  bool completed_entry = false;  // true: the torn line was a whole valid entry missing only its
                                 // "\n", which was kept and completed (dropped_bytes = 0)
  int64_t last_seq = -1;       // seq of the last good entry before this one (-1: none)
  std::string reason;          // e.g. "last line has no newline (torn write)"
};

// An entry of a site's log as the coordinator saw it: the site sends the seq and line hash
// (PrivacyLogEntry::hash) of the "trained" entry it appended for an update together with the
// update; the coordinator records them. They anchor the site's log, so that cross-check can
// tell when entries were later removed from its end or replaced (something the hash chain alone
// cannot show).
struct LogAnchor {
  int64_t seq = 0;
  std::string sha256;  // SHA-256 (hex) of that entry's line
};

// The coordinator's record of a finished round.
struct RoundEvent {
  int round = 0;
  std::vector<std::string> selected;       // sites asked to train
  std::vector<std::string> contributors;   // sites whose update went into the aggregate
  std::map<std::string, std::string> received;  // site -> SHA-256 (hex) of the update bytes
  std::string aggregate_sha256;            // SHA-256 (hex) of the new global model's bytes
  std::map<std::string, double> metrics;   // global evaluation, e.g. "accuracy", "auc"
  // Optional: site -> the head of its log that came with its update ("log_heads" in JSON,
  // {"site": {"seq": int, "sha256": hex}}; omitted when empty).
  std::map<std::string, LogAnchor> log_heads;
};

// Event data as the JSON object stored in "data" (members named as the struct fields).
nlohmann::json ToJson(const TrainedEvent& e);
nlohmann::json ToJson(const DeclinedEvent& e);
nlohmann::json ToJson(const BudgetEvent& e);
nlohmann::json ToJson(const RecoveredEvent& e);
nlohmann::json ToJson(const RoundEvent& e);

// The event structs back from an entry's "data". Throw FormatError naming `what` (e.g.
// "site-1.jsonl: line 7") and the member if a required member is missing or has the wrong type,
// or (TrainedEvent) when "mechanism" is not "none", "dp-sgd" or "update" (ParsePrivacyMode).
TrainedEvent TrainedEventFromJson(const nlohmann::json& data, const std::string& what);
DeclinedEvent DeclinedEventFromJson(const nlohmann::json& data, const std::string& what);
RoundEvent RoundEventFromJson(const nlohmann::json& data, const std::string& what);

// ---- format helpers ------------------------------------------------------------------------

// SHA-256 (hex) of "fedmed privacy log v1\n" + writer: the "prev" of a log's first entry.
std::string GenesisHash(const std::string& writer);

// The bytes an entry's signature covers: dump() of `entry` without its "sig" member.
std::string SignedBytes(const nlohmann::json& entry);

// `t` (seconds since the Unix epoch) plus `millis` as "YYYY-MM-DDTHH:MM:SS.mmmZ".
std::string FormatLogTime(std::time_t t, int millis);

// Parses a log time written by FormatLogTime into seconds since the Unix epoch (milliseconds
// dropped). Returns std::nullopt unless `text` has exactly that form with a valid date and time.
std::optional<std::time_t> ParseLogTime(const std::string& text);

// ---- reading and verifying -----------------------------------------------------------------

// One parsed entry.
struct PrivacyLogEntry {
  int64_t line = 0;  // 1-based line number in the file
  int64_t seq = 0;
  std::string time;
  std::string writer;
  std::string event;
  nlohmann::json data;  // object
  std::string prev;
  std::string sig;
  std::string hash;  // SHA-256 (hex) of this entry's line: the next entry's "prev"
};

// Checks a log line by line, as a state machine: the expected seq and prev of the next entry.
// Copyable, so that a check can resume from any point of a log.
class PrivacyLogVerifier {
 public:
  // How a line failed.
  enum class Failure {
    kNone,         // the line is a good next entry
    kUnparseable,  // not a JSON object (e.g. a torn write)
    kInvalid,      // a JSON object, but not the right next entry of this log
  };

  // Checks structure, chain and signatures under `key`; every entry's writer must be
  // key.common_name(). With `check_time`, every entry's time must also lie within the
  // certificate's validity (key.not_before() .. key.not_after()).
  explicit PrivacyLogVerifier(AuditVerifyingKey key, bool check_time = true);
  // Checks structure and chain only, no signatures (ReadLog): every entry's writer must be the
  // first entry's.
  PrivacyLogVerifier();

  // Checks `line` (without its "\n") as the next entry. Returns kNone and, when `entry` is not
  // null, fills it (its line number is entries() + 1 before the call); otherwise returns the
  // failure and sets `what` (one line, e.g. "seq is 5, expected 4: an entry is missing or out
  // of order"). After kNone the state advances; after a failure it is unchanged. Never throws
  // for bad input.
  Failure Next(std::string_view line, std::string* what, PrivacyLogEntry* entry = nullptr);

  // Number of good entries checked so far; the writer they share ("" before the first).
  int64_t entries() const { return next_seq_; }
  const std::string& writer() const { return writer_; }
  // SHA-256 (hex) of the last good line: the "prev" the next entry must carry.
  const std::string& prev() const { return prev_; }

 private:
  std::optional<AuditVerifyingKey> key_;
  bool check_time_ = false;
  std::string writer_;
  int64_t next_seq_ = 0;
  std::string prev_;
};

// Outcome of verifying a whole log.
struct LogVerification {
  bool ok = false;
  int64_t entries = 0;          // good entries before the first bad one (all of them when ok)
  int64_t first_bad_line = 0;   // 1-based; 0 when ok, or when the certificate itself is at fault
  std::string what;             // what is wrong; "" when ok
};

// Verifies `content` (a whole log file, or the rest of one) starting from `verifier`'s state:
// every line must pass PrivacyLogVerifier::Next, and non-empty content must end with "\n"
// (otherwise the last line is reported as "no newline at the end: the log was cut short or its
// last write was torn"). Line numbers continue from verifier.entries() + 1. Never throws for a
// bad log.
LogVerification VerifyLogContent(std::string_view content, PrivacyLogVerifier verifier);

// Verifies the log file at `path` against the audit certificate `cert_pem` (the writer's
// audit.pem): every entry's structure, hash chain and Ed25519 signature, writer == the
// certificate's CN, and time within the certificate's validity. When `ca_pem` is not empty, the
// certificate must also be an audit-log certificate issued by that CA (checked at the current
// time, or at the certificate's last valid second if it has expired since). Certificate
// problems give ok = false with first_bad_line = 0. Throws Error naming the path if the log
// cannot be read; CryptoError if `ca_pem` is not empty and holds no certificate.
LogVerification VerifyLog(const std::string& path, const std::string& cert_pem,
                          const std::string& ca_pem = "");

// Reads every entry of the log at `path`, checking structure and chain but not signatures
// (use VerifyLog for those). Throws Error naming the path if it cannot be read; FormatError
// "<path>: line L: <what>" at the first bad line, or for a last line without newline.
std::vector<PrivacyLogEntry> ReadLog(const std::string& path);

// ---- writing -------------------------------------------------------------------------------

// Appends signed entries to one privacy log. One writer per file: the file is locked (flock)
// while open; a second writer on the same file, in this or another process, is refused.
// Thread-safe: Append may be called from several threads.
class PrivacyLogWriter {
 public:
  // Opens the log at `path`, creating it (mode 0644; its directory must exist) or appending to
  // it, signing with the Ed25519 key `key_pem` (the party's audit.key) whose certificate is
  // `cert_pem` (audit.pem); the writer's name is the certificate's CN.
  // An existing log is checked first (structure, chain, signatures under this key, writer). A
  // torn last line (no "\n" at the end, or a last line that is not JSON) left by a crash is
  // repaired: cut away, or, when it is a whole valid entry missing only its "\n", completed;
  // then a "recovered" entry (RecoveredEvent) is appended, and recovery() describes it.
  // Throws CryptoError if the key or certificate cannot be parsed, is not Ed25519, or the key
  // does not belong to the certificate; FormatError "<path>: line L: <what>" if the existing
  // log is broken other than by a torn last line (tampered, or written by another key; the
  // file is left as it is); Error naming the path if it cannot be opened, locked (in use), read
  // or written.
  PrivacyLogWriter(std::string path, const std::string& key_pem, const std::string& cert_pem);

  // As above, reading the key and certificate from files (e.g. <party dir>/audit.key and
  // audit.pem). Throws Error naming a file that cannot be read, and as the constructor.
  static std::unique_ptr<PrivacyLogWriter> OpenWithFiles(const std::string& path,
                                                         const std::string& key_path,
                                                         const std::string& cert_path);

  ~PrivacyLogWriter();
  PrivacyLogWriter(const PrivacyLogWriter&) = delete;
  PrivacyLogWriter& operator=(const PrivacyLogWriter&) = delete;

  // Appends one entry with `event` and `data` (a JSON object), signs it, writes it with its
  // "\n" and fsyncs the file; returns the entry once it is on disk. Throws Error if `event` is
  // empty, `data` is not an object or holds a non-finite number (nothing is written); Error
  // naming the path if writing or syncing fails (a partial line is cut away when possible; after
  // a failed fsync the writer refuses further appends, as the file's state is unknown: reopen).
  PrivacyLogEntry Append(const std::string& event, const nlohmann::json& data);

  // Append with the event's data (see the event structs).
  PrivacyLogEntry AppendTrained(const TrainedEvent& e) { return Append(kEventTrained, ToJson(e)); }
  PrivacyLogEntry AppendDeclined(const DeclinedEvent& e) {
    return Append(kEventDeclined, ToJson(e));
  }
  PrivacyLogEntry AppendBudget(const BudgetEvent& e) { return Append(kEventBudget, ToJson(e)); }
  PrivacyLogEntry AppendRound(const RoundEvent& e) { return Append(kEventRound, ToJson(e)); }

  const std::string& path() const { return path_; }
  // The writer's name (the audit certificate's CN).
  const std::string& writer() const { return writer_; }
  // Entries in the log, including those that were there before it was opened.
  int64_t entries() const;
  // The repair made when opening, if any.
  const std::optional<RecoveredEvent>& recovery() const { return recovery_; }

 private:
  void Open();
  void WriteLine(const std::string& line);

  std::string path_;
  AuditSigningKey key_;
  AuditVerifyingKey public_key_;
  std::string writer_;
  int fd_ = -1;
  int64_t size_ = 0;  // bytes in the file
  mutable std::mutex mu_;
  int64_t next_seq_ = 0;
  std::string prev_;
  bool failed_ = false;
  std::optional<RecoveredEvent> recovery_;
};

}  // namespace fedmed

#endif  // FEDMED_COMMON_AUDIT_PRIVACY_LOG_H_
