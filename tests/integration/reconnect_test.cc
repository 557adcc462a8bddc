// A site started before its coordinator does not die: it logs why it cannot connect, backs off
// exponentially, and joins once the coordinator is up.
#include <gtest/gtest.h>

#include <fstream>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/util/data_path.h"
#include "common/util/process.h"
#include "tests/test_util.h"
#include "tools/pki/provision.h"

namespace fedmed {
namespace {

TEST(ReconnectTest, SiteStartedBeforeTheCoordinatorBacksOffAndJoins) {
  testing::TempDir dir("fedmed-reconnect");
  ProvisionOptions options;
  options.out_dir = dir / "federation";
  options.site_names = {"site-1"};
  options.coordinator_address = "127.0.0.1:0";
  const ProvisionResult pki = ProvisionFederation(options);

  // A free port for the coordinator, known to the site before the coordinator exists.
  CoordinatorConfig coordinator = LoadCoordinatorConfig(pki.coordinator_config);
  coordinator.output_dir = dir / "probe";
  coordinator.eval_data.clear();
  coordinator.in_channels = 1;
  coordinator.num_classes = 2;
  coordinator.listen_address = "127.0.0.1:0";
  int port = 0;
  {
    std::ofstream(dir / "probe.toml") << RenderCoordinatorConfig(coordinator);
    ChildProcess probe({testing::BinDir() + "/fedmed-coordinator", "--config", dir / "probe.toml"},
                       dir / "probe.out");
    ASSERT_TRUE(testing::WaitForFileContaining(dir / "probe/status.json", "\"port\":", 30));
    const std::string status = testing::ReadFile(dir / "probe/status.json");
    port = std::stoi(status.substr(status.find("\"port\":") + 7));
    probe.Stop();
  }

  SiteConfig site = LoadSiteConfig(pki.site_configs.at("site-1"));
  site.coordinator_address = "127.0.0.1:" + std::to_string(port);
  site.output_dir = dir / "site-1";
  site.data.path = ResolveDataPath("medmnist/pneumoniamnist.npz");
  site.data.partition = "iid";
  site.data.num_shards = 8;
  site.backoff_initial_seconds = 0.2;
  site.backoff_max_seconds = 1.0;
  std::ofstream(dir / "site.toml") << RenderSiteConfig(site);
  ChildProcess site_process({testing::BinDir() + "/fedmed-site", "--config", dir / "site.toml"},
                            dir / "site.out");
  // The site keeps retrying, saying why, with growing delays.
  ASSERT_TRUE(testing::WaitForFileContaining(dir / "site-1/site.log", "(attempt 3)", 30))
      << testing::ReadFile(dir / "site.out");
  const std::string waiting = testing::ReadFile(dir / "site-1/site.log");
  EXPECT_NE(waiting.find("is unreachable"), std::string::npos) << waiting;
  EXPECT_FALSE(site_process.Poll().has_value()) << "the site gave up instead of retrying";

  coordinator.output_dir = dir / "coordinator";
  coordinator.listen_address = "127.0.0.1:" + std::to_string(port);
  coordinator.min_sites = 1;
  std::ofstream(dir / "coordinator.toml") << RenderCoordinatorConfig(coordinator);
  ChildProcess coordinator_process(
      {testing::BinDir() + "/fedmed-coordinator", "--config", dir / "coordinator.toml"},
      dir / "coordinator.out");
  EXPECT_TRUE(testing::WaitForFileContaining(dir / "site-1/site.log", "registered with federation",
                                             30))
      << testing::ReadFile(dir / "site-1/site.log");
  EXPECT_TRUE(testing::WaitForFileContaining(dir / "coordinator/coordinator.log",
                                             "site-1 registered", 10));
  site_process.Stop();
  coordinator_process.Stop();
}

}  // namespace
}  // namespace fedmed
