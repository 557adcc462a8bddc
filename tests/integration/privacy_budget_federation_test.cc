// End to end: three DP-SGD sites, one of which has a budget that admits one round but not two.
// In round 2 that site declines (it says so in its log and to the coordinator), the other two
// carry the round, and the federation finishes; the coordinator's metrics show each site's
// reported epsilon, no site's ledger exceeds its budget, and the signed privacy logs they all
// left pass fedmed-audit verify, report and cross-check.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/privacy/dp_sgd_schedule.h"
#include "common/privacy/rdp_accountant.h"
#include "tests/integration/simulate_util.h"

namespace fedmed {
namespace {

using testing::TempDir;

TEST(PrivacyBudgetFederationTest, ASiteOutOfBudgetDeclinesAndTheFederationFinishesWithoutIt) {
  // The IID shards of the 4708 training images hold 1569 or 1570 images: one round of one local
  // epoch at batch 32 is 49 steps at q = 32 / n. Site 3's budget lies between what one and two
  // such rounds cost.
  const double sigma = 1.0, delta = 1e-5;
  double one = 0, two = 1e9;
  for (const int64_t n : {1569, 1570}) {
    const DpSgdSchedule s = PlanDpSgd(n, 32, 1);
    one = std::max(one, ComputeEpsilon(s.sampling_rate, sigma, s.steps, delta));
    two = std::min(two, ComputeEpsilon(s.sampling_rate, sigma, 2 * s.steps, delta));
  }
  ASSERT_LT(one, two);
  const double small_budget = (one + two) / 2;

  TempDir dir("fedmed-privacy-federation");
  std::ostringstream budgets;
  budgets.precision(17);
  budgets << "[50, 50, " << small_budget << "]";
  const std::optional<std::filesystem::path> ran = testing::RunFederation(
      dir, testing::FederationToml(/*sites=*/3, /*rounds=*/2, /*federated=*/false,
                                   "min_sites = 2\n",
                                   "[privacy]\nmode = \"dp-sgd\"\nclipping_norm = 1.0\n"
                                   "noise_multiplier = 1.0\ndelta = 1e-5\nbudget_epsilon = 50\n"
                                   "budget_epsilon_per_site = " + budgets.str() + "\n"));
  ASSERT_TRUE(ran.has_value());
  const std::filesystem::path run = *ran;
  const std::vector<nlohmann::json> rows =
      ReadJsonLines((run / "coordinator" / "metrics.jsonl").string());
  ASSERT_EQ(rows.size(), 2u) << testing::ReadFile(dir / "simulate.out");
  EXPECT_EQ(rows[0]["contributors"].size(), 3u);
  EXPECT_TRUE(rows[0]["declined"].empty());
  EXPECT_EQ(rows[1]["contributors"], nlohmann::json({"site-1", "site-2"}));
  EXPECT_EQ(rows[1]["declined"], nlohmann::json({"site-3"}));

  // The coordinator shows what each site reported having spent.
  const nlohmann::json& privacy = rows[1]["privacy"];
  ASSERT_EQ(privacy.size(), 3u) << rows[1].dump();
  EXPECT_TRUE(privacy["site-3"]["declined"].get<bool>());
  EXPECT_LE(privacy["site-3"]["epsilon_total"].get<double>(), small_budget);
  EXPECT_NEAR(privacy["site-3"]["epsilon_total"].get<double>(), one, 0.05 * one);
  EXPECT_GT(privacy["site-1"]["epsilon_total"].get<double>(), small_budget);
  EXPECT_EQ(privacy["site-1"]["mechanism"], "dp-sgd");
  EXPECT_EQ(privacy["site-1"]["delta"].get<double>(), 1e-5);

  // The site said why, in its own log; its ledger holds one round.
  const std::string site_log = testing::ReadFile((run / "site-3" / "site.log").string());
  EXPECT_NE(site_log.find("round 2: declining: privacy budget"), std::string::npos) << site_log;
  const nlohmann::json ledger =
      nlohmann::json::parse(testing::ReadFile((run / "site-3" / "privacy_ledger.json").string()));
  EXPECT_EQ(ledger["rounds"].size(), 1u);
  const std::string coordinator_log =
      testing::ReadFile((run / "coordinator" / "coordinator.log").string());
  EXPECT_NE(coordinator_log.find("site-3 declined"), std::string::npos);

  // The signed logs the federation left pass fedmed-audit: each verifies against its writer's
  // audit certificate, the recomputed spends match and stay within budget, and the sites'
  // digests match what the coordinator received.
  const std::string audit = testing::BinDir() + "/fedmed-audit";
  const std::string ca = (run / "pki" / "ca" / "ca.pem").string();
  const auto run_audit = [&](const std::vector<std::string>& args, const std::string& name) {
    std::vector<std::string> argv = {audit};
    argv.insert(argv.end(), args.begin(), args.end());
    ChildProcess process(argv, dir / name);
    const std::optional<int> rc = process.Wait(120);
    EXPECT_TRUE(rc.has_value() && *rc == 0) << name << ":\n" << testing::ReadFile(dir / name);
    return testing::ReadFile(dir / name);
  };
  std::vector<std::string> site_logs;
  for (const char* site : {"site-1", "site-2", "site-3"}) {
    const std::string log = (run / site / "privacy_log.jsonl").string();
    site_logs.push_back(log);
    const std::string out =
        run_audit({"verify", log, "--cert", (run / "pki" / "sites" / site / "audit.pem").string(),
                   "--ca", ca},
                  std::string("verify-") + site + ".out");
    EXPECT_NE(out.find("ok, "), std::string::npos) << out;
  }
  const std::string coordinator_audit = (run / "coordinator" / "audit_log.jsonl").string();
  run_audit({"verify", coordinator_audit, "--cert",
             (run / "pki" / "coordinator" / "audit.pem").string(), "--ca", ca},
            "verify-coordinator.out");
  std::vector<std::string> report = {"report"};
  report.insert(report.end(), site_logs.begin(), site_logs.end());
  EXPECT_NE(run_audit(report, "report.out").find("ok: nothing flagged"), std::string::npos);
  std::vector<std::string> cross = {"cross-check", "--coordinator", coordinator_audit};
  cross.insert(cross.end(), site_logs.begin(), site_logs.end());
  EXPECT_NE(run_audit(cross, "cross-check.out").find("ok: 5 update digests match"),
            std::string::npos);
}

}  // namespace
}  // namespace fedmed
