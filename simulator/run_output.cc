#include "simulator/run_output.h"

#include <fstream>
#include <iomanip>
#include <sstream>

namespace fedmed {

namespace fs = std::filesystem;

std::vector<nlohmann::json> ReadJsonLines(const std::string& path) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      rows.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::exception&) {
      break;  // a line still being written
    }
  }
  return rows;
}

std::string FormatNumber(const nlohmann::json& v, int precision) {
  if (!v.is_number()) return "-";
  std::ostringstream out;
  out << std::fixed << std::setprecision(precision) << v.get<double>();
  return out.str();
}

std::optional<nlohmann::json> ReadJsonFile(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // being replaced right now; read it next time
  }
}

std::string LogTail(const fs::path& path, std::size_t lines) {
  std::ifstream in(path);
  std::vector<std::string> all;
  std::string line;
  while (std::getline(in, line)) all.push_back(line);
  std::string out;
  for (std::size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
    out += "    " + all[i] + "\n";
  }
  return out;
}

void PrintRoundTable(const std::vector<nlohmann::json>& rows, std::ostream& out) {
  out << "\n round | seconds | global ACC | global AUC | bal. ACC |   F1   | sens.  | spec.  "
         "| federated ACC | federated AUC\n"
      << "-------+---------+------------+------------+----------+--------+--------+--------"
         "+---------------+--------------\n";
  for (const nlohmann::json& r : rows) {
    const nlohmann::json g = r.value("global", nlohmann::json());
    const nlohmann::json f = r.value("federated", nlohmann::json());
    auto metric = [](const nlohmann::json& m, const char* key) {
      return m.is_object() ? m.value(key, nlohmann::json()) : nlohmann::json();
    };
    out << std::setw(6) << r["round"].get<int>() << " | " << std::setw(7)
        << FormatNumber(r["seconds"]["round"], 2) << " | " << std::setw(10)
        << FormatNumber(metric(g, "accuracy")) << " | " << std::setw(10)
        << FormatNumber(metric(g, "auc")) << " | " << std::setw(8)
        << FormatNumber(metric(g, "balanced_accuracy")) << " | " << std::setw(6)
        << FormatNumber(metric(g, "f1")) << " | " << std::setw(6)
        << FormatNumber(metric(g, "sensitivity")) << " | " << std::setw(6)
        << FormatNumber(metric(g, "specificity")) << " | " << std::setw(13)
        << FormatNumber(metric(f, "accuracy")) << " | " << std::setw(12)
        << FormatNumber(metric(f, "auc")) << "\n";
  }
}

void PrintPrivacySpent(const std::vector<nlohmann::json>& rows, std::ostream& out) {
  if (rows.empty()) return;
  const nlohmann::json privacy = rows.back().value("privacy", nlohmann::json::object());
  if (!privacy.is_object() || privacy.empty()) return;
  bool any = false;  // a line per site saying "none" says nothing
  for (const auto& [site, p] : privacy.items()) any = any || p.value("mechanism", "none") != "none";
  if (!any) return;
  out << "\nprivacy spent (epsilon at delta, each site's own accountant):";
  for (const auto& [site, p] : privacy.items()) {
    out << "\n  " << site << ": " << p.value("mechanism", std::string()) << ", epsilon "
        << FormatNumber(p.value("epsilon_total", nlohmann::json())) << " of budget "
        << FormatNumber(p.value("budget_epsilon", nlohmann::json()), 2) << " at delta "
        << p.value("delta", 0.0) << (p.value("declined", false) ? " (declined its last round)" : "");
  }
  out << std::endl;
}

nlohmann::json SumCriticalPaths(const std::vector<nlohmann::json>& rows) {
  static const char* const kParts[] = {"seconds",     "training",   "queued",  "transfers",
                                       "waiting",     "coordinator", "evaluation", "overhead"};
  nlohmann::json sums = nlohmann::json::object();
  for (const char* part : kParts) sums[part] = 0.0;
  for (const nlohmann::json& r : rows) {
    const nlohmann::json seconds = r.value("seconds", nlohmann::json::object());
    const nlohmann::json path = seconds.value("critical_path", nlohmann::json::object());
    for (const char* part : kParts) {
      const nlohmann::json v = path.value(part, nlohmann::json());
      if (v.is_number()) sums[part] = sums[part].get<double>() + v.get<double>();
    }
  }
  return sums;
}

void PrintTimeBreakdown(const nlohmann::json& sums, double wall_seconds, std::ostream& out) {
  const double rounds = sums.value("seconds", 0.0);
  if (rounds <= 0) return;
  auto part = [&](const char* name) {
    const double v = sums.value(name, 0.0);
    std::ostringstream s;
    s << name << " " << std::fixed << std::setprecision(2) << v << " s ("
      << std::setprecision(1) << 100.0 * v / rounds << " %)";
    return s.str();
  };
  out << "\nwhere the rounds' time went (critical paths, metrics.jsonl): " << std::fixed
      << std::setprecision(2) << rounds << " s = " << part("training") << ", "
      << part("queued") << ", " << part("transfers") << ", " << part("waiting") << ", "
      << part("coordinator") << ", " << part("evaluation") << ", " << part("overhead")
      << "; before the first round and after the last: " << wall_seconds - rounds << " s of "
      << wall_seconds << " s" << std::endl;
}

}  // namespace fedmed
