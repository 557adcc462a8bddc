// fedmed-admin status's table (tools/admin/admin_table.h) from a fixed /api/status document.
#include "tools/admin/admin_table.h"

#include <gtest/gtest.h>

#include <string>

#include "common/util/error.h"

namespace fedmed {
namespace {

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

constexpr const char* kStatus = R"({
  "federation": "fedmed", "phase": "paused", "round": 2, "total_rounds": 7, "attempt": 1,
  "stage": "paused", "elapsed_seconds": 53.2, "round_elapsed_seconds": 23, "eta_seconds": 83,
  "now_unix": 1800000000,
  "sites": [
    {"name": "site-1", "state": "registered", "last_seen_unix": 1799999999,
     "rounds_contributed": 2, "last_update_bytes": 4796564, "last_update_norm": 1.4671,
     "privacy": {"mechanism": "dp-sgd", "epsilon_spent": 1.25, "epsilon_budget": 8, "delta": 1e-5},
     "software_version": "fedmed 0.1.0", "certificate_not_after_unix": 1828396800},
    {"name": "site-2", "state": "not_registered", "last_seen_unix": null,
     "rounds_contributed": 0, "last_update_bytes": 0, "last_update_norm": null,
     "privacy": null, "software_version": "", "certificate_not_after_unix": null}],
  "events": [{"unix_time": 1799999990, "site": "site-2", "round": 2, "kind": "gone",
              "reason": "", "detail": "its session stream ended"}],
  "rounds": [{"round": 2, "global": {"auc": 0.9172, "accuracy": 0.8157, "loss": 0.4761},
              "federated": {"auc": 0.9167, "accuracy": 0.81, "loss": 0.5}}],
  "counters": {}
})";

TEST(AdminTableTest, ShowsTheFederationEachSiteAndTheLatestEvents) {
  const std::string table = FormatStatusTable(kStatus);
  std::cout << table;
  EXPECT_TRUE(Contains(table, "phase       paused (round 2 of 7)"));
  EXPECT_TRUE(Contains(table, "time left about 1m23s"));
  EXPECT_TRUE(Contains(table, "round 2: held-out AUC 0.9172, ACC 0.8157, loss 0.4761"));
  EXPECT_TRUE(Contains(table, "1.25 / 8.00 (dp-sgd)"));
  EXPECT_TRUE(Contains(table, "4.8 MB"));
  EXPECT_TRUE(Contains(table, "2027-12-10"));  // 1828396800 = 2027-12-10 00:00:00 UTC
  EXPECT_TRUE(Contains(table, "site-2  not_registered  never"));
  EXPECT_TRUE(Contains(table, "10s ago  site-2  round 2  gone  its session stream ended"));
}

TEST(AdminTableTest, ADocumentWithoutTheFieldsIsAFormatError) {
  EXPECT_THROW(FormatStatusTable("{\"federation\": \"x\"}"), FormatError);
  EXPECT_THROW(FormatStatusTable("not json"), FormatError);
}

}  // namespace
}  // namespace fedmed
