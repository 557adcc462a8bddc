// Shared by the tests that run a provisioned federation on loopback, in this process or as real
// fedmed-coordinator and fedmed-site processes (coordinator_crash_test, full_disk_test,
// site_sigterm_test, reconnect_test, resume_transfer_test, large_model_transfer_test,
// refusal_util.h): provisioning, the configs they start from, starting a coordinator and a
// site, and the coordinator's port.
#ifndef FEDMED_TESTS_INTEGRATION_FEDERATION_UTIL_H_
#define FEDMED_TESTS_INTEGRATION_FEDERATION_UTIL_H_

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/util/data_path.h"
#include "common/util/process.h"
#include "tests/test_util.h"
#include "tools/pki/provision.h"

namespace fedmed::testing {

// fedmed-pki's provisioning of a CA, a coordinator and `sites` into `out_dir`, the coordinator's
// address in the site configs 127.0.0.1:0 (tests set the port they find).
inline ProvisionResult ProvisionLoopbackFederation(const std::filesystem::path& out_dir,
                                                   const std::vector<std::string>& sites) {
  ProvisionOptions options;
  options.out_dir = out_dir;
  options.site_names = sites;
  options.coordinator_address = "127.0.0.1:0";
  return ProvisionFederation(options);
}

// The provisioned coordinator configuration listening on 127.0.0.1:0 (any free port), its output
// in `output_dir`, evaluating on PneumoniaMNIST's test split; without `held_out_set`, with no
// held-out set (the model's shape given instead: 1 channel, 2 classes).
inline CoordinatorConfig LoopbackCoordinatorConfig(const ProvisionResult& pki,
                                                   const std::filesystem::path& output_dir,
                                                   bool held_out_set = true) {
  CoordinatorConfig config = LoadCoordinatorConfig(pki.coordinator_config);
  config.listen_address = "127.0.0.1:0";
  config.output_dir = output_dir.string();
  if (held_out_set) {
    config.eval_data = ResolveDataPath("medmnist/pneumoniamnist.npz");
  } else {
    config.eval_data.clear();
    config.in_channels = 1;
    config.num_classes = 2;
  }
  return config;
}

// The port a starting fedmed-coordinator publishes in its status.json (`status_file`), waiting
// up to 30 s for it; 0 when it does not appear.
inline int WaitForCoordinatorPort(const std::string& status_file) {
  if (!WaitForFileContaining(status_file, "\"port\":", 30)) return 0;
  const std::string status = ReadFile(status_file);
  return std::stoi(status.substr(status.find("\"port\":") + 7));
}

// The provisioned configuration of site `name` dialling 127.0.0.1:`port`, its output in
// `output_dir`, training on PneumoniaMNIST.
inline SiteConfig LoopbackSiteConfig(const ProvisionResult& pki, const std::string& name,
                                     int port, const std::filesystem::path& output_dir) {
  SiteConfig site = LoadSiteConfig(pki.site_configs.at(name));
  site.coordinator_address = "127.0.0.1:" + std::to_string(port);
  site.output_dir = output_dir.string();
  site.data.path = ResolveDataPath("medmnist/pneumoniamnist.npz");
  return site;
}

// fedmed-coordinator started on the configuration file `config_path`, its console in
// `output_file`.
inline std::unique_ptr<ChildProcess> StartCoordinatorProcess(const std::string& config_path,
                                                             const std::string& output_file) {
  return std::make_unique<ChildProcess>(
      std::vector<std::string>{BinDir() + "/fedmed-coordinator", "--config", config_path},
      output_file);
}

// Writes `site` to dir/`name`.toml and starts fedmed-site on it, its console in dir/`name`.out.
inline std::unique_ptr<ChildProcess> StartSiteProcess(const SiteConfig& site,
                                                      const std::filesystem::path& dir,
                                                      const std::string& name) {
  const std::string path = (dir / (name + ".toml")).string();
  std::ofstream(path) << RenderSiteConfig(site);
  return std::make_unique<ChildProcess>(
      std::vector<std::string>{BinDir() + "/fedmed-site", "--config", path},
      (dir / (name + ".out")).string());
}

}  // namespace fedmed::testing

#endif  // FEDMED_TESTS_INTEGRATION_FEDERATION_UTIL_H_
