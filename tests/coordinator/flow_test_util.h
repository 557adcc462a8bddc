// What the round-flow tests (round_flow_test, round_overlap_test, on the domain layer with a
// ManualEventLoop) share: asking for a task, and reading the rows the round report wrote.
#ifndef FEDMED_TESTS_COORDINATOR_FLOW_TEST_UTIL_H_
#define FEDMED_TESTS_COORDINATOR_FLOW_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "coordinator/round_flow.h"

namespace fedmed {
namespace testing {

// `site`'s task now (a poll that does not wait); a failed poll is a test failure.
inline SiteTask PollNow(RoundFlow& flow, const std::string& site, const std::string& session) {
  SiteTask task;
  const Status s = flow.Poll(site, session, 0, &task);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return task;
}

// The objects of a JSON-lines file (metrics.jsonl), in order; none when it is missing.
inline std::vector<nlohmann::json> ReadJsonRows(const std::filesystem::path& path) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

}  // namespace testing
}  // namespace fedmed

#endif  // FEDMED_TESTS_COORDINATOR_FLOW_TEST_UTIL_H_
