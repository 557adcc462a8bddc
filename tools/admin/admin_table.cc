#include "tools/admin/admin_table.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <sstream>
#include <vector>

#include "common/util/error.h"

namespace fedmed {

namespace {

using json = nlohmann::json;

std::string Fixed(const json& v, int digits) {
  if (!v.is_number()) return "-";
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", digits, v.get<double>());
  return text;
}

std::string Duration(double seconds) {
  if (seconds < 0) return "-";
  const auto s = static_cast<long long>(seconds + 0.5);
  char text[64];
  if (s >= 3600) {
    std::snprintf(text, sizeof(text), "%lldh%02lldm", s / 3600, (s / 60) % 60);
  } else if (s >= 60) {
    std::snprintf(text, sizeof(text), "%lldm%02llds", s / 60, s % 60);
  } else {
    std::snprintf(text, sizeof(text), "%llds", s);
  }
  return text;
}

std::string Date(const json& unix_seconds) {
  if (!unix_seconds.is_number()) return "-";
  const auto t = static_cast<std::time_t>(unix_seconds.get<double>());
  std::tm tm{};
  char text[32];
  if (gmtime_r(&t, &tm) == nullptr || std::strftime(text, sizeof(text), "%Y-%m-%d", &tm) == 0) {
    return "-";
  }
  return text;
}

std::string Bytes(int64_t n) {
  if (n <= 0) return "-";
  char text[64];
  if (n >= 1000000) {
    std::snprintf(text, sizeof(text), "%.1f MB", static_cast<double>(n) / 1e6);
  } else {
    std::snprintf(text, sizeof(text), "%.1f kB", static_cast<double>(n) / 1e3);
  }
  return text;
}

// Columns padded to their widest cell, two spaces apart.
std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string Privacy(const json& p) {
  if (!p.is_object()) return "-";
  const std::string mechanism = p.value("mechanism", "");
  if (mechanism == "none") return "none";
  const double budget = p.value("epsilon_budget", 0.0);
  return Fixed(p.at("epsilon_spent"), 2) + (budget > 0 ? " / " + Fixed(budget, 2) : "") + " (" +
         mechanism + ")";
}

}  // namespace

std::string FormatStatusTable(const std::string& status_json, int max_events) {
  json s;
  try {
    s = json::parse(status_json);
    std::ostringstream out;
    const double now = s.at("now_unix").get<double>();
    std::string round = "round " + std::to_string(s.at("round").get<int>()) + " of " +
                        std::to_string(s.at("total_rounds").get<int>());
    if (s.at("attempt").get<int>() > 1) round += ", attempt " + std::to_string(s.at("attempt").get<int>());
    std::vector<std::vector<std::string>> head = {
        {"federation", s.at("federation").get<std::string>()},
        {"phase", s.at("phase").get<std::string>() + " (" + round + ")"},
        {"stage", s.value("stage", "")},
        {"elapsed", Duration(s.at("elapsed_seconds").get<double>()) + " since start; round " +
                        Duration(s.value("round_elapsed_seconds", 0.0)) + "; time left " +
                        (s.at("eta_seconds").is_number()
                             ? "about " + Duration(s.at("eta_seconds").get<double>())
                             : std::string("no estimate yet"))}};
    const json& rounds = s.at("rounds");
    if (!rounds.empty()) {
      const json& last = rounds.back();
      head.push_back({"latest", "round " + std::to_string(last.at("round").get<int>()) +
                                    ": held-out AUC " + Fixed(last.at("global").at("auc"), 4) +
                                    ", ACC " + Fixed(last.at("global").at("accuracy"), 4) +
                                    ", loss " + Fixed(last.at("global").at("loss"), 4) +
                                    "; federated AUC " +
                                    Fixed(last.at("federated").at("auc"), 4)});
    }
    out << Table(head) << "\n";
    std::vector<std::vector<std::string>> sites = {{"site", "state", "last seen", "rounds",
                                                    "last update", "norm", "epsilon spent/budget",
                                                    "version", "certificate expires"}};
    for (const json& site : s.at("sites")) {
      const json& seen = site.at("last_seen_unix");
      sites.push_back(
          {site.at("name").get<std::string>(), site.at("state").get<std::string>(),
           seen.is_number() ? Duration(now - seen.get<double>()) + " ago" : "never",
           std::to_string(site.at("rounds_contributed").get<int>()),
           Bytes(site.at("last_update_bytes").get<int64_t>()), Fixed(site.at("last_update_norm"), 4),
           Privacy(site.at("privacy")),
           site.value("software_version", "").empty() ? "-" : site.value("software_version", ""),
           Date(site.value("certificate_not_after_unix", json()))});
    }
    out << Table(sites);
    const json& events = s.at("events");
    if (!events.empty() && max_events > 0) {
      out << "\nlatest refusals and dropouts:\n";
      const size_t first =
          events.size() > static_cast<size_t>(max_events) ? events.size() - max_events : 0;
      std::vector<std::vector<std::string>> rows;
      for (size_t i = first; i < events.size(); ++i) {
        const json& e = events[i];
        rows.push_back({"  " + Duration(now - e.at("unix_time").get<double>()) + " ago",
                        e.at("site").get<std::string>(),
                        "round " + std::to_string(e.at("round").get<int>()),
                        e.at("kind").get<std::string>(), e.at("detail").get<std::string>()});
      }
      out << Table(rows);
    }
    return out.str();
  } catch (const json::exception& e) {
    throw FormatError(std::string("the coordinator's status is not the expected JSON: ") +
                      e.what());
  }
}

}  // namespace fedmed
