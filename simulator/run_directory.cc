#include "simulator/run_directory.h"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <string>
#include <thread>

#include "common/util/data_path.h"
#include "common/util/file_io.h"

namespace fedmed {

namespace fs = std::filesystem;

std::string LocalTimestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%d-%H%M%S", &tm);
  return buf;
}

PreparedRun PrepareRun(const SimulationConfig& config, const std::string& data_root) {
  PreparedRun p;
  p.run_dir =
      fs::absolute(config.run_dir.empty()
                       ? fs::path(config.output_root) / (config.name + "-" + LocalTimestamp())
                       : fs::path(config.run_dir));
  fs::create_directories(p.run_dir);
  // Resolve the data once, so every party reads the same file.
  for (int k = 1; k <= config.sites; ++k) {
    SiteDataConfig data = SiteDataFor(config, k);
    data.path = ResolveDataPath(data.path, data_root);
    p.site_data.push_back(data);
  }
  if (!config.coordinator.eval_data.empty()) {
    p.eval_path = ResolveDataPath(config.coordinator.eval_data, data_root);
  }

  // Certificates and configs, exactly as fedmed-pki would write them.
  ProvisionOptions provision;
  provision.out_dir = (p.run_dir / "pki").string();
  provision.federation = config.name;
  for (int k = 1; k <= config.sites; ++k) provision.site_names.push_back("site-" + std::to_string(k));
  provision.coordinator_dns = {"localhost"};
  provision.coordinator_ips = {"127.0.0.1"};
  provision.coordinator_address = "127.0.0.1:0";
  provision.validity_days = 2;
  provision.coordinator_template = config.coordinator;
  provision.coordinator_template.federation = config.name;
  provision.coordinator_template.listen_address = "127.0.0.1:0";
  provision.coordinator_template.output_dir = (p.run_dir / "coordinator").string();
  provision.coordinator_template.eval_data = p.eval_path;
  // Every simulated site takes part from round 1; the quorum stays the config's min_sites.
  provision.coordinator_template.min_available_sites = config.sites;
  provision.coordinator_template.registration_timeout_seconds = 120;
  provision.site_template.data = p.site_data.front();
  provision.site_template.threads = config.mode == "threads" ? 1 : config.site_threads;
  provision.site_template.give_up_after_seconds = 120;
  provision.site_template.privacy = config.privacy;
  provision.site_template.model.torchscript_path = config.coordinator.torchscript_path;
  if (config.status) provision.coordinator_template.status.listen = "127.0.0.1:0";
  p.provisioned = ProvisionFederation(provision);
  return p;
}

std::string StatusPageUrl(const PreparedRun& p, double timeout_seconds) {
  const fs::path url_file = p.run_dir / "coordinator" / "status_url.txt";
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration<double>(timeout_seconds);
  while (!fs::exists(url_file) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!fs::exists(url_file)) return "";
  std::string url = ReadFile(url_file.string(), "status_url.txt");
  std::string token = ReadFile(p.provisioned.status_token_file, "status token");
  const auto trim = [](std::string* s) {
    while (!s->empty() && (s->back() == '\n' || s->back() == ' ')) s->pop_back();
  };
  trim(&url);
  trim(&token);
  return url + "?token=" + token;
}

SiteConfig SiteConfigFor(const SimulationConfig& config, const PreparedRun& p, int k, int port) {
  const std::string name = "site-" + std::to_string(k);
  const std::string path = p.provisioned.site_configs.at(name);
  SiteConfig site = LoadSiteConfig(path);
  site.coordinator_address = "127.0.0.1:" + std::to_string(port);
  site.data = p.site_data[static_cast<size_t>(k - 1)];
  site.output_dir = (p.run_dir / name).string();
  if (!config.budget_epsilon_per_site.empty()) {
    site.privacy.budget_epsilon = config.budget_epsilon_per_site[static_cast<size_t>(k - 1)];
  }
  WriteFileAtomically(path, RenderSiteConfig(site), "site configuration");
  return site;
}

}  // namespace fedmed
