// Helpers of the tests that stop and restart a real coordinator on its output_dir
// (coordinator_crash_test, full_disk_test): ports, status.json fields and metrics rows.
#ifndef FEDMED_TESTS_INTEGRATION_RESTART_UTIL_H_
#define FEDMED_TESTS_INTEGRATION_RESTART_UTIL_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/util/process.h"
#include "tests/test_util.h"

namespace fedmed::testing {

// A TCP port free on 127.0.0.1 now (a restarted coordinator must keep its address, so port 0
// will not do); 0 when none could be had.
inline int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// Whether something accepts TCP connections on 127.0.0.1:`port`.
inline bool Listening(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

// The integer `key` of the coordinator's status.json; -1 while it cannot be read or lacks it.
inline int StatusField(const std::filesystem::path& status_file, const std::string& key) {
  try {
    const nlohmann::json j = nlohmann::json::parse(ReadFile(status_file.string()));
    return j.contains(key) && j.at(key).is_number_integer() ? j.at(key).get<int>() : -1;
  } catch (const std::exception&) {
    return -1;
  }
}

// The round of each row of metrics.csv (`csv`: the first column after the header) or
// metrics.jsonl ("round").
inline std::vector<int> MetricsRounds(const std::filesystem::path& path, bool csv) {
  std::vector<int> rounds;
  std::ifstream in(path);
  std::string line;
  if (csv) std::getline(in, line);
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    rounds.push_back(csv ? std::stoi(line) : nlohmann::json::parse(line).at("round").get<int>());
  }
  return rounds;
}

// Seconds from a restarted `coordinator` listening on 127.0.0.1:`port` to `sites` sites
// registered with it (its status.json's "registered"; remove the file before the start, so that
// the last run's is not read), polling every 10 ms, at most 60 s in all or until the process
// ends.
inline double SecondsUntilRegistered(int port, const std::filesystem::path& status_file, int sites,
                                     ChildProcess& coordinator) {
  using Clock = std::chrono::steady_clock;
  const auto give_up = Clock::now() + std::chrono::seconds(60);
  while (!Listening(port) && !coordinator.Poll() && Clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto listening = Clock::now();
  while (StatusField(status_file, "registered") < sites && !coordinator.Poll() &&
         Clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return std::chrono::duration<double>(Clock::now() - listening).count();
}

}  // namespace fedmed::testing

#endif  // FEDMED_TESTS_INTEGRATION_RESTART_UTIL_H_
