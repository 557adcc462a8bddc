// Shared by the integration tests of refusals (tls_refusal_test, secagg_federation_test,
// hospital_federation_test): a small provisioned federation (CA, coordinator, site-1 and site-2 on
// the allow-list, PneumoniaMNIST shards), a fedmed-coordinator process on a loopback port, and a
// fedmed-site process run to its end against it.
#ifndef FEDMED_TESTS_INTEGRATION_REFUSAL_UTIL_H_
#define FEDMED_TESTS_INTEGRATION_REFUSAL_UTIL_H_

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config/site_config.h"
#include "common/util/data_path.h"
#include "common/util/process.h"
#include "tests/integration/federation_util.h"
#include "tests/test_util.h"
#include "tools/pki/provision.h"

namespace fedmed {
namespace testing {

// Provisioning of site-1 and site-2 into `out_dir`: a coordinator on 127.0.0.1:0 (any free port)
// without a held-out set (1-channel, 2-class models) that waits for both sites, and sites
// training on an IID quarter of PneumoniaMNIST each. Change the result before provisioning.
inline ProvisionOptions TwoSiteFederationOptions(const std::filesystem::path& out_dir) {
  ProvisionOptions options;
  options.out_dir = out_dir;
  options.site_names = {"site-1", "site-2"};
  options.coordinator_address = "127.0.0.1:0";
  options.coordinator_template.listen_address = "127.0.0.1:0";
  options.coordinator_template.eval_data = "";
  options.coordinator_template.in_channels = 1;
  options.coordinator_template.num_classes = 2;
  options.coordinator_template.min_sites = 2;
  options.site_template.data.path = ResolveDataPath("medmnist/pneumoniamnist.npz");
  options.site_template.data.partition = "iid";
  options.site_template.data.num_shards = 4;
  return options;
}

// fedmed-coordinator running on `config_path` (whose output_dir must be dir/coordinator), its
// output in dir/coordinator.out; stopped when destroyed.
class CoordinatorProcess {
 public:
  CoordinatorProcess(const std::string& config_path, const std::filesystem::path& dir)
      : dir_(dir),
        process_(std::make_unique<ChildProcess>(
            std::vector<std::string>{BinDir() + "/fedmed-coordinator", "--config", config_path},
            (dir / "coordinator.out").string())) {}

  // Waits (up to 30 s) for the coordinator to publish its port in status.json and returns it;
  // 0 after a test failure naming what the coordinator printed.
  int WaitForPort() {
    const int port = WaitForCoordinatorPort((dir_ / "coordinator" / "status.json").string());
    if (port == 0) {
      ADD_FAILURE() << "the coordinator did not start: " << ReadFile(dir_ / "coordinator.out");
    }
    return port;
  }

  std::string Log() const { return ReadFile(dir_ / "coordinator" / "coordinator.log"); }
  // Sends `signal` to the coordinator process.
  void Signal(int signal) { process_->Signal(signal); }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<ChildProcess> process_;
};

// Runs fedmed-site with `site` pointed at 127.0.0.1:`port`, output in dir/`name` (its log in
// dir/`name`/site.log, its console in dir/`name`.out), giving up on an unreachable coordinator
// after `give_up_after_seconds`; returns its exit status (-1 when it has not ended within 60 s).
inline int RunSiteProcess(SiteConfig site, const std::filesystem::path& dir,
                          const std::string& name, int port, double give_up_after_seconds = 30) {
  site.coordinator_address = "127.0.0.1:" + std::to_string(port);
  site.output_dir = dir / name;
  site.give_up_after_seconds = give_up_after_seconds;
  return StartSiteProcess(site, dir, name)->Wait(60).value_or(-1);
}

}  // namespace testing
}  // namespace fedmed

#endif  // FEDMED_TESTS_INTEGRATION_REFUSAL_UTIL_H_
