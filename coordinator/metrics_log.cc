#include "coordinator/metrics_log.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/metrics/metrics_json.h"
#include "common/util/error.h"
#include "common/util/file_io.h"

namespace fedmed {

namespace {

const char* const kMetricNames[] = {"loss", "accuracy", "balanced_accuracy", "auc",
                                    "f1",   "sensitivity", "specificity"};

std::vector<double> MetricValues(const ClassificationMetrics& m) {
  return {m.loss, m.accuracy, m.balanced_accuracy, m.auc, m.f1, m.sensitivity, m.specificity};
}

std::string CsvNumber(double v) {
  if (!std::isfinite(v)) return "";
  std::ostringstream out;
  out.precision(6);
  out << v;
  return out.str();
}

// The rows of `path` (none when it does not exist), each with the round `round_of` reads from it.
std::vector<std::pair<int, std::string>> ReadRows(const std::string& path, bool skip_header,
                                                  int (*round_of)(const std::string&)) {
  std::vector<std::pair<int, std::string>> rows;
  if (!std::filesystem::exists(path)) return rows;
  std::istringstream in(ReadFile(path, "metrics file"));
  std::string line;
  for (bool first = true; std::getline(in, line); first = false) {
    if (line.empty() || (first && skip_header)) continue;
    rows.emplace_back(round_of(line), line);
  }
  return rows;
}

int CsvRound(const std::string& line) { return std::atoi(line.c_str()); }

int JsonRound(const std::string& line) {
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.contains("round") && j["round"].is_number_integer()
             ? j["round"].get<int>()
             : 0;
}

std::string Join(const std::vector<std::pair<int, std::string>>& rows, std::string text) {
  for (const auto& [round, row] : rows) text += row + "\n";
  return text;
}

}  // namespace

MetricsLog::MetricsLog(const std::string& dir) : dir_(dir) {
  std::filesystem::create_directories(dir);
  csv_rows_ = ReadRows(dir + "/metrics.csv", /*skip_header=*/true, CsvRound);
  json_rows_ = ReadRows(dir + "/metrics.jsonl", /*skip_header=*/false, JsonRound);
}

void MetricsLog::Write() const {
  WriteFileAtomically(dir_ + "/metrics.csv", Join(csv_rows_, CsvHeader() + "\n"), "metrics.csv");
  WriteFileAtomically(dir_ + "/metrics.jsonl", Join(json_rows_, ""), "metrics.jsonl");
}

void MetricsLog::KeepUpTo(int round) {
  const auto later = [round](const std::pair<int, std::string>& row) { return row.first > round; };
  const size_t before = csv_rows_.size() + json_rows_.size();
  csv_rows_.erase(std::remove_if(csv_rows_.begin(), csv_rows_.end(), later), csv_rows_.end());
  json_rows_.erase(std::remove_if(json_rows_.begin(), json_rows_.end(), later), json_rows_.end());
  if (csv_rows_.size() + json_rows_.size() != before) Write();
}

std::string MetricsLog::CsvHeader() {
  std::string h =
      "round,attempt,round_seconds,training_wait_seconds,transfer_seconds,aggregation_seconds,"
      "evaluation_seconds,checkpoint_seconds,sites,num_samples,train_loss";
  for (const char* prefix : {"global_", "federated_"}) {
    for (const char* name : kMetricNames) h += std::string(",") + prefix + name;
  }
  return h + ",declined,site_epsilon";
}

std::string MetricsLog::ToCsv(const RoundRecord& r) {
  std::ostringstream out;
  std::string sites;
  for (const std::string& s : r.contributors) sites += (sites.empty() ? "" : ";") + s;
  out << r.round << ',' << r.attempt << ',' << CsvNumber(r.round_seconds) << ','
      << CsvNumber(r.training_wait_seconds) << ',' << CsvNumber(r.transfer_seconds) << ','
      << CsvNumber(r.aggregation_seconds) << ',' << CsvNumber(r.evaluation_seconds) << ','
      << CsvNumber(r.checkpoint_seconds) << ',' << sites << ',' << r.num_samples << ','
      << CsvNumber(r.mean_train_loss);
  for (const std::optional<ClassificationMetrics>* m : {&r.global, &r.federated}) {
    for (std::size_t i = 0; i < std::size(kMetricNames); ++i) {
      out << ',' << (m->has_value() ? CsvNumber(MetricValues(**m)[i]) : "");
    }
  }
  std::string declined, epsilon;
  for (const std::string& s : r.declined) declined += (declined.empty() ? "" : ";") + s;
  for (const auto& [site, p] : r.privacy) {
    epsilon += (epsilon.empty() ? "" : ";") + site + "=" + CsvNumber(p.spend.epsilon_total);
  }
  out << ',' << declined << ',' << epsilon;
  return out.str();
}

std::string MetricsLog::ToJson(const RoundRecord& r) {
  nlohmann::json j;
  j["round"] = r.round;
  j["attempt"] = r.attempt;
  j["strategy"] = r.strategy;
  j["unix_time"] = r.unix_time;
  j["seconds"] = {{"round", r.round_seconds},
                  {"training", r.training_seconds},
                  {"training_wait", r.training_wait_seconds},
                  {"transfer", r.transfer_seconds},
                  {"aggregation", r.aggregation_seconds},
                  {"evaluation", r.evaluation_seconds},
                  {"checkpoint", r.checkpoint_seconds},
                  {"site_training_mean", r.mean_site_train_seconds},
                  {"site_training_slowest", r.slowest_site_train_seconds},
                  {"transfer_by_site", r.site_transfer_seconds},
                  {"evaluation_overlapped", r.evaluation_overlapped},
                  {"critical_path",
                   {{"seconds", r.critical_path.seconds},
                    {"site", r.critical_path.site},
                    {"training", r.critical_path.training},
                    {"queued", r.critical_path.queued},
                    {"transfers", r.critical_path.transfers},
                    {"waiting", r.critical_path.waiting},
                    {"coordinator", r.critical_path.coordinator},
                    {"evaluation", r.critical_path.evaluation},
                    {"overhead", r.critical_path.overhead}}}};
  j["contributors"] = r.contributors;
  j["num_samples"] = r.num_samples;
  j["train_loss"] = JsonNumberOrNull(r.mean_train_loss);
  j["model_sha256"] = r.model_sha256;
  j["update_sha256"] = r.update_sha256;
  if (!r.update_norm.empty()) {
    j["update_norm"] = r.update_norm;
    j["base_model_norm"] = r.base_model_norm;
  }
  j["global"] = r.global ? MetricsToJson(*r.global) : nlohmann::json();
  j["federated"] = r.federated ? MetricsToJson(*r.federated) : nlohmann::json();
  nlohmann::json sites = nlohmann::json::object();
  for (const auto& [name, m] : r.sites) sites[name] = MetricsToJson(m);
  j["sites"] = sites;
  j["declined"] = r.declined;
  j["bytes"] = {{"down", r.bytes_down}, {"up", r.bytes_up}};
  j["update_encoding"] = r.update_encoding;
  j["resumed_uploads"] = r.resumed_uploads;
  if (r.secure) {
    j["secure_aggregation"] = {{"excluded", r.secagg_excluded}, {"dropped", r.secagg_dropped}};
  }
  nlohmann::json privacy = nlohmann::json::object();
  for (const auto& [name, report] : r.privacy) {
    const PrivacySpend& p = report.spend;
    privacy[name] = {{"mechanism", PrivacyModeName(p.mechanism.mode)},
                     {"epsilon_total", JsonNumberOrNull(p.epsilon_total)},
                     {"epsilon_round", JsonNumberOrNull(p.epsilon_round)},
                     {"delta", p.delta},
                     {"budget_epsilon", JsonNumberOrNull(p.budget_epsilon)},
                     {"declined", report.declined}};
  }
  j["privacy"] = privacy;
  return j.dump();
}

void MetricsLog::Append(const RoundRecord& record) {
  csv_rows_.emplace_back(record.round, ToCsv(record));
  json_rows_.emplace_back(record.round, ToJson(record));
  try {
    Write();
  } catch (...) {
    csv_rows_.pop_back();
    json_rows_.pop_back();
    throw;
  }
}

}  // namespace fedmed
