// Resumable transfers (issue 17 item 3), end to end with the real binaries over mutual TLS: a
// TCP relay between the site and the coordinator carries the site's upload at a limited rate,
// and the test cuts it in the middle of the upload (every connection closed, new ones refused
// for several seconds). The coordinator keeps what arrived and the site's place in the round;
// once the link is back the site resends the update it kept (no second training) from the
// byte the coordinator holds, the digest of the whole is checked, and the round completes.
// About 30 s.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <vector>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/util/process.h"
#include "tests/integration/federation_util.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

using namespace std::chrono_literals;

// A TCP relay on 127.0.0.1 to `target_port`. Bytes from the client (the site) to the server
// are forwarded at `up_bytes_per_second`, the other way at `down_bytes_per_second` (0 = as
// fast as they come); Cut() closes every connection and refuses new ones (accepted, then
// closed at once) until Restore().
class CuttableRelay {
 public:
  CuttableRelay(int target_port, double up_bytes_per_second, double down_bytes_per_second = 0)
      : target_port_(target_port), up_rate_(up_bytes_per_second),
        down_rate_(down_bytes_per_second) {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(listener_, 16) != 0) {
      throw std::runtime_error("relay: cannot listen");
    }
    socklen_t len = sizeof(addr);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }

  ~CuttableRelay() {
    stopping_ = true;
    shutdown(listener_, SHUT_RDWR);
    close(listener_);
    CloseAll();
    accept_thread_.join();
    std::lock_guard<std::mutex> lock(mu_);
    for (std::thread& t : pumps_) t.join();
  }

  int port() const { return port_; }
  int64_t up_bytes() const { return up_bytes_; }
  int64_t down_bytes() const { return down_bytes_; }
  int refused() const { return refused_; }

  void Cut() {
    cut_ = true;
    CloseAll();
  }
  void Restore() { cut_ = false; }

 private:
  void CloseAll() {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : open_) shutdown(fd, SHUT_RDWR);
  }

  void AcceptLoop() {
    while (!stopping_) {
      const int client = accept(listener_, nullptr, nullptr);
      if (client < 0) continue;
      if (cut_) {
        ++refused_;
        close(client);
        continue;
      }
      const int server = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<uint16_t>(target_port_));
      if (connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        close(server);
        close(client);
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      open_.insert(client);
      open_.insert(server);
      auto both_done = std::make_shared<std::atomic<int>>(0);
      pumps_.emplace_back([this, client, server, both_done] { Pump(client, server, true, both_done); });
      pumps_.emplace_back([this, client, server, both_done] { Pump(server, client, false, both_done); });
    }
  }

  // Copies `from` to `to` until either side ends; the second pump to end closes both.
  void Pump(int from, int to, bool up, std::shared_ptr<std::atomic<int>> done) {
    using Clock = std::chrono::steady_clock;
    std::vector<char> buffer(16 * 1024);
    Clock::time_point next = Clock::now();
    while (true) {
      const ssize_t n = read(from, buffer.data(), buffer.size());
      if (n <= 0 || cut_) break;
      // MSG_NOSIGNAL: a peer that closed its end ends the pump, not the test (SIGPIPE).
      if (send(to, buffer.data(), static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
      (up ? up_bytes_ : down_bytes_) += n;
      const double rate = up ? up_rate_ : down_rate_;
      if (rate > 0) {
        // The rate limit, with no burst beyond one buffer: each buffer takes n / rate s.
        next = std::max(next, Clock::now()) +
               std::chrono::duration_cast<Clock::duration>(
                   std::chrono::duration<double>(static_cast<double>(n) / rate));
        std::this_thread::sleep_until(next);
      }
    }
    shutdown(from, SHUT_RDWR);
    shutdown(to, SHUT_RDWR);
    if (++*done == 2) {
      std::lock_guard<std::mutex> lock(mu_);
      open_.erase(from);
      open_.erase(to);
      close(from);
      close(to);
    }
  }

  const int target_port_;
  const double up_rate_;
  const double down_rate_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> cut_{false};
  std::atomic<int64_t> up_bytes_{0};
  std::atomic<int64_t> down_bytes_{0};
  std::atomic<int> refused_{0};
  std::mutex mu_;
  std::set<int> open_;
  std::vector<std::thread> pumps_;
  std::thread accept_thread_;
};

int CountOf(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// One site behind a CuttableRelay to a coordinator of one round (min_sites 1, [transport]
// resume_seconds 60), both real processes.
class ResumeTransferTest : public ::testing::Test {
 protected:
  // Starts the coordinator, a relay to it with these rates, and the site behind the relay.
  void Start(double up_rate, double down_rate);
  // Cuts the relay for `seconds` once `bytes()` reaches `at`, then waits for both processes to
  // end well; returns round 1's metrics.jsonl row.
  nlohmann::json CutAndFinish(const std::function<int64_t()>& bytes, int64_t at, double seconds);

  testing::TempDir dir_{"fedmed-resume"};
  std::unique_ptr<ChildProcess> coordinator_, site_;
  std::unique_ptr<CuttableRelay> relay_;
};

void ResumeTransferTest::Start(double up_rate, double down_rate) {
  const testing::TempDir& dir = dir_;
  const ProvisionResult pki = testing::ProvisionLoopbackFederation(dir / "federation", {"site-1"});

  CoordinatorConfig coordinator =
      testing::LoopbackCoordinatorConfig(pki, dir / "coordinator", /*held_out_set=*/false);
  coordinator.federated_evaluation = false;
  coordinator.rounds = 1;
  coordinator.min_sites = 1;
  coordinator.round_deadline_seconds = 120;
  coordinator.training.local_epochs = 1;
  coordinator.resume_seconds = 60;
  std::ofstream(dir / "coordinator.toml") << RenderCoordinatorConfig(coordinator);
  coordinator_ =
      testing::StartCoordinatorProcess(dir / "coordinator.toml", dir / "coordinator.out");
  const int port = testing::WaitForCoordinatorPort(dir / "coordinator/status.json");
  ASSERT_GT(port, 0) << "the coordinator did not publish its port";

  relay_ = std::make_unique<CuttableRelay>(port, up_rate, down_rate);
  SiteConfig site = testing::LoopbackSiteConfig(pki, "site-1", relay_->port(), dir / "site-1");
  site.data.partition = "iid";
  site.data.num_shards = 8;
  site.backoff_initial_seconds = 0.2;
  site.backoff_max_seconds = 1.0;
  site_ = testing::StartSiteProcess(site, dir.path(), "site");
}

nlohmann::json ResumeTransferTest::CutAndFinish(const std::function<int64_t()>& bytes,
                                                int64_t at, double seconds) {
  const testing::TempDir& dir = dir_;
  const auto until = std::chrono::steady_clock::now() + 90s;
  while (bytes() < at && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_GE(bytes(), at) << testing::ReadFile(dir / "site-1/site.log");
  relay_->Cut();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  EXPECT_GT(relay_->refused(), 0);  // the site retried meanwhile and was refused
  relay_->Restore();
  const std::optional<int> coordinator_exit = coordinator_->Wait(90);
  EXPECT_EQ(coordinator_exit, std::optional<int>(0))
      << testing::ReadFile(dir / "coordinator/coordinator.log");
  EXPECT_EQ(site_->Wait(30), std::optional<int>(0)) << testing::ReadFile(dir / "site-1/site.log");
  const std::string metrics = testing::ReadFile(dir / "coordinator/metrics.jsonl");
  if (metrics.empty()) return nlohmann::json::object();
  return nlohmann::json::parse(metrics.substr(0, metrics.find('\n')));
}

TEST_F(ResumeTransferTest, UploadCutMidwayResumesFromTheKeptBytesWithoutRetraining) {
  // The cnn's update is 4.8 MB: at 3 MB/s its upload takes about 1.6 s, and the cut comes when
  // half of it went through (nothing else the site sends comes close to 1 MB).
  Start(3e6, 0);
  const nlohmann::json row = CutAndFinish([this] { return relay_->up_bytes(); }, 2'400'000, 8);
  // The round counted the site's update, which came in a stream that started at a nonzero byte,
  // in its first attempt: the site kept its place.
  EXPECT_EQ(row["contributors"], nlohmann::json::array({"site-1"})) << row.dump();
  EXPECT_EQ(row["attempt"], 1) << row.dump();
  ASSERT_TRUE(row["resumed_uploads"].contains("site-1")) << row.dump();
  const int64_t offset = row["resumed_uploads"]["site-1"].get<int64_t>();
  EXPECT_GT(offset, 0);
  EXPECT_LT(offset, row["bytes"]["up"].get<int64_t>());
  // The site trained once and sent the update it kept.
  const std::string site_log = testing::ReadFile(dir_ / "site-1/site.log");
  EXPECT_EQ(CountOf(site_log, "round 1: training"), 1) << site_log;
  EXPECT_EQ(CountOf(site_log, "update sent again (resumed at byte " + std::to_string(offset)), 1)
      << site_log;
}

// The global model's download cut half-way: the site keeps the bytes that arrived and asks for
// the rest. (Here the coordinator's handler has handed the whole model to the socket buffers
// before the cut, so for it the download ended and the site is gone when its connection
// breaks: the round's next attempt selects it again, and its download resumes there.)
TEST_F(ResumeTransferTest, DownloadCutMidwayResumesFromTheBytesTheSiteHas) {
  Start(0, 3e6);
  const nlohmann::json row = CutAndFinish([this] { return relay_->down_bytes(); }, 2'400'000, 8);
  EXPECT_EQ(row["contributors"], nlohmann::json::array({"site-1"})) << row.dump();
  const std::string log = testing::ReadFile(dir_ / "coordinator/coordinator.log");
  EXPECT_EQ(CountOf(log, "download of global model version 0 by site-1 resumed at byte "), 1)
      << log;
  EXPECT_EQ(CountOf(testing::ReadFile(dir_ / "site-1/site.log"), "round 1: training"), 1);
}

}  // namespace
}  // namespace fedmed
