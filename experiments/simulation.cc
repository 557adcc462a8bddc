#include "experiments/simulation.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "common/config/site_config.h"
#include "common/config/toml_util.h"
#include "common/util/data_path.h"
#include "common/util/error.h"
#include "common/util/process.h"
#include "tools/pki/provision.h"

namespace fedmed {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::atomic<int> g_signal{0};

void OnSignal(int signal) { g_signal = signal; }

std::string Timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%d-%H%M%S", &tm);
  return buf;
}

std::optional<nlohmann::json> ReadJson(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // being replaced right now; read it next time
  }
}

std::vector<nlohmann::json> ReadJsonLines(const fs::path& path) {
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

std::string Fixed(const nlohmann::json& v, int precision = 4) {
  if (!v.is_number()) return "-";
  std::ostringstream out;
  out << std::fixed << std::setprecision(precision) << v.get<double>();
  return out.str();
}

std::string Tail(const fs::path& path, std::size_t lines) {
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

void PrintTable(const std::vector<nlohmann::json>& rows, std::ostream& out) {
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
        << Fixed(r["seconds"]["round"], 2) << " | " << std::setw(10)
        << Fixed(metric(g, "accuracy")) << " | " << std::setw(10) << Fixed(metric(g, "auc"))
        << " | " << std::setw(8) << Fixed(metric(g, "balanced_accuracy")) << " | "
        << std::setw(6) << Fixed(metric(g, "f1")) << " | " << std::setw(6)
        << Fixed(metric(g, "sensitivity")) << " | " << std::setw(6)
        << Fixed(metric(g, "specificity")) << " | " << std::setw(13)
        << Fixed(metric(f, "accuracy")) << " | " << std::setw(12) << Fixed(metric(f, "auc"))
        << "\n";
  }
}

// Each site's privacy spend as the coordinator last heard it (the sites' own ledgers and logs
// are authoritative).
void PrintPrivacy(const std::vector<nlohmann::json>& rows, std::ostream& out) {
  if (rows.empty()) return;
  const nlohmann::json privacy = rows.back().value("privacy", nlohmann::json::object());
  if (!privacy.is_object() || privacy.empty()) return;
  out << "\nprivacy spent (epsilon at delta, each site's own accountant):";
  for (const auto& [site, p] : privacy.items()) {
    out << "\n  " << site << ": " << p.value("mechanism", std::string()) << ", epsilon "
        << Fixed(p.value("epsilon_total", nlohmann::json())) << " of budget "
        << Fixed(p.value("budget_epsilon", nlohmann::json()), 2) << " at delta "
        << p.value("delta", 0.0) << (p.value("declined", false) ? " (declined its last round)" : "");
  }
  out << std::endl;
}

}  // namespace

SimulationConfig LoadSimulationConfig(const std::string& path) {
  TomlFile file(path);
  SimulationConfig c;
  c.config_path = path;
  file.Read("simulation", "name", &c.name);
  file.Read("simulation", "sites", &c.sites);
  file.Read("simulation", "output_dir", &c.output_root);
  file.Read("simulation", "site_threads", &c.site_threads);
  file.Read("data", "path", &c.data_path, TomlFile::Presence::kRequired);
  file.Read("data", "partition", &c.partition);
  file.Read("data", "alpha", &c.alpha);
  file.Read("data", "seed", &c.data_seed);
  c.coordinator.config_path = path;
  ReadFederationSections(file, &c.coordinator);
  ReadSitePrivacySection(file, &c.privacy);
  file.Read("privacy", "budget_epsilon_per_site", &c.budget_epsilon_per_site);
  file.Finish();
  ValidateSitePrivacyConfig(path, c.privacy);
  if (!c.budget_epsilon_per_site.empty()) {
    if (static_cast<int>(c.budget_epsilon_per_site.size()) != c.sites) {
      ThrowBadSetting(path, "privacy", "budget_epsilon_per_site",
                      "one budget per site (" + std::to_string(c.sites) + " numbers)",
                      std::to_string(c.budget_epsilon_per_site.size()) + " numbers");
    }
    for (int k = 0; k < c.sites; ++k) {
      SitePrivacyConfig site = c.privacy;
      site.budget_epsilon = c.budget_epsilon_per_site[static_cast<size_t>(k)];
      ValidateSitePrivacyConfig(path, site);
    }
  }
  if (c.sites < 1) ThrowBadSetting(path, "simulation", "sites", "an integer >= 1", std::to_string(c.sites));
  if (c.site_threads < 1) {
    ThrowBadSetting(path, "simulation", "site_threads", "an integer >= 1",
                    std::to_string(c.site_threads));
  }
  if (c.partition != "iid" && c.partition != "dirichlet" && c.partition != "quantity") {
    ThrowBadSetting(path, "data", "partition", "\"iid\", \"dirichlet\" or \"quantity\"",
                    "\"" + c.partition + "\"");
  }
  if (!(c.alpha > 0)) ThrowBadSetting(path, "data", "alpha", "a number > 0", TomlDouble(c.alpha));
  if (c.coordinator.eval_data.empty()) c.coordinator.eval_data = c.data_path;
  return c;
}

SimulationResult RunSimulation(const SimulationConfig& config, const std::string& data_root,
                               const std::string& bin_dir, std::ostream& progress) {
  const auto started = Clock::now();
  SimulationResult result;
  const fs::path run_dir =
      fs::absolute(fs::path(config.output_root) / (config.name + "-" + Timestamp()));
  fs::create_directories(run_dir);
  result.run_dir = run_dir.string();
  // Resolve the data once, so every process reads the same file.
  const std::string data_path = ResolveDataPath(config.data_path, data_root);
  const std::string eval_path = ResolveDataPath(config.coordinator.eval_data, data_root);

  // Certificates and configs, exactly as fedmed-pki would write them.
  ProvisionOptions provision;
  provision.out_dir = (run_dir / "pki").string();
  provision.federation = config.name;
  for (int k = 1; k <= config.sites; ++k) provision.site_names.push_back("site-" + std::to_string(k));
  provision.coordinator_dns = {"localhost"};
  provision.coordinator_ips = {"127.0.0.1"};
  provision.coordinator_address = "127.0.0.1:0";
  provision.validity_days = 2;
  provision.coordinator_template = config.coordinator;
  provision.coordinator_template.federation = config.name;
  provision.coordinator_template.listen_address = "127.0.0.1:0";
  provision.coordinator_template.output_dir = (run_dir / "coordinator").string();
  provision.coordinator_template.eval_data = eval_path;
  // Every simulated site takes part from round 1; the quorum stays the config's min_sites.
  provision.coordinator_template.min_available_sites = config.sites;
  provision.coordinator_template.registration_timeout_seconds = 120;
  provision.site_template.data.path = data_path;
  provision.site_template.data.partition = config.partition;
  provision.site_template.data.num_shards = config.sites;
  provision.site_template.data.alpha = config.alpha;
  provision.site_template.data.seed = config.data_seed;
  provision.site_template.threads = config.site_threads;
  provision.site_template.give_up_after_seconds = 120;
  provision.site_template.privacy = config.privacy;
  const ProvisionResult provisioned = ProvisionFederation(provision);

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

  const fs::path coord_dir = run_dir / "coordinator";
  const fs::path coord_log = run_dir / "logs" / "coordinator.out";
  auto coordinator = std::make_unique<ChildProcess>(
      std::vector<std::string>{bin_dir + "/fedmed-coordinator", "--config",
                               provisioned.coordinator_config},
      coord_log.string());
  progress << "coordinator started (pid " << coordinator->pid() << "), waiting for it to listen"
           << std::endl;

  // The coordinator binds port 0; status.json tells which port it got.
  int port = 0;
  const auto listen_deadline = Clock::now() + std::chrono::seconds(60);
  while (port == 0) {
    if (const auto status = ReadJson(coord_dir / "status.json")) port = status->value("port", 0);
    if (port != 0) break;
    if (coordinator->Poll().has_value() || Clock::now() > listen_deadline || g_signal != 0) {
      throw Error("the coordinator did not start; the end of its log " + coord_log.string() +
                  ":\n" + Tail(coord_log, 15));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  std::vector<std::unique_ptr<ChildProcess>> sites;
  for (int k = 1; k <= config.sites; ++k) {
    const std::string name = "site-" + std::to_string(k);
    const std::string site_config_path = provisioned.site_configs.at(name);
    SiteConfig site = LoadSiteConfig(site_config_path);
    site.coordinator_address = "127.0.0.1:" + std::to_string(port);
    site.data.shard = k;
    site.output_dir = (run_dir / name).string();
    if (!config.budget_epsilon_per_site.empty()) {
      site.privacy.budget_epsilon = config.budget_epsilon_per_site[static_cast<size_t>(k - 1)];
    }
    std::ofstream(site_config_path) << RenderSiteConfig(site);
    sites.push_back(std::make_unique<ChildProcess>(
        std::vector<std::string>{bin_dir + "/fedmed-site", "--config", site_config_path},
        (run_dir / "logs" / (name + ".out")).string()));
  }
  progress << config.sites << " sites started; federation '" << config.name << "' on 127.0.0.1:"
           << port << " over mutual TLS, " << config.coordinator.rounds << " rounds" << std::endl;

  // Follow the coordinator's progress until it exits.
  std::string last_line;
  std::size_t rounds_shown = 0;
  std::optional<int> coord_status;
  bool stopped = false;
  while (!(coord_status = coordinator->Poll()).has_value()) {
    if (g_signal != 0 && !stopped) {
      progress << "interrupted: stopping the federation" << std::endl;
      coordinator->Signal(SIGTERM);
      for (auto& s : sites) s->Signal(SIGTERM);
      stopped = true;
    }
    if (const auto status = ReadJson(coord_dir / "status.json")) {
      std::ostringstream line;
      line << "  round " << status->value("round", 0) << "/" << config.coordinator.rounds << " "
           << status->value("phase", std::string()) << ": " << status->value("updates", 0) << "/"
           << status->value("selected", 0) << " sites done";
      if (line.str() != last_line && status->value("round", 0) > 0) {
        progress << line.str() << std::endl;
        last_line = line.str();
      }
    }
    const std::vector<nlohmann::json> rows = ReadJsonLines(coord_dir / "metrics.jsonl");
    for (; rounds_shown < rows.size(); ++rounds_shown) {
      const nlohmann::json& r = rows[rounds_shown];
      const nlohmann::json g = r.value("global", nlohmann::json());
      progress << "round " << r["round"].get<int>() << "/" << config.coordinator.rounds
               << " done in " << Fixed(r["seconds"]["round"], 2) << " s: global ACC "
               << (g.is_object() ? Fixed(g.value("accuracy", nlohmann::json())) : "-") << ", AUC "
               << (g.is_object() ? Fixed(g.value("auc", nlohmann::json())) : "-") << std::endl;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  result.exit_status = *coord_status;
  for (std::size_t k = 0; k < sites.size(); ++k) {
    std::optional<int> s = sites[k]->Wait(20.0);
    if (!s.has_value()) s = sites[k]->Stop();
    if (*s != 0) {
      progress << "site-" << (k + 1) << " exited with status " << *s << "; see "
               << (run_dir / "logs" / ("site-" + std::to_string(k + 1) + ".out")).string()
               << std::endl;
      if (result.exit_status == 0) result.exit_status = *s;
    }
  }
  if (result.exit_status != 0 && !stopped) {
    progress << "the coordinator exited with status " << *coord_status << "; the end of its log:\n"
             << Tail(coord_log, 15);
  }
  const std::vector<nlohmann::json> rows = ReadJsonLines(coord_dir / "metrics.jsonl");
  PrintTable(rows, progress);
  PrintPrivacy(rows, progress);
  result.wall_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  progress << "\npeak RSS (MiB): coordinator " << coordinator->max_rss_kib() / 1024;
  for (std::size_t k = 0; k < sites.size(); ++k) {
    progress << ", site-" << (k + 1) << " " << sites[k]->max_rss_kib() / 1024;
  }
  progress << std::endl;
  progress << "wall-clock " << std::fixed << std::setprecision(1) << result.wall_seconds
           << " s; everything (configs, certificates, logs, metrics.csv/jsonl, checkpoints) is in\n  "
           << result.run_dir << std::endl;
  return result;
}

}  // namespace fedmed
