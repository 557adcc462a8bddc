// fedmed-site check (site_agent/site_check.h) against a real fedmed-coordinator on loopback: a
// healthy provisioned site passes every check, and each broken site fails the check that names
// its problem: a missing data path, a certificate from another CA, an expired certificate (the
// clock moved past its end), a wrong coordinator address, a coordinator that is down, a privacy
// budget already spent; and with the Hello call (the authenticated call that does not register),
// a clock two minutes off the coordinator's.
#include <gtest/gtest.h>

#include <algorithm>
#include <ctime>
#include <functional>
#include <memory>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/crypto/pki.h"
#include "common/privacy/privacy_budget.h"
#include "common/util/data_path.h"
#include "site_agent/connection.h"
#include "site_agent/site_check.h"
#include "tests/integration/refusal_util.h"
#include "tests/test_util.h"
#include "tools/pki/provision.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;

// The first failed check, or nullptr.
const SiteCheck* FirstFailure(const std::vector<SiteCheck>& checks) {
  for (const SiteCheck& c : checks) {
    if (!c.ok) return &c;
  }
  return nullptr;
}

class SiteCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ProvisionOptions options;
    options.out_dir = dir_.path() / "pki";
    options.site_names = {"site-1", "site-2"};
    options.coordinator_address = "127.0.0.1:0";
    options.coordinator_template.listen_address = "127.0.0.1:0";
    options.coordinator_template.eval_data = ResolveDataPath(kDefaultDataFile);
    options.coordinator_template.output_dir = (dir_.path() / "coordinator").string();
    options.site_template.data.path = ResolveDataPath(kDefaultDataFile);
    options.site_template.data.partition = "iid";
    pki_ = ProvisionFederation(options);
    CoordinatorConfig coordinator = LoadCoordinatorConfig(pki_.coordinator_config);
    coordinator.output_dir = (dir_.path() / "coordinator").string();
    const std::string toml = (dir_.path() / "coordinator.toml").string();
    std::ofstream(toml) << RenderCoordinatorConfig(coordinator);
    coordinator_ = std::make_unique<testing::CoordinatorProcess>(toml, dir_.path());
    port_ = coordinator_->WaitForPort();
    ASSERT_GT(port_, 0);
  }

  // site-1's config with `change` applied, written beside the provisioned one.
  std::string Site(const std::function<void(SiteConfig*)>& change = {}) {
    SiteConfig site = LoadSiteConfig(pki_.site_configs.at("site-1"));
    site.coordinator_address = "127.0.0.1:" + std::to_string(port_);
    site.output_dir = (dir_.path() / "site-1-out").string();
    if (change) change(&site);
    const std::string path =
        (fs::path(pki_.site_configs.at("site-1")).parent_path() / "check.toml").string();
    std::ofstream(path) << RenderSiteConfig(site);
    return path;
  }

  std::vector<SiteCheck> Check(const std::string& path, std::time_t now = 0) {
    SiteCheckOptions options;
    options.now = now;
    options.network_timeout_seconds = 3;
    options.hello = [](const SiteConfig& site, double timeout_seconds) {
      return CoordinatorConnection(site.coordinator_address, site.tls).Hello(timeout_seconds);
    };
    const std::vector<SiteCheck> checks = CheckSite(path, options);
    std::cout << FormatSiteChecks(checks);
    return checks;
  }

  ::fedmed::testing::TempDir dir_{"fedmed-site-check"};
  ProvisionResult pki_;
  std::unique_ptr<testing::CoordinatorProcess> coordinator_;
  int port_ = 0;
};

TEST_F(SiteCheckTest, AHealthySiteIsReady) {
  const std::vector<SiteCheck> checks = Check(Site());
  EXPECT_TRUE(SiteReady(checks)) << FormatSiteChecks(checks);
  EXPECT_NE(FormatSiteChecks(checks).find("gRPC endpoint: the coordinator's server answers"),
            std::string::npos);
  // The authenticated call (Hello) and the clock.
  const auto hello = std::find_if(checks.begin(), checks.end(), [](const SiteCheck& c) {
    return c.name == "authenticated call";
  });
  ASSERT_NE(hello, checks.end()) << FormatSiteChecks(checks);
  EXPECT_TRUE(hello->ok);
  EXPECT_NE(hello->detail.find("accepts this site as site-1"), std::string::npos) << hello->detail;
  const auto skew = std::find_if(checks.begin(), checks.end(),
                                 [](const SiteCheck& c) { return c.name == "clock skew"; });
  ASSERT_NE(skew, checks.end());
  EXPECT_TRUE(skew->ok) << skew->detail;
}

// A clock two minutes behind the coordinator's fails the clock-skew check (and only it).
TEST_F(SiteCheckTest, AClockSkewOverAMinuteIsNamed) {
  const std::vector<SiteCheck> checks = Check(Site(), std::time(nullptr) - 120);
  EXPECT_FALSE(SiteReady(checks));
  const SiteCheck* failure = FirstFailure(checks);
  ASSERT_NE(failure, nullptr);
  EXPECT_EQ(failure->area, "network");
  EXPECT_EQ(failure->name, "clock skew");
  EXPECT_NE(failure->detail.find("behind the coordinator's"), std::string::npos) << failure->detail;
  EXPECT_EQ(std::count_if(checks.begin(), checks.end(), [](const SiteCheck& c) { return !c.ok; }),
            1);
}

TEST_F(SiteCheckTest, EachProblemIsNamed) {
  struct Case {
    const char* what;
    std::function<void(SiteConfig*)> change;
    std::time_t now;
    const char* area;
    const char* says;
  };
  const std::string other_ca = (dir_.path() / "other").string();
  const std::vector<Case> cases = {
      {"missing data path",
       [](SiteConfig* s) { s->data.path = "/nonexistent/pneumonia.npz"; }, 0, "data",
       "/nonexistent/pneumonia.npz"},
      {"certificate from another CA",
       [&](SiteConfig* s) {
         const KeyAndCert ca = CreateCa("other-ca", 2);
         CertificateRequest r;
         r.common_name = "site-1";
         r.validity_days = 1;
         const KeyAndCert cert = IssueCertificate(ca, r);
         fs::create_directories(other_ca);
         std::ofstream(other_ca + "/site-1.pem") << cert.cert_pem;
         std::ofstream(other_ca + "/site-1.key") << cert.key_pem;
         s->tls.cert = other_ca + "/site-1.pem";
         s->tls.key = other_ca + "/site-1.key";
       },
       0, "tls", "not issued by the federation CA"},
      {"expired certificate", {}, std::time(nullptr) + 400 * 86400, "tls", "expired"},
      {"wrong coordinator address",
       [](SiteConfig* s) { s->coordinator_address = "no-such-host.invalid:7443"; }, 0,
       "network", "cannot resolve no-such-host.invalid"},
      {"coordinator down",
       [](SiteConfig* s) { s->coordinator_address = "127.0.0.1:1"; }, 0, "network",
       "Connection refused"},
      {"budget spent",
       [&](SiteConfig* s) {
         s->privacy.mode = "update";
         s->privacy.clipping_norm = 1;
         s->privacy.noise_multiplier = 1;
         s->privacy.delta = 1e-5;
         s->privacy.budget_epsilon = 1;
         fs::create_directories(s->output_dir);
         // Rounds spent under a larger budget, then the budget lowered below the spend.
         PrivacyBudget earlier(s->output_dir + "/privacy_ledger.json", 100, 1e-5);
         PrivacyMechanism m;
         m.mode = PrivacyMode::kUpdate;
         m.noise_multiplier = 1;
         m.clipping_norm = 1;
         earlier.Commit(1, m);
       },
       0, "privacy", "the budget is spent"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const std::vector<SiteCheck> checks = Check(Site(c.change), c.now);
    EXPECT_FALSE(SiteReady(checks));
    const SiteCheck* failure = FirstFailure(checks);
    ASSERT_NE(failure, nullptr);
    EXPECT_EQ(failure->area, c.area) << failure->detail;
    EXPECT_NE(failure->detail.find(c.says), std::string::npos) << failure->detail;
  }
}

}  // namespace
}  // namespace fedmed
