// fedmed-audit's checks beyond integrity: epsilon recomputed from the logged mechanisms (equal
// to the accountant's; flags for a wrong recorded epsilon and an exceeded budget), and the
// cross-check of the sites' logs against the coordinator's.
#include "common/audit/log_audit.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/crypto/pki.h"
#include "common/crypto/sha256.h"
#include "common/privacy/rdp_accountant.h"
#include "common/util/error.h"
#include "tests/audit/audit_test_util.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

using json = nlohmann::json;
using testing::IssueAuditCertificate;
using testing::TempDir;

bool AnyContains(const std::vector<std::string>& lines, const std::string& part) {
  for (const std::string& line : lines) {
    if (line.find(part) != std::string::npos) return true;
  }
  return false;
}

std::string Joined(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

struct Keys {
  KeyAndCert ca = CreateCa("audit-test-ca", 30);
  KeyAndCert coordinator = IssueAuditCertificate(ca, "demo-coordinator");
  KeyAndCert site1 = IssueAuditCertificate(ca, "site-1");
  KeyAndCert site2 = IssueAuditCertificate(ca, "site-2");
};

class LogAuditTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { keys_ = new Keys(); }
  static void TearDownTestSuite() {
    delete keys_;
    keys_ = nullptr;
  }
  static Keys* keys_;
  TempDir dir_{"fedmed-log-audit-test"};
};

Keys* LogAuditTest::keys_ = nullptr;

TEST_F(LogAuditTest, RecomputedEpsilonEqualsTheAccountants) {
  const std::string path = dir_ / "site-1.jsonl";
  const testing::WrittenSiteLog written =
      testing::WriteSiteLog(path, dir_ / "ledger.json", keys_->site1, "site-1");
  const SiteLogAudit audit = AuditSiteLog(ReadLog(path), path);
  EXPECT_TRUE(audit.ok()) << Joined(audit.flags);
  EXPECT_EQ(audit.site, "site-1");
  EXPECT_EQ(audit.entries, 20);
  EXPECT_FALSE(audit.is_coordinator);
  ASSERT_EQ(audit.rounds.size(), 12u);
  ASSERT_EQ(audit.declined.size(), 1u);
  EXPECT_EQ(audit.declined[0].recorded.round, 13);
  EXPECT_EQ(audit.budget_epsilon, 2.15);

  // Independently: the accountant composing k rounds of 80 steps at q = 0.0125, sigma = 1.1.
  const double per_round = ComputeEpsilon(0.0125, 1.1, 80, 1e-5);
  RdpAccountant accountant;
  for (size_t k = 0; k < audit.rounds.size(); ++k) {
    SCOPED_TRACE("round " + std::to_string(k + 1));
    const TrainedRoundAudit& r = audit.rounds[k];
    accountant.Compose(0.0125, 1.1, 80);
    EXPECT_EQ(r.recorded.round, static_cast<int>(k) + 1);
    EXPECT_EQ(r.recomputed_round, per_round);
    EXPECT_EQ(r.recomputed_total, accountant.Spent(1e-5).epsilon);
    // k + 1 rounds of 80 steps are (k + 1) * 80 steps of the same mechanism.
    EXPECT_NEAR(r.recomputed_total, ComputeEpsilon(0.0125, 1.1, 80 * (k + 1), 1e-5),
                1e-12 * r.recomputed_total);
    EXPECT_EQ(r.recomputed_total, written.trained[k].epsilon_total);
    EXPECT_TRUE(r.flags.empty());
  }
  EXPECT_NEAR(audit.rounds[7].recomputed_total, 1.770395265, 1e-8);  // fedmed-audit epsilon
  EXPECT_EQ(audit.epsilon_total, audit.rounds.back().recomputed_total);

  const json j = ToJson(audit);
  EXPECT_EQ(j["site"], "site-1");
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["rounds"].size(), 12u);
  EXPECT_EQ(j["rounds"][0]["recomputed_epsilon_round"].get<double>(), per_round);
  EXPECT_EQ(j["declined"][0]["round"], 13);
}

// A site log with the given trained events, as written by a valid key.
std::string WriteTrained(const TempDir& dir, const std::string& name, const KeyAndCert& key,
                         const std::vector<TrainedEvent>& events) {
  const std::string path = dir / name;
  PrivacyLogWriter log(path, key.key_pem, key.cert_pem);
  log.Append(kEventStart, {{"role", "site"}});
  for (const TrainedEvent& e : events) log.AppendTrained(e);
  return path;
}

// Three dp-sgd rounds recorded correctly (epsilon from the accountant), budget 10.
std::vector<TrainedEvent> HonestRounds(double budget = 10) {
  std::vector<TrainedEvent> events;
  RdpAccountant total;
  for (int round = 1; round <= 3; ++round) {
    TrainedEvent e = testing::DpSgdTrained(round, 0.9, 0.02, 150, 1e-5);
    total.Compose(0.02, 0.9, 150);
    e.epsilon_total = total.Spent(1e-5).epsilon;
    e.budget_epsilon = budget;
    e.update_sha256 = Sha256Hex("update " + std::to_string(round));
    events.push_back(e);
  }
  return events;
}

TEST_F(LogAuditTest, FlagsAWrongRecordedEpsilonSignedByAValidKey) {
  std::vector<TrainedEvent> events = HonestRounds();
  EXPECT_TRUE(AuditSiteLog(ReadLog(WriteTrained(dir_, "honest.jsonl", keys_->site1, events)), "")
                  .ok());

  // Within the tolerance: not flagged.
  std::vector<TrainedEvent> close = events;
  close[1].epsilon_total *= 1 + 1e-8;
  EXPECT_TRUE(
      AuditSiteLog(ReadLog(WriteTrained(dir_, "close.jsonl", keys_->site1, close)), "").ok());

  // The site logged a smaller total for round 2 (a lie, properly signed).
  std::vector<TrainedEvent> lie = events;
  lie[1].epsilon_total *= 0.9;
  const SiteLogAudit audit =
      AuditSiteLog(ReadLog(WriteTrained(dir_, "lie.jsonl", keys_->site1, lie)), "lie.jsonl");
  EXPECT_FALSE(audit.ok());
  ASSERT_EQ(audit.flags.size(), 1u) << Joined(audit.flags);
  EXPECT_TRUE(AnyContains(audit.flags, "line 3 (round 2): epsilon_total recorded"));
  EXPECT_TRUE(audit.rounds[0].flags.empty());
  EXPECT_FALSE(audit.rounds[1].flags.empty());
  EXPECT_TRUE(audit.rounds[2].flags.empty()) << "later rounds are recomputed from the mechanism";
  EXPECT_EQ(audit.rounds[1].recomputed_total, events[1].epsilon_total);

  // A wrong per-round epsilon, and a noise multiplier that does not match the recorded spend.
  std::vector<TrainedEvent> round_lie = events;
  round_lie[0].epsilon_round = 0.01;
  round_lie[2].noise_multiplier = 2.0;
  const SiteLogAudit audit2 =
      AuditSiteLog(ReadLog(WriteTrained(dir_, "lie2.jsonl", keys_->site1, round_lie)), "");
  EXPECT_TRUE(AnyContains(audit2.flags, "(round 1): epsilon_round recorded 0.01"));
  EXPECT_TRUE(AnyContains(audit2.flags, "(round 3): epsilon_round recorded"));
  EXPECT_TRUE(AnyContains(audit2.flags, "(round 3): epsilon_total recorded"));
}

TEST_F(LogAuditTest, FlagsAnExceededBudget) {
  std::vector<TrainedEvent> events = HonestRounds(/*budget=*/0);
  const double after_two = events[1].epsilon_total;
  for (TrainedEvent& e : events) e.budget_epsilon = after_two;  // the third round overspends
  const SiteLogAudit audit =
      AuditSiteLog(ReadLog(WriteTrained(dir_, "over.jsonl", keys_->site1, events)), "");
  ASSERT_EQ(audit.flags.size(), 1u) << Joined(audit.flags);
  EXPECT_TRUE(AnyContains(audit.flags, "(round 3): budget exceeded: epsilon_total"));
}

TEST_F(LogAuditTest, UpdateMechanismAndUnusableParameters) {
  TrainedEvent e;
  e.round = 1;
  e.mechanism = PrivacyMode::kUpdate;
  e.clipping_norm = 0.5;
  e.noise_multiplier = 4.0;
  e.delta = 1e-5;
  e.conversion = "classic";
  e.epsilon_round = ComputeEpsilon(1, 4.0, 1, 1e-5, RdpConversion::kClassic);
  e.epsilon_total = e.epsilon_round;
  e.budget_epsilon = 10;
  TrainedEvent odd = e;
  odd.round = 2;
  odd.mechanism = PrivacyMode::kNone;  // a site never logs "none": nothing to recompute
  const SiteLogAudit audit =
      AuditSiteLog(ReadLog(WriteTrained(dir_, "update.jsonl", keys_->site1, {e, odd})), "");
  ASSERT_EQ(audit.rounds.size(), 2u);
  EXPECT_TRUE(audit.rounds[0].flags.empty()) << Joined(audit.rounds[0].flags);
  EXPECT_EQ(audit.rounds[0].recomputed_round, e.epsilon_round);
  EXPECT_TRUE(AnyContains(audit.flags, "(round 2): cannot recompute epsilon: unknown mechanism "
                                       "\"none\" (expected \"dp-sgd\" or \"update\")"));
  EXPECT_TRUE(std::isnan(audit.rounds[1].recomputed_total));
  const json j = ToJson(audit);
  EXPECT_TRUE(j["rounds"][1]["recomputed_epsilon_total"].is_null());
  EXPECT_EQ(j["rounds"][0]["mechanism"], "update");  // by name, as in the log
  EXPECT_EQ(j["rounds"][1]["mechanism"], "none");
}

// The mechanism is read by name: "dp-sgd" and "update" as the site writes them, and a name of
// no mechanism is a malformed entry (FormatError naming the line and the name), not a guess.
TEST_F(LogAuditTest, MechanismByName) {
  TrainedEvent e = HonestRounds()[0];
  json data = ToJson(e);
  EXPECT_EQ(data["mechanism"], "dp-sgd");
  EXPECT_EQ(TrainedEventFromJson(data, "x").mechanism, PrivacyMode::kDpSgd);
  data["mechanism"] = "update";
  EXPECT_EQ(TrainedEventFromJson(data, "x").mechanism, PrivacyMode::kUpdate);
  data["mechanism"] = 1;
  EXPECT_THROW(TrainedEventFromJson(data, "x"), FormatError);

  const std::string path = dir_ / "laplace.jsonl";
  {
    PrivacyLogWriter log(path, keys_->site1.key_pem, keys_->site1.cert_pem);
    json odd = ToJson(e);
    odd["mechanism"] = "laplace";
    log.Append(kEventTrained, odd);
  }
  try {
    AuditSiteLog(ReadLog(path), path);
    FAIL() << "an entry with mechanism \"laplace\" was audited";
  } catch (const FormatError& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("line 1"), std::string::npos) << what;
    EXPECT_NE(what.find("\"laplace\" is not a privacy mechanism"), std::string::npos) << what;
  }
}

// Both sites' logs and the coordinator's, consistent.
struct Federation {
  std::string site1;
  std::string site2;
  testing::WrittenSiteLog written1;
  testing::WrittenSiteLog written2;
};

Federation WriteSites(const TempDir& dir, const Keys& keys,
                      const std::map<int, std::string>& site1_digests = {}) {
  Federation f;
  f.site1 = dir / "site-1.jsonl";
  f.site2 = dir / "site-2.jsonl";
  f.written1 = testing::WriteSiteLog(f.site1, dir / "ledger-1.json", keys.site1, "site-1",
                                     site1_digests);
  f.written2 = testing::WriteSiteLog(f.site2, dir / "ledger-2.json", keys.site2, "site-2");
  return f;
}

TEST_F(LogAuditTest, CrossCheckPassesForConsistentLogs) {
  const Federation f = WriteSites(dir_, *keys_);
  const std::string coordinator = dir_ / "coordinator.jsonl";
  testing::WriteCoordinatorLog(coordinator, keys_->coordinator,
                               {{"site-1", f.written1}, {"site-2", f.written2}});
  const CrossCheckResult r =
      CrossCheckLogs(ReadLog(coordinator), {ReadLog(f.site1), ReadLog(f.site2)});
  EXPECT_TRUE(r.ok()) << Joined(r.mismatches);
  EXPECT_EQ(r.matched, 24);
  EXPECT_EQ(r.anchored, 24);
  EXPECT_TRUE(r.notes.empty()) << Joined(r.notes);
  // The coordinator's log is a log like the others.
  EXPECT_TRUE(VerifyLog(coordinator, keys_->coordinator.cert_pem, keys_->ca.cert_pem).ok);
  EXPECT_TRUE(AuditSiteLog(ReadLog(coordinator), coordinator).is_coordinator);
}

TEST_F(LogAuditTest, CrossCheckCatchesADigestMismatchOnEitherSide) {
  const Federation f = WriteSites(dir_, *keys_);
  const std::string other = Sha256Hex("some other update");

  // The coordinator's log says it received something else from site-1 in round 4.
  testing::WrittenSiteLog altered = f.written1;
  altered.trained[3].update_sha256 = other;
  const std::string coordinator = dir_ / "coordinator.jsonl";
  testing::WriteCoordinatorLog(coordinator, keys_->coordinator,
                               {{"site-1", altered}, {"site-2", f.written2}});
  const CrossCheckResult r =
      CrossCheckLogs(ReadLog(coordinator), {ReadLog(f.site1), ReadLog(f.site2)});
  ASSERT_EQ(r.mismatches.size(), 1u) << Joined(r.mismatches);
  EXPECT_TRUE(AnyContains(r.mismatches, "round 4, site-1: the site sent update sha256 " +
                                            f.written1.trained[3].update_sha256 +
                                            ", but the coordinator recorded " + other));
  EXPECT_EQ(r.matched, 23);

  // The site's log says it sent something else in round 6 than the coordinator received.
  TempDir dir2;
  const Federation g = WriteSites(dir2, *keys_, {{6, other}});
  testing::WrittenSiteLog truth = g.written1;
  truth.trained[5].update_sha256 = Sha256Hex(testing::UpdateBytes("site-1", 6));
  const std::string coordinator2 = dir2 / "coordinator.jsonl";
  testing::WriteCoordinatorLog(coordinator2, keys_->coordinator,
                               {{"site-1", truth}, {"site-2", g.written2}});
  const CrossCheckResult r2 =
      CrossCheckLogs(ReadLog(coordinator2), {ReadLog(g.site1), ReadLog(g.site2)});
  ASSERT_EQ(r2.mismatches.size(), 1u) << Joined(r2.mismatches);
  EXPECT_TRUE(AnyContains(r2.mismatches, "round 6, site-1: the site sent update sha256 " + other +
                                             ", but the coordinator recorded " +
                                             truth.trained[5].update_sha256));
}

TEST_F(LogAuditTest, CrossCheckCatchesAnUpdateUsedWithoutTheSitesRecord) {
  const Federation f = WriteSites(dir_, *keys_);
  const std::string coordinator = dir_ / "coordinator.jsonl";
  {
    // Rounds as they happened, plus two the sites have no "trained" record of: round 13 (site-1
    // declined it) and round 14 (site-2 never mentions it).
    testing::WriteCoordinatorLog(coordinator, keys_->coordinator,
                                 {{"site-1", f.written1}, {"site-2", f.written2}});
    // Reopen and append (the writer continues the chain).
    PrivacyLogWriter log(coordinator, keys_->coordinator.key_pem, keys_->coordinator.cert_pem);
    RoundEvent r13;
    r13.round = 13;
    r13.selected = r13.contributors = {"site-1"};
    r13.received = {{"site-1", Sha256Hex("a fabricated update")}};
    log.AppendRound(r13);
    RoundEvent r14;
    r14.round = 14;
    r14.selected = {"site-2"};
    r14.contributors = {"site-2"};  // used, but no digest recorded either
    log.AppendRound(r14);
  }
  const CrossCheckResult r =
      CrossCheckLogs(ReadLog(coordinator), {ReadLog(f.site1), ReadLog(f.site2)});
  ASSERT_EQ(r.mismatches.size(), 2u) << Joined(r.mismatches);
  EXPECT_TRUE(AnyContains(r.mismatches, "round 13, site-1: the coordinator used an update"));
  EXPECT_TRUE(AnyContains(r.mismatches, "has no \"trained\" entry for this round (it declined"));
  EXPECT_TRUE(AnyContains(r.mismatches, "round 14, site-2: listed as a contributor, but the "
                                        "coordinator recorded no digest"));
}

TEST_F(LogAuditTest, CrossCheckCatchesEntriesRemovedFromTheEndOfASiteLog) {
  const Federation f = WriteSites(dir_, *keys_);
  const std::string coordinator = dir_ / "coordinator.jsonl";
  testing::WriteCoordinatorLog(coordinator, keys_->coordinator,
                               {{"site-1", f.written1}, {"site-2", f.written2}});
  // site-1's log without its last 3 entries (trained round 12, declined round 13, stop): still
  // a valid log by itself.
  std::vector<PrivacyLogEntry> cut = ReadLog(f.site1);
  cut.resize(cut.size() - 3);
  const CrossCheckResult r = CrossCheckLogs(ReadLog(coordinator), {cut, ReadLog(f.site2)});
  EXPECT_TRUE(AnyContains(r.mismatches, "round 12, site-1: the coordinator used an update"));
  EXPECT_TRUE(AnyContains(r.mismatches, "entries were removed from its end"));

  // site-1 wrote its whole log anew with its own key (the same records, a valid chain): the
  // entries are not the ones the coordinator saw.
  TempDir dir2;
  testing::WriteSiteLog(dir2 / "site-1.jsonl", dir2 / "ledger.json", keys_->site1, "site-1");
  const CrossCheckResult r2 =
      CrossCheckLogs(ReadLog(coordinator), {ReadLog(dir2 / "site-1.jsonl"), ReadLog(f.site2)});
  EXPECT_TRUE(AnyContains(r2.mismatches, "the log was rewritten")) << Joined(r2.mismatches);

  // Without log heads in the coordinator's log, an honest cut end passes silently.
  TempDir dir3;
  testing::WriteCoordinatorLog(dir3 / "c.jsonl", keys_->coordinator,
                               {{"site-1", f.written1}, {"site-2", f.written2}},
                               /*with_log_heads=*/false);
  std::vector<PrivacyLogEntry> stopless = ReadLog(f.site1);
  stopless.pop_back();
  EXPECT_TRUE(CrossCheckLogs(ReadLog(dir3 / "c.jsonl"), {stopless, ReadLog(f.site2)}).ok());
}

TEST_F(LogAuditTest, CrossCheckNotesLostUpdatesAndMissingLogs) {
  const Federation f = WriteSites(dir_, *keys_);
  testing::WrittenSiteLog partial = f.written1;
  partial.trained.pop_back();  // the coordinator never got site-1's round-12 update
  partial.trained_entries.pop_back();
  const std::string coordinator = dir_ / "coordinator.jsonl";
  testing::WriteCoordinatorLog(coordinator, keys_->coordinator,
                               {{"site-1", partial}, {"site-2", f.written2}});
  const CrossCheckResult r = CrossCheckLogs(ReadLog(coordinator), {ReadLog(f.site1)});
  EXPECT_TRUE(r.ok()) << Joined(r.mismatches);
  EXPECT_TRUE(AnyContains(r.notes, "round 12, site-1: sent an update"));
  EXPECT_TRUE(AnyContains(r.notes, "site-2: no log given"));
}

TEST(RelativeDifferenceTest, Basics) {
  EXPECT_EQ(RelativeDifference(1, 1), 0);
  EXPECT_EQ(RelativeDifference(0, 0), 0);
  EXPECT_DOUBLE_EQ(RelativeDifference(1, 2), 0.5);
  EXPECT_DOUBLE_EQ(RelativeDifference(-1, 1), 2);
  EXPECT_TRUE(std::isinf(RelativeDifference(1, INFINITY)));
  EXPECT_EQ(RelativeDifference(INFINITY, INFINITY), 0);
  EXPECT_TRUE(std::isinf(RelativeDifference(1, NAN)));
}

}  // namespace
}  // namespace fedmed
