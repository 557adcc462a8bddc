#include "coordinator/round_report.h"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>

#include "common/util/error.h"
#include "common/util/file_io.h"

namespace fedmed {

namespace fs = std::filesystem;

RoundReport::RoundReport(const std::string& output_dir, const std::string& audit_key_dir,
                         const std::string& federation, int rounds, const std::string& strategy,
                         std::shared_ptr<spdlog::logger> log)
    : output_dir_(output_dir), log_(std::move(log)), metrics_(output_dir) {
  const fs::path key = fs::path(audit_key_dir) / kAuditKeyFile;
  const fs::path cert = fs::path(audit_key_dir) / kAuditCertFile;
  if (!fs::exists(key) || !fs::exists(cert)) {
    log_->warn("no audit key ({}): the coordinator keeps no signed audit log; provision the "
               "federation again with fedmed-pki to get one",
               key.string());
    return;
  }
  audit_ = PrivacyLogWriter::OpenWithFiles((fs::path(output_dir) / kCoordinatorAuditLogFile).string(),
                                           key.string(), cert.string());
  if (audit_->recovery()) {
    log_->warn("audit log {}: repaired a torn last line ({} bytes dropped)", audit_->path(),
               audit_->recovery()->dropped_bytes);
  }
  audit_->Append(kEventStart, {{"role", "coordinator"},
                               {"federation", federation},
                               {"rounds", rounds},
                               {"strategy", strategy}});
  log_->info("audit log: {} (signed by {}, {} entries)", audit_->path(), audit_->writer(),
             audit_->entries());
}

RoundReport::~RoundReport() = default;

RoundEvent RoundReport::RoundEventOf(const RoundRecord& r, const std::vector<std::string>& selected,
                                     const std::map<std::string, LogAnchor>& log_heads) {
  RoundEvent e;
  e.round = r.round;
  e.selected = selected;
  e.contributors = r.contributors;
  e.received = r.update_sha256;
  e.aggregate_sha256 = r.model_sha256;
  if (r.global) {
    if (std::isfinite(r.global->accuracy)) e.metrics["accuracy"] = r.global->accuracy;
    if (std::isfinite(r.global->auc)) e.metrics["auc"] = r.global->auc;
  }
  for (const std::string& site : r.contributors) {
    if (const auto it = log_heads.find(site); it != log_heads.end()) e.log_heads[site] = it->second;
  }
  return e;
}

void RoundReport::EnsureRoundAudited(int round, const std::string& event_json) {
  if (!audit_ || event_json.empty()) return;
  for (const PrivacyLogEntry& entry : ReadLog(audit_->path())) {
    if (entry.event == kEventRound && entry.data.value("round", 0) == round) return;
  }
  const RoundEvent e =
      RoundEventFromJson(nlohmann::json::parse(event_json), "resume.json audit_round");
  if (e.round != round) {
    throw FormatError("resume.json: audit_round is round " + std::to_string(e.round) +
                      ", expected " + std::to_string(round));
  }
  audit_->AppendRound(e);
  log_->warn("audit log: the entry of round {} was lost in a crash; written now from resume.json",
             round);
}

void RoundReport::AppendRound(const RoundRecord& r, int total_rounds, const RoundEvent& event) {
  if (audit_) audit_->AppendRound(event);
  log_->info("round {}/{} done in {:.2f} s (training {:.2f}, transfer {:.3f}, aggregation "
             "{:.3f}, evaluation {:.2f}): global {} | federated {}",
             r.round, total_rounds, r.round_seconds, r.training_seconds, r.transfer_seconds,
             r.aggregation_seconds, r.evaluation_seconds,
             r.global ? FormatMetrics(*r.global) : "n/a",
             r.federated ? FormatMetrics(*r.federated) : "n/a");
  if (!r.privacy.empty()) {
    std::string spent;
    for (const auto& [site, p] : r.privacy) {
      spent += fmt::format("{}{} {:.3f} of {:.3f}{}", spent.empty() ? "" : ", ", site,
                           p.spend.epsilon_total, p.spend.budget_epsilon,
                           p.declined ? " (declined)" : "");
    }
    log_->info("round {}: epsilon spent per site (as reported, at each site's delta): {}",
               r.round, spent);
  }
}

void RoundReport::AppendMetrics(const RoundRecord& record) { metrics_.Append(record); }

void RoundReport::KeepMetricsUpTo(int completed_round) { metrics_.KeepUpTo(completed_round); }

void RoundReport::AppendExcluded(const std::string& site, int round, const std::string& why) {
  if (!audit_) return;
  try {
    audit_->Append(kEventExcluded, {{"site", site}, {"round", round}, {"reason", why}});
  } catch (const std::exception& e) {
    log_->error("audit log: {}", e.what());
  }
}

void RoundReport::AppendAdmin(const std::string& operator_name, const std::string& action,
                              int round, const nlohmann::json& arguments) {
  if (!audit_) return;
  try {
    nlohmann::json data = {{"operator", operator_name}, {"action", action}, {"round", round}};
    for (const auto& [key, value] : arguments.items()) data[key] = value;
    audit_->Append(kEventAdmin, data);
  } catch (const std::exception& e) {
    log_->error("audit log: {}", e.what());
  }
}

void RoundReport::AppendStop(bool finished, int completed_rounds) {
  if (!audit_) return;
  try {
    audit_->Append(kEventStop,
                   {{"reason", finished ? "the federation completed" : "stopped before the last round"},
                    {"completed_rounds", completed_rounds}});
  } catch (const std::exception& e) {
    log_->error("audit log: {}", e.what());
  }
}

void WriteStatusFile(const std::string& output_dir, const FederationStatus& s,
                     spdlog::logger& log) {
  nlohmann::json j;
  j["federation"] = s.federation;
  j["phase"] = s.phase;
  j["round"] = s.round;
  j["attempt"] = s.attempt;
  j["total_rounds"] = s.total_rounds;
  j["port"] = s.port;
  j["registered"] = s.registered;
  j["selected"] = s.selected;
  j["updates"] = s.updates;
  j["evaluations"] = s.evaluations;
  if (s.last_round) {
    j["last_round"] = *s.last_round;
    j["global_accuracy"] = s.global_accuracy;
    j["global_auc"] = s.global_auc;
  }
  try {
    // For displays only: replaced atomically, not synced (an fsync under the round's lock per
    // registration and update would cost more than a lost status is worth).
    ReplaceFile((fs::path(output_dir) / "status.json").string(), j.dump() + "\n", "status.json");
  } catch (const std::exception& e) {
    log.warn("cannot write status.json: {}", e.what());
  }
}

}  // namespace fedmed
