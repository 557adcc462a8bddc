// A site started before its coordinator does not die: it logs why it cannot connect, backs off
// exponentially, and joins once the coordinator is up.
#include <gtest/gtest.h>

#include <fstream>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/util/process.h"
#include "tests/integration/federation_util.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

TEST(ReconnectTest, SiteStartedBeforeTheCoordinatorBacksOffAndJoins) {
  testing::TempDir dir("fedmed-reconnect");
  const ProvisionResult pki = testing::ProvisionLoopbackFederation(dir / "federation", {"site-1"});

  // A free port for the coordinator, known to the site before the coordinator exists.
  CoordinatorConfig coordinator =
      testing::LoopbackCoordinatorConfig(pki, dir / "probe", /*held_out_set=*/false);
  int port = 0;
  {
    std::ofstream(dir / "probe.toml") << RenderCoordinatorConfig(coordinator);
    const std::unique_ptr<ChildProcess> probe =
        testing::StartCoordinatorProcess(dir / "probe.toml", dir / "probe.out");
    port = testing::WaitForCoordinatorPort(dir / "probe/status.json");
    ASSERT_GT(port, 0) << "the coordinator did not publish its port";
    probe->Stop();
  }

  SiteConfig site = testing::LoopbackSiteConfig(pki, "site-1", port, dir / "site-1");
  site.data.partition = "iid";
  site.data.num_shards = 8;
  site.backoff_initial_seconds = 0.2;
  site.backoff_max_seconds = 1.0;
  const std::unique_ptr<ChildProcess> site_process =
      testing::StartSiteProcess(site, dir.path(), "site");
  // The site keeps retrying, saying why, with growing delays.
  ASSERT_TRUE(testing::WaitForFileContaining(dir / "site-1/site.log", "(attempt 3)", 30))
      << testing::ReadFile(dir / "site.out");
  const std::string waiting = testing::ReadFile(dir / "site-1/site.log");
  EXPECT_NE(waiting.find("is unreachable"), std::string::npos) << waiting;
  EXPECT_FALSE(site_process->Poll().has_value()) << "the site gave up instead of retrying";

  coordinator.output_dir = dir / "coordinator";
  coordinator.listen_address = "127.0.0.1:" + std::to_string(port);
  coordinator.min_sites = 1;
  std::ofstream(dir / "coordinator.toml") << RenderCoordinatorConfig(coordinator);
  const std::unique_ptr<ChildProcess> coordinator_process =
      testing::StartCoordinatorProcess(dir / "coordinator.toml", dir / "coordinator.out");
  EXPECT_TRUE(testing::WaitForFileContaining(dir / "site-1/site.log", "registered with federation",
                                             30))
      << testing::ReadFile(dir / "site-1/site.log");
  EXPECT_TRUE(testing::WaitForFileContaining(dir / "coordinator/coordinator.log",
                                             "site-1 registered", 10));
  site_process->Stop();
  coordinator_process->Stop();
}

}  // namespace
}  // namespace fedmed
