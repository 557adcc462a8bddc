// The status page in a real browser during a real federation: the fedmed-coordinator binary
// with [status] listen on a free loopback port and three fedmed-site processes (PneumoniaMNIST,
// an IID third each, 4 rounds), provisioned by ProvisionFederation (which writes the token
// file), while tests/status_page/status_page_test.mjs drives Debian's chromium through
// playwright-core (scripts/deps.sh installs both): it must get 401 without the token, see the
// three sites, the round advance and the AUC chart gain points, and write its screenshots to
// the build directory (status_page.png, status_page_phone.png). The federation must then end
// well. While the page is open, /metrics is also fetched and checked with promtool.
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/util/data_path.h"
#include "common/util/process.h"
#include "tests/integration/refusal_util.h"
#include "tests/test_util.h"
#include "tools/pki/provision.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;
namespace http = boost::beast::http;
using testing::CoordinatorProcess;

// GET `target` from 127.0.0.1:`port` with the bearer token; the body ("" on any failure).
std::string Get(int port, const std::string& target, const std::string& token) {
  try {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    socket.connect({boost::asio::ip::make_address("127.0.0.1"),
                    static_cast<unsigned short>(port)});
    http::request<http::empty_body> request(http::verb::get, target, 11);
    request.set(http::field::host, "127.0.0.1");
    request.set(http::field::authorization, "Bearer " + token);
    http::write(socket, request);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(socket, buffer, response);
    return response.result_int() == 200 ? response.body() : "";
  } catch (const std::exception&) {
    return "";
  }
}

TEST(StatusPageTest, ChromiumSeesThreeSitesRoundsAdvanceAndTheAucChartGrow) {
  const std::string script = ::fedmed::testing::SourceDir() + "/tests/status_page/status_page_test.mjs";
  ASSERT_TRUE(fs::exists(::fedmed::testing::SourceDir() +
                         "/tests/status_page/node_modules/playwright-core"))
      << "playwright-core is missing: run scripts/deps.sh";
  ASSERT_TRUE(fs::exists("/usr/bin/chromium")) << "chromium is missing: run scripts/deps.sh";

  ::fedmed::testing::TempDir dir("fedmed-status-page");
  ProvisionOptions options;
  options.out_dir = dir.path() / "pki";
  options.site_names = {"site-1", "site-2", "site-3"};
  options.coordinator_address = "127.0.0.1:0";
  options.coordinator_template.listen_address = "127.0.0.1:0";
  options.coordinator_template.eval_data = ResolveDataPath(kDefaultDataFile);
  options.coordinator_template.rounds = 4;
  options.coordinator_template.min_sites = 3;
  options.coordinator_template.training.optimizer = "adam";
  options.coordinator_template.training.learning_rate = 1e-3;
  options.coordinator_template.status.listen = "127.0.0.1:0";
  options.site_template.data.path = ResolveDataPath(kDefaultDataFile);
  options.site_template.data.partition = "iid";
  options.site_template.data.num_shards = 3;
  const ProvisionResult pki = ProvisionFederation(options);
  const std::string token = ::fedmed::testing::ReadFile(pki.status_token_file).substr(0, 64);
  ASSERT_EQ(token.size(), 64u);
  CoordinatorConfig coordinator = LoadCoordinatorConfig(pki.coordinator_config);
  coordinator.output_dir = (dir.path() / "coordinator").string();
  const std::string coordinator_toml = (dir.path() / "coordinator.toml").string();
  std::ofstream(coordinator_toml) << RenderCoordinatorConfig(coordinator);

  CoordinatorProcess process(coordinator_toml, dir.path());
  const int port = process.WaitForPort();
  ASSERT_GT(port, 0);
  const std::string url_file = (dir.path() / "coordinator" / "status_url.txt").string();
  ASSERT_TRUE(::fedmed::testing::WaitForFileContaining(url_file, "http://", 10)) << process.Log();
  std::string url = ::fedmed::testing::ReadFile(url_file);
  url = url.substr(0, url.find('\n'));
  const int status_port = std::stoi(url.substr(url.rfind(':') + 1));

  std::vector<std::unique_ptr<ChildProcess>> sites;
  for (int k = 1; k <= 3; ++k) {
    const std::string name = "site-" + std::to_string(k);
    SiteConfig site = LoadSiteConfig(pki.site_configs.at(name));
    site.coordinator_address = "127.0.0.1:" + std::to_string(port);
    site.output_dir = (dir.path() / name).string();
    site.threads = 1;
    const std::string path = (dir.path() / (name + ".toml")).string();
    std::ofstream(path) << RenderSiteConfig(site);
    sites.push_back(std::make_unique<ChildProcess>(
        std::vector<std::string>{::fedmed::testing::BinDir() + "/fedmed-site", "--config", path},
        (dir.path() / (name + ".out")).string()));
  }

  // The browser, while the federation runs.
  const std::string shots = fs::absolute(::fedmed::testing::BinDir() + "/..").lexically_normal();
  int rc = -1;
  const std::string seen = ::fedmed::testing::RunCommand(
      "node " + script + " " + url + " " + token + " " + shots + " 3 2>&1", &rc);
  EXPECT_EQ(rc, 0) << seen << "\n" << process.Log();
  EXPECT_NE(seen.find("\"sites\":[\"site-1\",\"site-2\",\"site-3\"]"), std::string::npos) << seen;
  std::cout << "browser saw: " << seen;
  EXPECT_GT(fs::file_size(shots + "/status_page.png"), 10000u);
  EXPECT_GT(fs::file_size(shots + "/status_page_phone.png"), 10000u);

  // promtool on the live /metrics.
  const std::string metrics = Get(status_port, "/metrics", token);
  ASSERT_NE(metrics.find("fedmed_rounds_completed_total"), std::string::npos) << metrics;
  const std::string metrics_file = (dir.path() / "metrics.txt").string();
  std::ofstream(metrics_file) << metrics;
  int promtool_rc = -1;
  const std::string lint =
      ::fedmed::testing::RunCommand("promtool check metrics < " + metrics_file + " 2>&1",
                                    &promtool_rc);
  EXPECT_EQ(promtool_rc, 0) << lint << metrics;

  for (auto& site : sites) EXPECT_EQ(site->Wait(240), std::optional<int>(0)) << site->name();
  EXPECT_TRUE(::fedmed::testing::WaitForFileContaining(
      (dir.path() / "coordinator" / "coordinator.log").string(), "coordinator stopped", 60));
  EXPECT_NE(process.Log().find("status page: http://127.0.0.1:"), std::string::npos);
}

}  // namespace
}  // namespace fedmed
