// What the round-flow tests (round_flow_test, round_overlap_test, on the domain layer with a
// ManualEventLoop) share: asking for a task, sending an update, and reading the rows the round
// report wrote.
#ifndef FEDMED_TESTS_COORDINATOR_FLOW_TEST_UTIL_H_
#define FEDMED_TESTS_COORDINATOR_FLOW_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/crypto/sha256.h"
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

// Offers `bytes` as `site`'s plain update for `task`, as the service does: the header first
// (CheckUpdate), then the data (AcceptUpdate). `train_seconds`: what the site says its local
// training took.
inline Status SendUpdateBytes(RoundFlow& flow, const std::string& site, const std::string& session,
                              const SiteTask& task, const std::string& bytes, int64_t samples,
                              double train_seconds = 0) {
  UpdateHeader h;
  h.session_id = session;
  h.size_bytes = static_cast<int64_t>(bytes.size());
  h.sha256 = Sha256Hex(bytes);
  h.info.round = task.round;
  h.info.base_version = task.model.version;
  h.info.num_samples = samples;
  h.info.train_seconds = train_seconds;
  if (Status s = flow.CheckUpdate(site, h); !s.ok()) return s;
  return flow.AcceptUpdate(site, h, bytes, 0.0);
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
