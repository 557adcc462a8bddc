// Federations across the multi-host test bed (scripts/netns.sh, docs/NETWORK.md): the real
// fedmed-coordinator in one network namespace, each real fedmed-site in its own, over mutual TLS,
// the coordinator's certificate naming its test-network address (10.77.0.1).
//
//  - ShapedLinksReachTheLoopbackMetrics: 3 sites, 3 rounds, every site's link at 40 ms RTT and
//    20 Mbit/s (tbf + fedmed-netem-relay); the final global AUC and accuracy in metrics.jsonl
//    equal the same federation's on loopback, run first in the same test, within 0.005.
//  - SitesBehindAProxyFinish: site-2 and site-3 sit on a LAN whose only way out is tinyproxy (no
//    route to the coordinator); site-3 names it in [coordinator] proxy (with a bogus https_proxy
//    and a no_proxy naming the coordinator in its environment, which the key overrides), site-2
//    finds it through https_proxy; site-1 dials directly although https_proxy names a proxy that
//    does not exist, because no_proxy names the coordinator. All three finish every round; the
//    coordinator sees the proxied sites' connections come from the proxy's address (ss in its
//    namespace, and its log line "<site> registered from <peer>"), and tinyproxy logs their
//    CONNECTs; fedmed-site check of site-3 connects through the proxy as well and ends ready.
//
// Skipped (GTEST_SKIP) only when not root, or when `ip netns` or /dev/net/tun is unavailable.
// Each site trains on a sixth of PneumoniaMNIST. Measured on 2 cores shared with other jobs (load
// average about 8): 85 s (35 s loopback + 49 s shaped) and 40 s; on a quiet machine about half.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/util/data_path.h"
#include "common/util/process.h"
#include "tests/test_util.h"
#include "tools/pki/provision.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;
using ::fedmed::testing::BinDir;
using ::fedmed::testing::ReadFile;
using ::fedmed::testing::RunCommand;

constexpr int kRounds = 3;
constexpr const char* kCoordinatorAddress = "10.77.0.1:7443";
const std::vector<std::string> kSites = {"site-1", "site-2", "site-3"};

// Why the test bed cannot be built here, or "".
std::string WhyNoTestBed() {
  if (::geteuid() != 0) return "needs root for network namespaces (CI runs as root)";
  int status = 0;
  RunCommand("ip netns list > /dev/null 2>&1", &status);
  if (status != 0) return "`ip netns` is unavailable (iproute2)";
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) return "/dev/net/tun is unavailable";
  return "";
}

// scripts/netns.sh with a prefix of this process's own ("fmt<pid>"); down when destroyed, and
// the beds of earlier test processes that died without their teardown are taken down first.
class TestBed {
 public:
  explicit TestBed(const std::string& up_args)
      : prefix_("fmt" + std::to_string(::getpid())),
        env_("FEDMED_NETNS_PREFIX=" + prefix_ + " FEDMED_NETEM_RELAY=" + BinDir() +
             "/fedmed-netem-relay " + ::fedmed::testing::SourceDir() + "/scripts/netns.sh") {
    int status = 0;
    // Test beds left by an earlier test process that died before its teardown (its pid is gone).
    std::istringstream names(RunCommand("ip netns list 2>/dev/null", &status));
    for (std::string line; std::getline(names, line);) {
      const std::string name = line.substr(0, line.find(' '));
      if (name.rfind("fmt", 0) != 0 || name.size() < 8 ||
          name.compare(name.size() - 4, 4, "-hub") != 0) {
        continue;
      }
      const std::string pid = name.substr(3, name.size() - 7);
      if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos ||
          fs::exists("/proc/" + pid)) {
        continue;
      }
      RunCommand("FEDMED_NETNS_PREFIX=fmt" + pid + " " + ::fedmed::testing::SourceDir() +
                     "/scripts/netns.sh down 2>&1",
                 &status);
    }
    output_ = RunCommand(env_ + " up " + up_args + " 2>&1", &status);
    up_ = status == 0;
  }
  ~TestBed() {
    int status = 0;
    RunCommand(env_ + " down 2>&1", &status);
  }
  bool up() const { return up_; }
  const std::string& output() const { return output_; }
  std::string Namespace(const std::string& node) const { return prefix_ + "-" + node; }
  std::string StateFile(const std::string& name) const {
    return "/run/fedmed-netns/" + prefix_ + "/" + name;
  }

 private:
  std::string prefix_;
  std::string env_;
  std::string output_;
  bool up_ = false;
};

struct FederationResult {
  std::vector<std::optional<int>> site_status;
  std::optional<int> coordinator_status;
  nlohmann::json last_row;  // the last line of metrics.jsonl
  int rows = 0;
  double seconds = 0;
  std::string logs;  // every party's console, for failure messages
};

// How one site of a federation runs: its config changes, extra environment variables.
using SiteSetup = std::function<void(const std::string& name, SiteConfig* site,
                                     std::vector<std::string>* env)>;

// Runs the provisioned federation to its end: the coordinator and the sites in the test bed's
// namespaces (`bed`), or on loopback (`bed` null); `observe` is called every 200 ms while the
// sites run.
FederationResult RunFederation(const ProvisionResult& pki, const fs::path& dir, const TestBed* bed,
                               const SiteSetup& setup = nullptr,
                               const std::function<void()>& observe = nullptr) {
  fs::create_directories(dir);
  const auto in = [bed](const std::string& node, std::vector<std::string> argv) {
    if (bed == nullptr) return argv;
    std::vector<std::string> wrapped = {"ip", "netns", "exec", bed->Namespace(node)};
    wrapped.insert(wrapped.end(), argv.begin(), argv.end());
    return wrapped;
  };
  CoordinatorConfig coordinator = LoadCoordinatorConfig(pki.coordinator_config);
  coordinator.listen_address = bed != nullptr ? kCoordinatorAddress : "127.0.0.1:0";
  coordinator.rounds = kRounds;
  coordinator.min_sites = 3;
  coordinator.output_dir = (dir / "coordinator").string();
  coordinator.eval_data = ResolveDataPath("medmnist/pneumoniamnist.npz");
  coordinator.training.optimizer = "adam";
  coordinator.training.learning_rate = 1e-3;
  coordinator.training.local_epochs = 1;
  const std::string coordinator_toml = (dir / "coordinator.toml").string();
  std::ofstream(coordinator_toml) << RenderCoordinatorConfig(coordinator);

  FederationResult result;
  const auto start = std::chrono::steady_clock::now();
  ChildProcess coordinator_process(
      in("coord", {BinDir() + "/fedmed-coordinator", "--config", coordinator_toml}),
      (dir / "coordinator.out").string());
  std::string address = kCoordinatorAddress;
  if (bed == nullptr) {
    const std::string status_file = (dir / "coordinator" / "status.json").string();
    if (!::fedmed::testing::WaitForFileContaining(status_file, "\"port\":", 30)) {
      result.logs = ReadFile(dir / "coordinator.out");
      return result;
    }
    const std::string status = ReadFile(status_file);
    address = "127.0.0.1:" + std::to_string(std::stoi(status.substr(status.find("\"port\":") + 7)));
  }
  std::vector<std::unique_ptr<ChildProcess>> sites;
  for (size_t i = 0; i < kSites.size(); ++i) {
    const std::string& name = kSites[i];
    SiteConfig site = LoadSiteConfig(pki.site_configs.at(name));
    site.coordinator_address = address;
    site.output_dir = (dir / name).string();
    site.data.path = ResolveDataPath("medmnist/pneumoniamnist.npz");
    // Each site trains on a sixth of the images: the network is what this test is about.
    site.data.partition = "iid";
    site.data.num_shards = 6;
    site.data.shard = static_cast<int>(i) + 1;
    site.threads = 1;
    site.give_up_after_seconds = 60;
    std::vector<std::string> env;
    if (setup) setup(name, &site, &env);
    const std::string path = (dir / (name + ".toml")).string();
    std::ofstream(path) << RenderSiteConfig(site);
    sites.push_back(std::make_unique<ChildProcess>(
        in(name, {BinDir() + "/fedmed-site", "--config", path}), (dir / (name + ".out")).string(),
        env));
  }
  const auto give_up = start + std::chrono::seconds(150);
  for (auto& site : sites) {
    std::optional<int> status;
    while (!(status = site->Poll()) && std::chrono::steady_clock::now() < give_up) {
      if (observe) observe();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    result.site_status.push_back(status);
  }
  result.coordinator_status = coordinator_process.Wait(30);
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::ifstream metrics(dir / "coordinator" / "metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) {
    if (line.empty()) continue;
    result.last_row = nlohmann::json::parse(line);
    ++result.rows;
  }
  result.logs = "coordinator:\n" + ReadFile(dir / "coordinator.out");
  for (const std::string& name : kSites) {
    result.logs += "\n" + name + ":\n" + ReadFile(dir / (name + ".out"));
  }
  std::cout << dir.filename().string() << ": " << result.seconds << " s; "
            << ReadFile(dir / "coordinator" / "metrics.jsonl").size() << " bytes of metrics; last row "
            << (result.rows > 0 ? result.last_row.at("seconds").dump() : "none") << "\n";
  return result;
}

ProvisionResult Provision(const fs::path& dir) {
  ProvisionOptions options;
  options.out_dir = (dir / "pki").string();
  options.site_names = kSites;
  // The sites dial 10.77.0.1 in the test bed (the certificate names it) and 127.0.0.1 on
  // loopback (a default IP entry).
  options.coordinator_address = kCoordinatorAddress;
  return ProvisionFederation(options);
}

void ExpectFinished(const FederationResult& r, const std::string& what) {
  ASSERT_EQ(r.site_status.size(), kSites.size());
  for (size_t i = 0; i < kSites.size(); ++i) {
    EXPECT_EQ(r.site_status[i], std::optional<int>(0)) << what << ": " << kSites[i] << "\n" << r.logs;
  }
  EXPECT_EQ(r.coordinator_status, std::optional<int>(0)) << what << "\n" << r.logs;
  ASSERT_EQ(r.rows, kRounds) << what << ": rows of metrics.jsonl\n" << r.logs;
  EXPECT_EQ(r.last_row.at("round").get<int>(), kRounds);
  EXPECT_EQ(r.last_row.at("contributors").size(), kSites.size()) << r.last_row.dump();
}

TEST(NetnsFederationTest, ShapedLinksReachTheLoopbackMetrics) {
  if (const std::string why = WhyNoTestBed(); !why.empty()) GTEST_SKIP() << why;
  ::fedmed::testing::TempDir dir("fedmed-netns-shaped");
  const ProvisionResult pki = Provision(dir.path());

  const FederationResult loopback = RunFederation(pki, dir.path() / "loopback", nullptr);
  ExpectFinished(loopback, "loopback");
  if (HasFatalFailure()) return;

  TestBed bed("--sites 3 --delay-ms 20 --rate 20mbit --seed 1");
  ASSERT_TRUE(bed.up()) << bed.output();
  const FederationResult shaped = RunFederation(pki, dir.path() / "shaped", &bed);
  ExpectFinished(shaped, "40 ms RTT, 20 Mbit/s");
  if (HasFatalFailure()) return;

  const double auc = shaped.last_row.at("global").at("auc").get<double>();
  const double loopback_auc = loopback.last_row.at("global").at("auc").get<double>();
  const double acc = shaped.last_row.at("global").at("accuracy").get<double>();
  const double loopback_acc = loopback.last_row.at("global").at("accuracy").get<double>();
  // The same seeds and shards: only the order in which updates arrive (the float64 running sum)
  // can differ between the two runs.
  EXPECT_NEAR(auc, loopback_auc, 0.005);
  EXPECT_NEAR(acc, loopback_acc, 0.005);
  std::cout << "final global AUC " << auc << " (loopback " << loopback_auc << "), accuracy " << acc
            << " (loopback " << loopback_acc << "); " << shaped.seconds << " s (loopback "
            << loopback.seconds << " s)\n";
}

TEST(NetnsFederationTest, SitesBehindAProxyFinish) {
  if (const std::string why = WhyNoTestBed(); !why.empty()) GTEST_SKIP() << why;
  ::fedmed::testing::TempDir dir("fedmed-netns-proxy");
  const ProvisionResult pki = Provision(dir.path());
  TestBed bed("--sites 3 --proxy-sites site-2,site-3");
  ASSERT_TRUE(bed.up()) << bed.output();

  // Before the federation: the proxied LAN has no route to the coordinator.
  int status = 0;
  RunCommand("ip netns exec " + bed.Namespace("site-3") +
                 " bash -c 'exec 3<>/dev/tcp/10.77.0.1/7443' 2>/dev/null",
             &status);
  EXPECT_NE(status, 0) << "site-3 reaches the coordinator without the proxy";

  const std::string bogus = "https_proxy=http://10.77.0.99:3128";
  const SiteSetup setup = [&](const std::string& name, SiteConfig* site,
                              std::vector<std::string>* env) {
    if (name == "site-1") *env = {bogus, "no_proxy=example.org,10.77.0.1"};
    if (name == "site-2") *env = {"https_proxy=http://10.78.0.1:3128", "no_proxy="};
    if (name == "site-3") {
      site->coordinator_proxy = "http://10.78.0.1:3128";
      *env = {bogus, "no_proxy=10.77.0.0/24"};
    }
  };
  // The peers the coordinator sees on its port, from its own namespace; and once, while the
  // coordinator runs, fedmed-site check of site-3, which must connect through the proxy too.
  std::set<std::string> peers;
  std::string check;
  int check_status = -1;
  const auto observe = [&] {
    if (check.empty() && !peers.empty()) {
      int& rc = check_status;
      check = RunCommand(bogus + " no_proxy=10.77.0.1 ip netns exec " + bed.Namespace("site-3") +
                             " " + BinDir() + "/fedmed-site check --config " +
                             (dir.path() / "proxy" / "site-3.toml").string() + " 2>&1",
                         &rc);
    }
    int rc = 0;
    std::istringstream lines(RunCommand("ip netns exec " + bed.Namespace("coord") +
                                            " ss -tnH state established '( sport = :7443 )'",
                                        &rc));
    for (std::string line; std::getline(lines, line);) {
      std::istringstream fields(line);
      std::string recv_q, send_q, local, peer;
      if (!(fields >> recv_q >> send_q >> local >> peer)) continue;
      peer = peer.substr(0, peer.rfind(':'));  // "[::ffff:10.77.0.2]:40312" -> 10.77.0.2
      if (peer.rfind("[::ffff:", 0) == 0) peer = peer.substr(8, peer.size() - 9);
      peers.insert(peer);
    }
  };
  const FederationResult r = RunFederation(pki, dir.path() / "proxy", &bed, setup, observe);
  ExpectFinished(r, "behind a proxy");
  EXPECT_EQ(peers, (std::set<std::string>{"10.77.0.11", "10.77.0.2"}))
      << "site-1 directly, site-2 and site-3 through the proxy (10.77.0.2)";
  // The coordinator's log names where each registration came from.
  std::istringstream log(ReadFile(dir.path() / "proxy" / "coordinator" / "coordinator.log"));
  std::set<std::string> registered_from;
  for (std::string line; std::getline(log, line);) {
    for (const std::string& name : kSites) {
      for (const std::string address : {"10.77.0.2:", "10.77.0.11:"}) {
        if (line.find(name + " registered from ") != std::string::npos &&
            line.find(address) != std::string::npos) {
          registered_from.insert(name + " " + address);
        }
      }
    }
  }
  EXPECT_EQ(registered_from, (std::set<std::string>{"site-1 10.77.0.11:", "site-2 10.77.0.2:",
                                                    "site-3 10.77.0.2:"}));
  const std::string proxy_log = ReadFile(bed.StateFile("tinyproxy.log"));
  for (const std::string lan_address : {"10.78.0.12", "10.78.0.13"}) {
    EXPECT_NE(proxy_log.find("Connect (file descriptor"), std::string::npos) << proxy_log;
    EXPECT_NE(proxy_log.find(lan_address), std::string::npos) << proxy_log;
  }
  EXPECT_NE(proxy_log.find("CONNECT 10.77.0.1:7443"), std::string::npos) << proxy_log;
  for (const std::string line :
       {"[ ok ] network: proxy: dialling through the HTTP proxy 10.78.0.1:3128 (from [coordinator] "
        "proxy)",
        "[ ok ] network: proxy tunnel: the proxy opened a tunnel to 10.77.0.1:7443",
        "[ ok ] network: TLS handshake: the coordinator's certificate verifies for 10.77.0.1"}) {
    EXPECT_NE(check.find(line), std::string::npos) << "fedmed-site check of site-3:\n" << check;
  }
  // Ready: its Hello (an authenticated call) went through the proxy as well.
  EXPECT_EQ(check_status, 0) << "fedmed-site check of site-3:\n" << check;
}

}  // namespace
}  // namespace fedmed
