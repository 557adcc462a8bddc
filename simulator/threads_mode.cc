#include "simulator/threads_mode.h"

#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "common/data/medmnist.h"
#include "common/data/site_data_config.h"
#include "common/util/error.h"
#include "coordinator/app/coordinator.h"
#include "site_agent/compute_slots.h"
#include "site_agent/site_agent.h"
#include "simulator/event_waiter.h"
#include "simulator/run_output.h"

namespace fedmed {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// Stack of each site thread in threads mode. Only the pages a thread touches count toward RSS;
// the explicit size keeps a large `ulimit -s` from reserving more per thread.
constexpr std::size_t kSiteThreadStack = 8u << 20;

// This process's peak resident set size so far, in MiB.
double SelfPeakRssMib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

// A thread with an explicit stack size (std::thread has no way to set one).
class StackThread {
 public:
  StackThread(std::size_t stack_bytes, std::function<void()> body)
      : body_(std::make_unique<std::function<void()>>(std::move(body))) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, stack_bytes);
    const int rc = pthread_create(&thread_, &attr, &StackThread::Main, body_.get());
    pthread_attr_destroy(&attr);
    if (rc != 0) throw Error("cannot start a site thread: " + std::string(std::strerror(rc)));
    started_ = true;
  }
  ~StackThread() { Join(); }
  StackThread(const StackThread&) = delete;
  StackThread& operator=(const StackThread&) = delete;

  void Join() {
    if (started_) pthread_join(thread_, nullptr);
    started_ = false;
  }

 private:
  static void* Main(void* arg) {
    (*static_cast<std::function<void()>*>(arg))();
    return nullptr;
  }
  std::unique_ptr<std::function<void()>> body_;
  pthread_t thread_{};
  bool started_ = false;
};

// Sends this process's stderr (where every in-process coordinator and site logger also writes)
// to a file while it lives, so that N sites' log lines do not bury the progress display.
class StderrToFile {
 public:
  explicit StderrToFile(const fs::path& file) {
    fs::create_directories(file.parent_path());
    std::fflush(stderr);
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw Error("cannot open " + file.string() + ": " + std::strerror(errno));
    saved_ = ::dup(STDERR_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  ~StderrToFile() {
    std::fflush(stderr);
    if (saved_ >= 0) {
      ::dup2(saved_, STDERR_FILENO);
      ::close(saved_);
    }
  }
  StderrToFile(const StderrToFile&) = delete;
  StderrToFile& operator=(const StderrToFile&) = delete;

 private:
  int saved_ = -1;
};

}  // namespace

ModeOutcome RunThreads(const SimulationConfig& config, const PreparedRun& p,
                       const std::string& data_root, LoadedFiles* files, std::ostream& progress) {
  ModeOutcome outcome;
  const fs::path coord_dir = p.run_dir / "coordinator";
  const fs::path log_file = p.run_dir / "logs" / "federation.out";
  const int slots = ComputeThreads(config);
  // glibc gives each new thread that allocates its own malloc arena, up to 8 per core, and an
  // arena keeps the memory it once held: with hundreds of site, io and gRPC threads, each
  // passing 4.8 MB models through, that retained memory grows with every site. A few arenas
  // (the compute threads do the heavy allocating) keep the peak RSS close to what is live.
  // Process-wide and for the rest of the process's life; set before the threads start.
  mallopt(M_ARENA_MAX, std::max(4, slots + 2));
  // Every logger of this process writes to stderr as well as to its own file.
  StderrToFile quiet(log_file);

  Coordinator::Options coord_options;
  coord_options.handle_signals = false;  // the progress loop handles SIGINT/SIGTERM
  coord_options.data_root = data_root;
  auto coordinator = std::make_unique<Coordinator>(
      LoadCoordinatorConfig(p.provisioned.coordinator_config), coord_options);
  const int port = coordinator->Start();
  if (config.status) progress << "status page: " << StatusPageUrl(p) << std::endl;
  // Woken when a file of the coordinator's folder is written and when the coordinator's or a
  // site's thread ends.
  EventWaiter wake;
  wake.WatchDirectory(coord_dir);
  std::atomic<bool> coord_done{false};
  int coord_status = 2;
  StackThread coord_thread(kSiteThreadStack, [&] {
    try {
      coord_status = coordinator->Run();
    } catch (const std::exception& e) {
      spdlog::error("coordinator: {}", e.what());
    }
    coord_done = true;
    wake.Notify();
  });

  // The sites: one shared compute pool; every file loaded once, shared read-only.
  auto compute = std::make_shared<ComputeSlots>(slots);
  std::vector<std::unique_ptr<SiteAgent>> agents;
  std::unique_ptr<std::atomic<bool>[]> site_done(new std::atomic<bool>[config.sites]);
  std::vector<int> site_status(static_cast<size_t>(config.sites), 2);
  std::vector<std::unique_ptr<StackThread>> threads;
  auto stop_all = [&] {
    coordinator->Stop();
    for (auto& a : agents) a->Stop();
  };
  try {
    for (int k = 1; k <= config.sites; ++k) {
      const SiteConfig site = SiteConfigFor(config, p, k, port);
      SiteAgent::Options options;
      options.data_root = data_root;
      if (const auto it = files->find(site.data.path);
          it != files->end() && ParseDataFormat(site.data.format) == DataFormat::kMedMnist) {
        options.data = it->second;  // shared; other formats are loaded by the site itself
      }
      options.compute_slots = compute;
      options.keep_global_model = false;  // 4.8 MB (cnn) per site between tasks otherwise
      options.kept_updates = 1;           // the coordinator cannot restart without the sites
      agents.push_back(std::make_unique<SiteAgent>(site, std::move(options)));
    }
  } catch (...) {
    coordinator->Stop();
    coord_thread.Join();
    throw;
  }
  // Each agent holds its own shard now; the files are no longer needed.
  files->clear();
  if (auto log = spdlog::get("coordinator")) spdlog::set_default_logger(log);
  for (int k = 0; k < config.sites; ++k) {
    site_done[k] = false;
    threads.push_back(std::make_unique<StackThread>(kSiteThreadStack, [&, k] {
      site_status[static_cast<size_t>(k)] = agents[static_cast<size_t>(k)]->Run(false);
      site_done[k] = true;
      wake.Notify();
    }));
  }
  progress << config.sites << " site threads started in this process; federation '" << config.name
           << "' on 127.0.0.1:" << port << " over mutual TLS, " << config.coordinator.rounds
           << " rounds, at most " << slots << " local trainings at a time (logs: "
           << log_file.string() << ")" << std::endl;

  RunningFederation federation;
  federation.wake = &wake;
  federation.poll_coordinator = [&]() -> std::optional<int> {
    if (!coord_done) return std::nullopt;
    return coord_status;
  };
  federation.stop = stop_all;
  FollowProgress(config, coord_dir, federation, progress, &outcome.stopped);
  coord_thread.Join();
  outcome.exit_status = coord_status;

  // The coordinator told the sites to finish; give them 20 s, then stop them.
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  for (int k = 0; k < config.sites; ++k) {
    while (!site_done[k] && Clock::now() < deadline) {
      wake.Wait(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    }
  }
  for (int k = 0; k < config.sites; ++k) {
    if (!site_done[k]) agents[static_cast<size_t>(k)]->Stop();
  }
  for (auto& t : threads) t->Join();
  for (int k = 0; k < config.sites; ++k) {
    const int s = site_status[static_cast<size_t>(k)];
    if (s != 0 && !outcome.stopped) {
      progress << "site-" << (k + 1) << " ended with status " << s << "; see "
               << (p.run_dir / ("site-" + std::to_string(k + 1)) / "site.log").string()
               << std::endl;
    }
    if (s != 0 && outcome.exit_status == 0) outcome.exit_status = s;
  }
  if (coord_status != 0 && !outcome.stopped) {
    progress << "the coordinator ended with status " << coord_status << "; the end of its log:\n"
             << LogTail(coord_dir / "coordinator.log", 15);
  }
  agents.clear();
  coordinator.reset();
  outcome.peak_rss_mib = SelfPeakRssMib();
  std::ostringstream rss;
  rss << "peak RSS of the whole simulation (one process, " << config.sites
      << " sites + coordinator): " << std::fixed << std::setprecision(0) << outcome.peak_rss_mib
      << " MiB; compute slots used at most " << compute->peak_in_use() << " of " << slots;
  outcome.rss_detail = rss.str();
  return outcome;
}

}  // namespace fedmed
