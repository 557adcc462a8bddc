#include "coordinator/status/status_json.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

namespace fedmed {

namespace {

using nlohmann::json;

json Number(double v) { return std::isfinite(v) ? json(v) : json(); }

json RoundJson(const RoundStatus& r) {
  json site_auc = json::object();
  for (const auto& [site, auc] : r.site_auc) site_auc[site] = Number(auc);
  return {{"round", r.round},
          {"attempt", r.attempt},
          {"unix_time", Number(r.unix_time)},
          {"global",
           {{"auc", Number(r.global_auc)},
            {"accuracy", Number(r.global_accuracy)},
            {"loss", Number(r.global_loss)}}},
          {"federated",
           {{"auc", Number(r.federated_auc)},
            {"accuracy", Number(r.federated_accuracy)},
            {"loss", Number(r.federated_loss)}}},
          {"train_loss", Number(r.train_loss)},
          {"seconds",
           {{"round", Number(r.round_seconds)},
            {"training", Number(r.training_seconds)},
            {"aggregation", Number(r.aggregation_seconds)},
            {"evaluation", Number(r.evaluation_seconds)},
            {"checkpoint", Number(r.checkpoint_seconds)}}},
          {"contributors", r.contributors},
          {"site_auc", site_auc}};
}

json RoundsArray(const StatusView& v) {
  json rounds = json::array();
  for (const RoundStatus& r : v.rounds) rounds.push_back(RoundJson(r));
  return rounds;
}

// A Prometheus sample value: Go's float formatting accepts %.17g, NaN and +Inf.
std::string Value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.17g", v);
  return buffer;
}

// A label value with \, " and newline escaped.
std::string Label(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void Family(std::ostringstream& out, const std::string& name, const char* type,
            const char* help) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

constexpr double kBuckets[] = {1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};

// One histogram series of `values` (NaN values skipped) with `labels` ("" or `stage="x"`).
void Histogram(std::ostringstream& out, const std::string& name, const std::string& labels,
               const std::vector<double>& values) {
  const std::string sep = labels.empty() ? "" : ",";
  double sum = 0;
  int64_t count = 0;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    sum += v;
    ++count;
  }
  for (double bound : kBuckets) {
    int64_t n = 0;
    for (double v : values) n += std::isfinite(v) && v <= bound ? 1 : 0;
    out << name << "_bucket{" << labels << sep << "le=\"" << Value(bound) << "\"} " << n << '\n';
  }
  out << name << "_bucket{" << labels << sep << "le=\"+Inf\"} " << count << '\n';
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out << name << "_sum" << braces << ' ' << Value(sum) << '\n';
  out << name << "_count" << braces << ' ' << count << '\n';
}

}  // namespace

std::string StatusJson(const StatusView& v) {
  const FlowSnapshot& f = v.flow;
  json sites = json::array();
  for (const SiteStatus& s : v.sites) {
    json privacy;  // null until reported
    if (!s.privacy_mechanism.empty()) {
      privacy = {{"mechanism", s.privacy_mechanism},
                 {"epsilon_spent", Number(s.epsilon_spent)},
                 {"epsilon_budget", Number(s.epsilon_budget)},
                 {"delta", Number(s.delta)}};
    }
    sites.push_back({{"name", s.name},
                     {"state", s.state},
                     {"last_seen_unix", s.last_seen_unix > 0 ? json(s.last_seen_unix) : json()},
                     {"rounds_contributed", s.rounds_contributed},
                     {"last_update_bytes", s.last_update_bytes},
                     {"last_update_norm",
                      s.last_update_norm ? Number(*s.last_update_norm) : json()},
                     {"privacy", privacy},
                     {"software_version", s.software_version},
                     {"certificate_not_after_unix", s.certificate_not_after_unix > 0
                                                        ? json(s.certificate_not_after_unix)
                                                        : json()}});
  }
  json events = json::array();
  for (const StatusEvent& e : v.events) {
    events.push_back({{"unix_time", e.unix_time},
                      {"site", e.site},
                      {"round", e.round},
                      {"kind", e.kind},
                      {"reason", e.reason},
                      {"detail", e.detail}});
  }
  json refused = json::object();
  for (const auto& [reason, n] : v.updates_refused) refused[reason] = n;
  const json doc = {
      {"federation", f.federation},
      {"phase", f.phase},
      {"round", f.round},
      {"total_rounds", f.total_rounds},
      {"attempt", f.attempt},
      {"stage", v.stage},
      {"secure_aggregation", f.secure},
      {"elapsed_seconds", v.now_unix - v.started_unix},
      {"round_elapsed_seconds", f.round_elapsed_seconds},
      {"phase_seconds_left", f.phase_seconds_left},
      {"eta_seconds", v.eta_seconds >= 0 ? json(v.eta_seconds) : json()},
      {"now_unix", v.now_unix},
      {"sites", sites},
      {"events", events},
      {"rounds", RoundsArray(v)},
      {"counters",
       {{"bytes_received", v.bytes_received},
        {"bytes_sent", v.bytes_sent},
        {"updates_accepted", v.updates_accepted},
        {"updates_refused", refused},
        {"process_rss_bytes", v.rss_bytes}}}};
  return doc.dump();
}

std::string RoundsJson(const StatusView& v) { return json{{"rounds", RoundsArray(v)}}.dump(); }

std::string PrometheusText(const StatusView& v) {
  std::ostringstream out;
  const FlowSnapshot& f = v.flow;
  Family(out, "fedmed_rounds_completed_total", "counter",
         "Rounds completed (aggregated, evaluated and checkpointed).");
  out << "fedmed_rounds_completed_total " << v.rounds.size() << '\n';
  Family(out, "fedmed_round_total_rounds", "gauge", "Rounds the federation is configured to run.");
  out << "fedmed_round_total_rounds " << f.total_rounds << '\n';
  Family(out, "fedmed_current_round", "gauge", "The round in progress (0 before the first).");
  out << "fedmed_current_round " << f.round << '\n';

  std::vector<double> round, training, aggregation, evaluation, checkpoint;
  for (const RoundStatus& r : v.rounds) {
    round.push_back(r.round_seconds);
    training.push_back(r.training_seconds);
    aggregation.push_back(r.aggregation_seconds);
    evaluation.push_back(r.evaluation_seconds);
    checkpoint.push_back(r.checkpoint_seconds);
  }
  Family(out, "fedmed_round_duration_seconds", "histogram",
         "Wall-clock duration of completed rounds.");
  Histogram(out, "fedmed_round_duration_seconds", "", round);
  Family(out, "fedmed_round_stage_duration_seconds", "histogram",
         "Wall-clock duration of each stage of completed rounds.");
  Histogram(out, "fedmed_round_stage_duration_seconds", "stage=\"training\"", training);
  Histogram(out, "fedmed_round_stage_duration_seconds", "stage=\"aggregation\"", aggregation);
  Histogram(out, "fedmed_round_stage_duration_seconds", "stage=\"evaluation\"", evaluation);
  Histogram(out, "fedmed_round_stage_duration_seconds", "stage=\"checkpoint\"", checkpoint);

  std::map<std::string, int> by_state;
  for (const char* state : {"not_registered", "registered", "training", "uploading", "evaluating",
                            "declined", "dead", "excluded"}) {
    by_state[state] = 0;
  }
  for (const SiteStatus& s : v.sites) ++by_state[s.state];
  Family(out, "fedmed_sites", "gauge", "Allowed sites by state.");
  for (const auto& [state, n] : by_state) {
    out << "fedmed_sites{state=\"" << Label(state) << "\"} " << n << '\n';
  }
  Family(out, "fedmed_received_bytes_total", "counter", "Bytes of updates accepted from sites.");
  out << "fedmed_received_bytes_total " << v.bytes_received << '\n';
  Family(out, "fedmed_sent_bytes_total", "counter", "Bytes of global models sent to sites.");
  out << "fedmed_sent_bytes_total " << v.bytes_sent << '\n';
  Family(out, "fedmed_updates_accepted_total", "counter", "Updates accepted from sites.");
  out << "fedmed_updates_accepted_total " << v.updates_accepted << '\n';
  Family(out, "fedmed_updates_refused_total", "counter", "Updates refused, by reason.");
  for (const char* reason : {"invalid_update", "norm_bound", "unexpected", "unknown_session",
                             "limit", "upload_failed", "other"}) {
    const auto it = v.updates_refused.find(reason);
    out << "fedmed_updates_refused_total{reason=\"" << reason << "\"} "
        << (it == v.updates_refused.end() ? 0 : it->second) << '\n';
  }
  Family(out, "fedmed_site_epsilon_spent", "gauge",
         "Privacy budget spent by each site running DP (epsilon at its delta), as last reported.");
  for (const SiteStatus& s : v.sites) {
    if (s.privacy_mechanism.empty() || s.privacy_mechanism == "none") continue;
    out << "fedmed_site_epsilon_spent{site=\"" << Label(s.name) << "\"} "
        << Value(s.epsilon_spent) << '\n';
  }
  Family(out, "fedmed_site_epsilon_budget", "gauge",
         "Each site's privacy budget (epsilon), as last reported.");
  for (const SiteStatus& s : v.sites) {
    if (s.privacy_mechanism.empty() || s.privacy_mechanism == "none") continue;
    out << "fedmed_site_epsilon_budget{site=\"" << Label(s.name) << "\"} "
        << Value(s.epsilon_budget) << '\n';
  }
  if (!v.rounds.empty()) {
    Family(out, "fedmed_global_auc", "gauge", "ROC AUC of the latest global model (held-out set).");
    out << "fedmed_global_auc " << Value(v.rounds.back().global_auc) << '\n';
    Family(out, "fedmed_global_accuracy", "gauge",
           "Accuracy of the latest global model (held-out set).");
    out << "fedmed_global_accuracy " << Value(v.rounds.back().global_accuracy) << '\n';
  }
  Family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  out << "process_resident_memory_bytes " << v.rss_bytes << '\n';
  return out.str();
}

}  // namespace fedmed
