// fedmed-admin against a real fedmed-coordinator and real fedmed-site processes on loopback, over
// mutual TLS with the certificates fedmed-pki init writes (issue 16 item 2):
//   - a site's certificate is refused by the Admin service (PERMISSION_DENIED), the operator's by
//     the Federation service (PERMISSION_DENIED), and the operator's is served (GetStatus); once
//     revoked ([tls] crl), also on a connection opened before;
//   - pause holds the next round (phase "paused", no new row in metrics.jsonl for seconds),
//     exclude site-2 leaves it out of the next rounds (state "excluded", not a contributor),
//     resume starts the next round, extend adds rounds, stop ends the coordinator with exit
//     status 0 and resume.json at the last completed round; every action is an "admin" entry of
//     the coordinator's audit log with the operator's CN.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/config/tls_files.h"
#include "common/util/process.h"
#include "site_agent/connection.h"
#include "tests/integration/refusal_util.h"
#include "tests/test_util.h"
#include "tools/admin/admin_client.h"
#include "tools/pki/provision.h"
#include "tools/pki/revocation.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kPermissionDenied = 7;  // grpc::StatusCode::PERMISSION_DENIED

// Polls `done` every 200 ms for up to `seconds`.
bool WaitFor(const std::function<bool()>& done, double seconds) {
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return done();
}

// The objects of a JSON-lines file (lines that do not parse are skipped: a line being written).
std::vector<json> JsonLines(const fs::path& path) {
  std::vector<json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    try {
      out.push_back(json::parse(line));
    } catch (const json::exception&) {
    }
  }
  return out;
}

class AdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ProvisionOptions options = testing::TwoSiteFederationOptions(dir_.path() / "pki");
    options.site_names = {"site-1", "site-2", "site-3"};
    options.site_template.data.num_shards = 8;
    options.coordinator_template.min_sites = 2;
    options.coordinator_template.rounds = 3;
    options.coordinator_template.output_dir = (dir_.path() / "coordinator").string();
    pki_ = ProvisionFederation(options);
    const std::string toml = (dir_.path() / "coordinator.toml").string();
    CoordinatorConfig coordinator = LoadCoordinatorConfig(pki_.coordinator_config);
    coordinator.output_dir = (dir_.path() / "coordinator").string();
    std::ofstream(toml) << RenderCoordinatorConfig(coordinator);
    coordinator_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{testing::BinDir() + "/fedmed-coordinator", "--config", toml},
        (dir_.path() / "coordinator.out").string());
    const fs::path status = dir_.path() / "coordinator" / "status.json";
    ASSERT_TRUE(testing::WaitForFileContaining(status.string(), "\"port\":", 60))
        << ReadText(dir_.path() / "coordinator.out");
    const std::string text = ReadText(status);
    port_ = std::stoi(text.substr(text.find("\"port\":") + 7));
    operator_dir_ = fs::path(pki_.operator_cert).parent_path();
  }

  static std::string ReadText(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::string Address() const { return "127.0.0.1:" + std::to_string(port_); }

  AdminClient Operator() {
    return AdminClient(AdminTargetFromDir(operator_dir_.string(), Address()), 10);
  }

  json Status() { return json::parse(Operator().StatusJson()); }

  std::string SiteState(const std::string& name) {
    const json status = Status();
    for (const json& site : status.at("sites")) {
      if (site.at("name").get<std::string>() == name) return site.at("state").get<std::string>();
    }
    return "";
  }

  std::vector<json> Metrics() { return JsonLines(dir_.path() / "coordinator" / "metrics.jsonl"); }

  void StartSites() {
    for (const auto& [name, config] : pki_.site_configs) {
      SiteConfig site = LoadSiteConfig(config);
      site.coordinator_address = Address();
      site.output_dir = (dir_.path() / name).string();
      const std::string path = (dir_.path() / (name + ".toml")).string();
      std::ofstream(path) << RenderSiteConfig(site);
      sites_.push_back(std::make_unique<ChildProcess>(
          std::vector<std::string>{testing::BinDir() + "/fedmed-site", "--config", path},
          (dir_.path() / (name + ".out")).string()));
    }
  }

  ::fedmed::testing::TempDir dir_{"fedmed-admin"};
  ProvisionResult pki_;
  std::unique_ptr<ChildProcess> coordinator_;
  std::vector<std::unique_ptr<ChildProcess>> sites_;
  fs::path operator_dir_;
  int port_ = 0;
};

TEST_F(AdminTest, CertificatesKeepTheirRoles) {
  // The operator's certificate is served.
  const json status = Status();
  EXPECT_EQ(status.at("federation"), "fedmed");
  EXPECT_EQ(status.at("sites").size(), 3u);

  // A site's certificate (valid, on the allow-list) cannot administer.
  const fs::path site_dir = fs::path(pki_.site_configs.at("site-1")).parent_path();
  AdminTarget as_site;
  as_site.address = Address();
  as_site.ca_cert = (site_dir / "ca.pem").string();
  as_site.cert = (site_dir / "site-1.pem").string();
  as_site.key = (site_dir / "site-1.key").string();
  try {
    AdminClient(as_site, 10).Pause();
    ADD_FAILURE() << "a site's certificate paused the federation";
  } catch (const AdminError& e) {
    EXPECT_EQ(e.code(), kPermissionDenied) << e.what();
  }

  // The operator's certificate cannot act as a site.
  const TlsFiles operator_tls{(operator_dir_ / "ca.pem").string(),
                              (operator_dir_ / "operator.pem").string(),
                              (operator_dir_ / "operator.key").string()};
  try {
    CoordinatorConnection(Address(), operator_tls).Hello(10);
    ADD_FAILURE() << "the operator's certificate was accepted as a site";
  } catch (const RpcError& e) {
    EXPECT_EQ(e.code(), kPermissionDenied) << e.what();
  }

  // A site's own certificate gets its Hello answered (and registers nothing).
  const TlsFiles site_tls{(site_dir / "ca.pem").string(), (site_dir / "site-1.pem").string(),
                          (site_dir / "site-1.key").string()};
  const HelloAnswer hello = CoordinatorConnection(Address(), site_tls).Hello(10);
  EXPECT_EQ(hello.federation, "fedmed");
  EXPECT_EQ(hello.site, "site-1");
  EXPECT_NEAR(static_cast<double>(hello.unix_ms) / 1000.0, static_cast<double>(std::time(nullptr)),
              5);
  EXPECT_EQ(SiteState("site-1"), "not_registered");
}

// An operator certificate revoked while fedmed-admin's connection is open: the next call on that
// connection is refused (PERMISSION_DENIED, "revoked"), not only new connections.
TEST_F(AdminTest, ARevokedOperatorIsRefusedOnAnOpenConnection) {
  AdminClient admin = Operator();
  ASSERT_NO_THROW(admin.StatusJson());
  RevokeOperator(dir_.path() / "pki", "keyCompromise", 30);
  int code = 0;
  std::string message;
  // The coordinator re-reads [tls] crl within about a second of its change.
  const bool refused = WaitFor(
      [&] {
        try {
          admin.StatusJson();
          return false;
        } catch (const AdminError& e) {
          code = e.code();
          message = e.what();
          return true;
        }
      },
      15);
  ASSERT_TRUE(refused);
  EXPECT_EQ(code, kPermissionDenied) << message;
  EXPECT_NE(message.find("revoked"), std::string::npos) << message;
}

TEST_F(AdminTest, PauseExcludeResumeExtendStop) {
  StartSites();
  AdminClient admin = Operator();
  // Round 1 runs; pause during it: round 1 ends, round 2 waits.
  ASSERT_TRUE(WaitFor([&] { return Status().at("round").get<int>() >= 1; }, 120))
      << ReadText(dir_.path() / "coordinator" / "coordinator.log");
  std::cout << admin.Pause() << std::endl;
  ASSERT_TRUE(WaitFor([&] { return Status().at("phase") == "paused"; }, 180))
      << ReadText(dir_.path() / "coordinator" / "coordinator.log");
  const int held_round = Status().at("round").get<int>();
  const size_t rows = Metrics().size();
  EXPECT_EQ(rows, static_cast<size_t>(held_round));
  std::this_thread::sleep_for(std::chrono::seconds(4));
  EXPECT_EQ(Status().at("phase"), "paused");
  EXPECT_EQ(Status().at("round").get<int>(), held_round);
  EXPECT_EQ(Metrics().size(), rows) << "a round ran while paused";

  std::cout << admin.Exclude("site-2", "integration test: left out on purpose") << std::endl;
  EXPECT_EQ(SiteState("site-2"), "excluded");
  std::cout << admin.Extend(1) << std::endl;
  EXPECT_EQ(Status().at("total_rounds").get<int>(), 4);
  // Both are in resume.json at once, before another round is checkpointed.
  const json paused_resume = json::parse(ReadText(dir_.path() / "coordinator" / "resume.json"));
  EXPECT_EQ(paused_resume.at("completed_round").get<int>(), held_round);
  EXPECT_EQ(paused_resume.at("excluded"), json::array({"site-2"}));
  EXPECT_EQ(paused_resume.at("total_rounds").get<int>(), 4);

  std::cout << admin.Resume() << std::endl;
  ASSERT_TRUE(WaitFor([&] { return Metrics().size() >= rows + 1; }, 180))
      << ReadText(dir_.path() / "coordinator" / "coordinator.log");
  const json next = Metrics().at(rows);
  EXPECT_EQ(next.at("round").get<int>(), held_round + 1);
  const std::vector<std::string> contributors = next.at("contributors");
  EXPECT_FALSE(contributors.empty());
  for (const std::string& c : contributors) EXPECT_NE(c, "site-2");

  std::cout << admin.Stop() << std::endl;
  const std::optional<int> exit = coordinator_->Wait(60);
  ASSERT_TRUE(exit.has_value()) << "the coordinator did not stop";
  EXPECT_EQ(*exit, 0) << ReadText(dir_.path() / "coordinator.out");
  const json resume = json::parse(ReadText(dir_.path() / "coordinator" / "resume.json"));
  EXPECT_EQ(resume.at("completed_round").get<int>(), Metrics().back().at("round").get<int>());
  EXPECT_EQ(resume.at("total_rounds").get<int>(), 4);
  EXPECT_EQ(resume.at("excluded"), json::array({"site-2"}));

  std::vector<std::string> actions;
  for (const json& entry : JsonLines(dir_.path() / "coordinator" / "audit_log.jsonl")) {
    if (entry.at("event") != "admin") continue;
    EXPECT_EQ(entry.at("data").at("operator"), "fedmed-operator");
    actions.push_back(entry.at("data").at("action"));
  }
  EXPECT_EQ(actions, (std::vector<std::string>{"pause", "exclude", "extend", "resume", "stop"}));
}

}  // namespace
}  // namespace fedmed
