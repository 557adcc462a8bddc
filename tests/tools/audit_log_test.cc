// fedmed-audit verify / report / cross-check: the binary as a privacy officer runs it, on logs
// signed with the audit keys fedmed-pki provisioned.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "common/audit/privacy_log.h"
#include "common/crypto/pki.h"
#include "common/privacy/rdp_accountant.h"
#include "common/util/file_io.h"
#include "tests/audit/audit_test_util.h"
#include "tests/test_util.h"
#include "tools/pki/provision.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct RunResult {
  int exit_status = -1;
  std::string output;
};

// Runs `env fedmed-audit args` through the shell, stdout and stderr together.
RunResult RunAudit(const std::string& args, const std::string& env = "") {
  RunResult result;
  result.output = testing::RunCommand(
      env + " '" + testing::BinDir() + "/fedmed-audit' " + args + " 2>&1", &result.exit_status);
  return result;
}

bool HasMatplotlib() {
  return std::system("/usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1") == 0;
}

std::string Quote(const std::string& path) { return "'" + path + "'"; }

// A provisioned federation (demo: site-1, site-2) with both sites' logs and the coordinator's,
// signed with the audit keys fedmed-pki wrote.
class AuditLogToolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir("fedmed-audit-log-tool-test");
    ProvisionOptions options;
    options.out_dir = *dir_ / "federation";
    options.federation = "demo";
    options.site_names = {"site-1", "site-2"};
    const ProvisionResult result = ProvisionFederation(options);
    const fs::path out(options.out_dir);
    const auto party = [&](const fs::path& d) {
      return KeyAndCert{ReadFile((d / kAuditKeyFile).string(), "key"),
                        ReadFile((d / kAuditCertFile).string(), "cert")};
    };
    const testing::WrittenSiteLog w1 = testing::WriteSiteLog(
        *dir_ / "site-1.jsonl", *dir_ / "l1.json", party(out / "sites/site-1"), "site-1");
    const testing::WrittenSiteLog w2 = testing::WriteSiteLog(
        *dir_ / "site-2.jsonl", *dir_ / "l2.json", party(out / "sites/site-2"), "site-2");
    testing::WriteCoordinatorLog(*dir_ / "coordinator.jsonl", party(out / "coordinator"),
                                 {{"site-1", w1}, {"site-2", w2}});
    (void)result;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string Path(const std::string& name) { return Quote(*dir_ / name); }
  static std::string Fed(const std::string& name) { return Quote(*dir_ / ("federation/" + name)); }

  static testing::TempDir* dir_;
};

testing::TempDir* AuditLogToolTest::dir_ = nullptr;

TEST_F(AuditLogToolTest, VerifyPrintsOkOrTheFirstBrokenLine) {
  RunResult r = RunAudit("verify " + Path("site-1.jsonl") + " --cert " +
                         Fed("sites/site-1/audit.pem") + " --ca " + Fed("ca/ca.pem"));
  EXPECT_EQ(r.exit_status, 0) << r.output;
  EXPECT_EQ(r.output, "ok, 20 entries\n");
  r = RunAudit("verify " + Path("coordinator.jsonl") + " --cert " +
               Fed("coordinator/audit.pem"));
  EXPECT_EQ(r.exit_status, 0) << r.output;
  EXPECT_EQ(r.output, "ok, 14 entries\n");

  // One byte changed in line 7.
  std::string content = testing::ReadFile(*dir_ / "site-1.jsonl");
  size_t pos = 0;
  for (int line = 1; line < 7; ++line) pos = content.find('\n', pos) + 1;
  pos = content.find("\"noise_multiplier\":1.1", pos) + 19;
  content[pos] = '2';  // sigma 1.1 -> 2.1
  { std::ofstream(*dir_ / "tampered.jsonl", std::ios::binary) << content; }
  r = RunAudit("verify " + Path("tampered.jsonl") + " --cert " + Fed("sites/site-1/audit.pem"));
  EXPECT_EQ(r.exit_status, 1) << r.output;
  EXPECT_EQ(r.output.rfind("line 7: signature does not verify", 0), 0u) << r.output;

  // The other site's certificate; a TLS certificate; another CA.
  r = RunAudit("verify " + Path("site-1.jsonl") + " --cert " + Fed("sites/site-2/audit.pem"));
  EXPECT_EQ(r.exit_status, 1) << r.output;
  EXPECT_EQ(r.output.rfind("line 1: writer is \"site-1\", expected \"site-2\"", 0), 0u)
      << r.output;
  r = RunAudit("verify " + Path("site-1.jsonl") + " --cert " + Fed("sites/site-1/site-1.pem"));
  EXPECT_EQ(r.exit_status, 1) << r.output;
  EXPECT_EQ(r.output.rfind("certificate: ", 0), 0u) << r.output;
  const KeyAndCert other = CreateCa("other-ca", 30);
  { std::ofstream(*dir_ / "other-ca.pem") << other.cert_pem; }
  r = RunAudit("verify " + Path("site-1.jsonl") + " --cert " + Fed("sites/site-1/audit.pem") +
               " --ca " + Path("other-ca.pem"));
  EXPECT_EQ(r.exit_status, 1) << r.output;
  EXPECT_NE(r.output.find("not issued by the federation CA"), std::string::npos) << r.output;

  r = RunAudit("verify " + Path("no-such.jsonl") + " --cert " + Fed("sites/site-1/audit.pem"));
  EXPECT_EQ(r.exit_status, 1) << r.output;
  EXPECT_NE(r.output.find("no-such.jsonl"), std::string::npos) << r.output;
  r = RunAudit("verify " + Path("site-1.jsonl"));
  EXPECT_EQ(r.exit_status, 2) << r.output;
}

TEST_F(AuditLogToolTest, ReportRecomputesEpsilonAndFlagsProblems) {
  RunResult r = RunAudit("report " + Path("site-1.jsonl") + " " + Path("site-2.jsonl"));
  EXPECT_EQ(r.exit_status, 0) << r.output;
  EXPECT_NE(r.output.find("ok: nothing flagged"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("declined: privacy budget"), std::string::npos) << r.output;
  std::printf("%s", r.output.c_str());

  r = RunAudit("report --json " + Path("site-1.jsonl") + " " + Path("coordinator.jsonl"));
  EXPECT_EQ(r.exit_status, 0) << r.output;
  const json doc = json::parse(r.output);
  EXPECT_EQ(doc["ok"], true);
  ASSERT_EQ(doc["sites"].size(), 2u);
  EXPECT_EQ(doc["sites"][1]["is_coordinator"], true);
  const json& rounds = doc["sites"][0]["rounds"];
  ASSERT_EQ(rounds.size(), 12u);
  EXPECT_EQ(rounds[0]["recomputed_epsilon_round"].get<double>(),
            ComputeEpsilon(0.0125, 1.1, 80, 1e-5));
  EXPECT_NEAR(rounds[11]["recomputed_epsilon_total"].get<double>(),
              ComputeEpsilon(0.0125, 1.1, 12 * 80, 1e-5), 1e-10);

  // A site that logged less than it spent, with its valid key.
  const fs::path site1 = dir_->path() / "federation/sites/site-1";
  std::vector<TrainedEvent> events;
  TrainedEvent e = testing::DpSgdTrained(1, 1.1, 0.0125, 80, 1e-5);
  e.epsilon_total = e.epsilon_round / 2;
  e.budget_epsilon = 0.5;
  {
    auto log = PrivacyLogWriter::OpenWithFiles(*dir_ / "liar.jsonl",
                                               (site1 / kAuditKeyFile).string(),
                                               (site1 / kAuditCertFile).string());
    log->AppendTrained(e);
  }
  r = RunAudit("report " + Path("liar.jsonl"));
  EXPECT_EQ(r.exit_status, 1) << r.output;
  EXPECT_NE(r.output.find("epsilon_total recorded"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("budget exceeded"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("FLAGGED: 2 problem(s)"), std::string::npos) << r.output;

  // A log that is not one.
  { std::ofstream(*dir_ / "junk.jsonl") << "hello\n"; }
  r = RunAudit("report " + Path("site-1.jsonl") + " " + Path("junk.jsonl"));
  EXPECT_EQ(r.exit_status, 1) << r.output;
  EXPECT_NE(r.output.find("junk.jsonl: line 1: not JSON"), std::string::npos) << r.output;
}

TEST_F(AuditLogToolTest, ReportPlotsCumulativeEpsilon) {
  const std::string png = *dir_ / "epsilon.png";
  const RunResult r = RunAudit("report " + Path("site-1.jsonl") + " " + Path("site-2.jsonl") +
                               " --plot " + Quote(png));
  if (!HasMatplotlib()) {
    EXPECT_EQ(r.exit_status, 1) << r.output;
    EXPECT_NE(r.output.find("matplotlib is missing"), std::string::npos) << r.output;
    GTEST_SKIP() << "python3-matplotlib is not installed: checked the error message only";
  }
  EXPECT_EQ(r.exit_status, 0) << r.output;
  const std::string bytes = testing::ReadFile(png);
  ASSERT_GT(bytes.size(), 10000u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

TEST_F(AuditLogToolTest, ReportPlotExplainsAMissingMatplotlib) {
  // An interpreter that behaves as python3 without matplotlib does under plot_epsilon.py.
  const std::string fake = *dir_ / "fake-python";
  { std::ofstream(fake) << "#!/bin/sh\necho 'matplotlib is not installed' >&2\nexit 3\n"; }
  fs::permissions(fake, fs::perms::owner_all);
  const RunResult r = RunAudit("report " + Path("site-1.jsonl") + " --plot " +
                                   Path("never.png"),
                               "FEDMED_PYTHON=" + Quote(fake));
  EXPECT_EQ(r.exit_status, 1) << r.output;
  EXPECT_NE(r.output.find("matplotlib is missing"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("python3-matplotlib"), std::string::npos) << r.output;
}

TEST_F(AuditLogToolTest, CrossCheckComparesDigests) {
  RunResult r = RunAudit("cross-check --coordinator " + Path("coordinator.jsonl") + " " +
                         Path("site-1.jsonl") + " " + Path("site-2.jsonl"));
  EXPECT_EQ(r.exit_status, 0) << r.output;
  EXPECT_EQ(r.output, "ok: 24 update digests match between the coordinator and 2 site log(s)\n");

  // The coordinator recorded another digest for site-2 in round 5.
  const fs::path coordinator_dir = dir_->path() / "federation/coordinator";
  {
    auto log = PrivacyLogWriter::OpenWithFiles(*dir_ / "coordinator-2.jsonl",
                                               (coordinator_dir / kAuditKeyFile).string(),
                                               (coordinator_dir / kAuditCertFile).string());
    for (const PrivacyLogEntry& entry : ReadLog(*dir_ / "coordinator.jsonl")) {
      json data = entry.data;
      if (entry.event == kEventRound && data["round"] == 5) {
        data["received"]["site-2"] = std::string(64, 'a');
      }
      log->Append(entry.event, data);
    }
  }
  r = RunAudit("cross-check --coordinator " + Path("coordinator-2.jsonl") + " " +
               Path("site-1.jsonl") + " " + Path("site-2.jsonl"));
  EXPECT_EQ(r.exit_status, 1) << r.output;
  EXPECT_NE(r.output.find("mismatch: round 5, site-2: the site sent update sha256 "),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("FAILED: 1 mismatch(es)"), std::string::npos) << r.output;

  // Logs given the wrong way round.
  r = RunAudit("cross-check --coordinator " + Path("site-1.jsonl") + " " +
               Path("coordinator.jsonl"));
  EXPECT_EQ(r.exit_status, 2) << r.output;
  EXPECT_NE(r.output.find("not the coordinator's"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace fedmed
