#include "simulator/simulation.h"

#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "common/config/site_config.h"
#include "common/config/toml_util.h"
#include "common/data/hospital/site_images.h"
#include "common/data/medmnist.h"
#include "common/data/partition.h"
#include "common/data/site_data_config.h"
#include "common/model/frozen_layers.h"
#include "common/util/data_path.h"
#include "common/util/error.h"
#include "common/util/file_io.h"
#include "common/util/process.h"
#include "coordinator/coordinator.h"
#include "simulator/experiment.h"
#include "site_agent/compute_slots.h"
#include "site_agent/site_agent.h"
#include "tools/pki/provision.h"

namespace fedmed {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// The smallest shares LoadSiteSplit asks the partition for (common/data/hospital/site_images.h).
constexpr int64_t kMinTrainPerSite = 10;
constexpr int64_t kMinTestPerSite = 1;

// Stack of each site thread in threads mode. Only the pages a thread touches count toward RSS;
// the explicit size keeps a large `ulimit -s` from reserving more per thread.
constexpr std::size_t kSiteThreadStack = 8u << 20;

std::atomic<int> g_signal{0};

void OnSignal(int signal) { g_signal = signal; }

std::string Timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%d-%H%M%S", &tm);
  return buf;
}

std::optional<nlohmann::json> ReadJson(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // being replaced right now; read it next time
  }
}

std::string Tail(const fs::path& path, std::size_t lines) {
  std::ifstream in(path);
  std::vector<std::string> all;
  std::string line;
  while (std::getline(in, line)) all.push_back(line);
  std::string out;
  for (std::size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
    out += "    " + all[i] + "\n";
  }
  return out;
}

void PrintTable(const std::vector<nlohmann::json>& rows, std::ostream& out) {
  out << "\n round | seconds | global ACC | global AUC | bal. ACC |   F1   | sens.  | spec.  "
         "| federated ACC | federated AUC\n"
      << "-------+---------+------------+------------+----------+--------+--------+--------"
         "+---------------+--------------\n";
  for (const nlohmann::json& r : rows) {
    const nlohmann::json g = r.value("global", nlohmann::json());
    const nlohmann::json f = r.value("federated", nlohmann::json());
    auto metric = [](const nlohmann::json& m, const char* key) {
      return m.is_object() ? m.value(key, nlohmann::json()) : nlohmann::json();
    };
    out << std::setw(6) << r["round"].get<int>() << " | " << std::setw(7)
        << FormatNumber(r["seconds"]["round"], 2) << " | " << std::setw(10)
        << FormatNumber(metric(g, "accuracy")) << " | " << std::setw(10)
        << FormatNumber(metric(g, "auc")) << " | " << std::setw(8)
        << FormatNumber(metric(g, "balanced_accuracy")) << " | " << std::setw(6)
        << FormatNumber(metric(g, "f1")) << " | " << std::setw(6)
        << FormatNumber(metric(g, "sensitivity")) << " | " << std::setw(6)
        << FormatNumber(metric(g, "specificity")) << " | " << std::setw(13)
        << FormatNumber(metric(f, "accuracy")) << " | " << std::setw(12)
        << FormatNumber(metric(f, "auc")) << "\n";
  }
}

// Each site's privacy spend as the coordinator last heard it (the sites' own ledgers and logs
// are authoritative).
void PrintPrivacy(const std::vector<nlohmann::json>& rows, std::ostream& out) {
  if (rows.empty()) return;
  const nlohmann::json privacy = rows.back().value("privacy", nlohmann::json::object());
  if (!privacy.is_object() || privacy.empty()) return;
  bool any = false;  // a line per site saying "none" says nothing
  for (const auto& [site, p] : privacy.items()) any = any || p.value("mechanism", "none") != "none";
  if (!any) return;
  out << "\nprivacy spent (epsilon at delta, each site's own accountant):";
  for (const auto& [site, p] : privacy.items()) {
    out << "\n  " << site << ": " << p.value("mechanism", std::string()) << ", epsilon "
        << FormatNumber(p.value("epsilon_total", nlohmann::json())) << " of budget "
        << FormatNumber(p.value("budget_epsilon", nlohmann::json()), 2) << " at delta "
        << p.value("delta", 0.0) << (p.value("declined", false) ? " (declined its last round)" : "");
  }
  out << std::endl;
}

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

// The running federation as the progress loop sees it, whatever the mode.
struct Federation {
  std::function<std::optional<int>()> poll_coordinator;  // exit status once it has finished
  std::function<void()> stop;                            // SIGTERM to everything
  std::function<void()> tick;                            // every 100 ms (may be empty)
};

// Follows status.json and metrics.jsonl until the coordinator ends; returns its exit status.
int FollowProgress(const SimulationConfig& config, const fs::path& coord_dir,
                   const Federation& federation, std::ostream& progress, bool* stopped) {
  std::string last_line;
  std::size_t rounds_shown = 0;
  std::optional<int> coord_status;
  while (!(coord_status = federation.poll_coordinator()).has_value()) {
    if (g_signal != 0 && !*stopped) {
      progress << "interrupted: stopping the federation" << std::endl;
      federation.stop();
      *stopped = true;
    }
    if (const auto status = ReadJson(coord_dir / "status.json")) {
      std::ostringstream line;
      line << "  round " << status->value("round", 0) << "/" << config.coordinator.rounds << " "
           << status->value("phase", std::string()) << ": " << status->value("updates", 0) << "/"
           << status->value("selected", 0) << " sites done";
      if (line.str() != last_line && status->value("round", 0) > 0) {
        progress << line.str() << std::endl;
        last_line = line.str();
      }
    }
    const std::vector<nlohmann::json> rows = ReadJsonLines((coord_dir / "metrics.jsonl").string());
    for (; rounds_shown < rows.size(); ++rounds_shown) {
      const nlohmann::json& r = rows[rounds_shown];
      const nlohmann::json g = r.value("global", nlohmann::json());
      progress << "round " << r["round"].get<int>() << "/" << config.coordinator.rounds
               << " done in " << FormatNumber(r["seconds"]["round"], 2) << " s: global ACC "
               << (g.is_object() ? FormatNumber(g.value("accuracy", nlohmann::json())) : "-")
               << ", AUC " << (g.is_object() ? FormatNumber(g.value("auc", nlohmann::json())) : "-")
               << std::endl;
    }
    if (federation.tick) federation.tick();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return *coord_status;
}

// What both modes share: the run directory, certificates and configs.
struct Prepared {
  fs::path run_dir;
  ProvisionResult provisioned;
  std::string eval_path;
  std::vector<SiteDataConfig> site_data;  // per site, paths resolved
};

Prepared Prepare(const SimulationConfig& config, const std::string& data_root) {
  Prepared p;
  p.run_dir = fs::absolute(config.run_dir.empty()
                               ? fs::path(config.output_root) / (config.name + "-" + Timestamp())
                               : fs::path(config.run_dir));
  fs::create_directories(p.run_dir);
  // Resolve the data once, so every party reads the same file.
  for (int k = 1; k <= config.sites; ++k) {
    SiteDataConfig data = SiteDataFor(config, k);
    data.path = ResolveDataPath(data.path, data_root);
    p.site_data.push_back(data);
  }
  if (!config.coordinator.eval_data.empty()) {
    p.eval_path = ResolveDataPath(config.coordinator.eval_data, data_root);
  }

  // Certificates and configs, exactly as fedmed-pki would write them.
  ProvisionOptions provision;
  provision.out_dir = (p.run_dir / "pki").string();
  provision.federation = config.name;
  for (int k = 1; k <= config.sites; ++k) provision.site_names.push_back("site-" + std::to_string(k));
  provision.coordinator_dns = {"localhost"};
  provision.coordinator_ips = {"127.0.0.1"};
  provision.coordinator_address = "127.0.0.1:0";
  provision.validity_days = 2;
  provision.coordinator_template = config.coordinator;
  provision.coordinator_template.federation = config.name;
  provision.coordinator_template.listen_address = "127.0.0.1:0";
  provision.coordinator_template.output_dir = (p.run_dir / "coordinator").string();
  provision.coordinator_template.eval_data = p.eval_path;
  // Every simulated site takes part from round 1; the quorum stays the config's min_sites.
  provision.coordinator_template.min_available_sites = config.sites;
  provision.coordinator_template.registration_timeout_seconds = 120;
  provision.site_template.data = p.site_data.front();
  provision.site_template.threads = config.mode == "threads" ? 1 : config.site_threads;
  provision.site_template.give_up_after_seconds = 120;
  provision.site_template.privacy = config.privacy;
  provision.site_template.model.torchscript_path = config.coordinator.torchscript_path;
  p.provisioned = ProvisionFederation(provision);
  return p;
}

// Site k's final config (the coordinator's port is known now), also written to its site.toml.
SiteConfig SiteConfigFor(const SimulationConfig& config, const Prepared& p, int k, int port) {
  const std::string name = "site-" + std::to_string(k);
  const std::string path = p.provisioned.site_configs.at(name);
  SiteConfig site = LoadSiteConfig(path);
  site.coordinator_address = "127.0.0.1:" + std::to_string(port);
  site.data = p.site_data[static_cast<size_t>(k - 1)];
  site.output_dir = (p.run_dir / name).string();
  if (!config.budget_epsilon_per_site.empty()) {
    site.privacy.budget_epsilon = config.budget_epsilon_per_site[static_cast<size_t>(k - 1)];
  }
  WriteFileAtomically(path, RenderSiteConfig(site), "site configuration");
  return site;
}

struct ModeOutcome {
  int exit_status = 0;
  bool stopped = false;
  double peak_rss_mib = 0;
  std::string rss_detail;  // one line for the summary
};

ModeOutcome RunProcesses(const SimulationConfig& config, const Prepared& p,
                         const std::string& data_root, const std::string& bin_dir,
                         std::ostream& progress) {
  ModeOutcome outcome;
  const fs::path coord_dir = p.run_dir / "coordinator";
  const fs::path coord_log = p.run_dir / "logs" / "coordinator.out";
  std::vector<std::string> coord_argv = {bin_dir + "/fedmed-coordinator", "--config",
                                         p.provisioned.coordinator_config};
  if (!data_root.empty()) coord_argv.insert(coord_argv.end(), {"--data", data_root});
  auto coordinator = std::make_unique<ChildProcess>(coord_argv, coord_log.string());
  progress << "coordinator started (pid " << coordinator->pid() << "), waiting for it to listen"
           << std::endl;

  // The coordinator binds port 0; status.json tells which port it got.
  int port = 0;
  const auto listen_deadline = Clock::now() + std::chrono::seconds(60);
  while (port == 0) {
    if (const auto status = ReadJson(coord_dir / "status.json")) port = status->value("port", 0);
    if (port != 0) break;
    if (coordinator->Poll().has_value() || Clock::now() > listen_deadline || g_signal != 0) {
      throw Error("the coordinator did not start; the end of its log " + coord_log.string() +
                  ":\n" + Tail(coord_log, 15));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  std::vector<std::unique_ptr<ChildProcess>> sites;
  for (int k = 1; k <= config.sites; ++k) {
    const std::string name = "site-" + std::to_string(k);
    SiteConfigFor(config, p, k, port);
    sites.push_back(std::make_unique<ChildProcess>(
        std::vector<std::string>{bin_dir + "/fedmed-site", "--config",
                                 p.provisioned.site_configs.at(name)},
        (p.run_dir / "logs" / (name + ".out")).string()));
  }
  progress << config.sites << " site processes started; federation '" << config.name
           << "' on 127.0.0.1:" << port << " over mutual TLS, " << config.coordinator.rounds
           << " rounds" << std::endl;

  Federation federation;
  federation.poll_coordinator = [&] { return coordinator->Poll(); };
  federation.stop = [&] {
    coordinator->Signal(SIGTERM);
    for (auto& s : sites) s->Signal(SIGTERM);
  };
  // --kill-site K@R: watch site K's log for the line that says it is in round R past the point
  // of no return (keys shared under secure aggregation, else training started), then SIGKILL it.
  std::vector<std::pair<int, int>> pending_kills = config.kill_sites;
  std::set<int> killed;
  federation.tick = [&] {
    for (auto it = pending_kills.begin(); it != pending_kills.end();) {
      const auto [k, round] = *it;
      const std::string marker =
          config.coordinator.secure_aggregation.enabled
              ? "round " + std::to_string(round) + ": secure aggregation: keys shared"
              : "round " + std::to_string(round) + ": training";
      std::ifstream in(p.run_dir / ("site-" + std::to_string(k)) / "site.log");
      const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (log.find(marker) == std::string::npos) {
        ++it;
        continue;
      }
      sites[static_cast<size_t>(k - 1)]->Signal(SIGKILL);
      killed.insert(k);
      progress << "killed site-" << k << " (pid " << sites[static_cast<size_t>(k - 1)]->pid()
               << ") in round " << round << ", after \"" << marker << "\" (--kill-site)"
               << std::endl;
      it = pending_kills.erase(it);
    }
  };
  const int coord_status = FollowProgress(config, coord_dir, federation, progress, &outcome.stopped);

  outcome.exit_status = coord_status;
  for (std::size_t k = 0; k < sites.size(); ++k) {
    std::optional<int> s = sites[k]->Wait(20.0);
    if (!s.has_value()) s = sites[k]->Stop();
    if (killed.count(static_cast<int>(k) + 1)) continue;  // --kill-site: expected
    if (*s != 0) {
      progress << "site-" << (k + 1) << " exited with status " << *s << "; see "
               << (p.run_dir / "logs" / ("site-" + std::to_string(k + 1) + ".out")).string()
               << std::endl;
      if (outcome.exit_status == 0) outcome.exit_status = *s;
    }
  }
  if (coord_status != 0 && !outcome.stopped) {
    progress << "the coordinator exited with status " << coord_status << "; the end of its log:\n"
             << Tail(coord_log, 15);
  }
  std::ostringstream rss;
  double total_kib = static_cast<double>(coordinator->max_rss_kib());
  rss << "peak RSS (MiB): coordinator " << coordinator->max_rss_kib() / 1024;
  for (std::size_t k = 0; k < sites.size(); ++k) {
    rss << ", site-" << (k + 1) << " " << sites[k]->max_rss_kib() / 1024;
    total_kib += static_cast<double>(sites[k]->max_rss_kib());
  }
  outcome.peak_rss_mib = total_kib / 1024.0;
  rss << " (sum " << std::fixed << std::setprecision(0) << outcome.peak_rss_mib << ")";
  outcome.rss_detail = rss.str();
  return outcome;
}

ModeOutcome RunThreads(const SimulationConfig& config, const Prepared& p,
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
  std::atomic<bool> coord_done{false};
  int coord_status = 2;
  StackThread coord_thread(kSiteThreadStack, [&] {
    try {
      coord_status = coordinator->Run();
    } catch (const std::exception& e) {
      spdlog::error("coordinator: {}", e.what());
    }
    coord_done = true;
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
    }));
  }
  progress << config.sites << " site threads started in this process; federation '" << config.name
           << "' on 127.0.0.1:" << port << " over mutual TLS, " << config.coordinator.rounds
           << " rounds, at most " << slots << " local trainings at a time (logs: "
           << log_file.string() << ")" << std::endl;

  Federation federation;
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
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
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
             << Tail(coord_dir / "coordinator.log", 15);
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

std::string HistogramText(const std::vector<int64_t>& h) {
  std::string out;
  for (std::size_t c = 0; c < h.size(); ++c) {
    out += (c ? " " : "") + std::to_string(c) + ":" + std::to_string(h[c]);
  }
  return out;
}

}  // namespace

std::vector<nlohmann::json> ReadJsonLines(const std::string& path) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      rows.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::exception&) {
      break;  // a line still being written
    }
  }
  return rows;
}

std::string FormatNumber(const nlohmann::json& v, int precision) {
  if (!v.is_number()) return "-";
  std::ostringstream out;
  out << std::fixed << std::setprecision(precision) << v.get<double>();
  return out.str();
}

bool SimulationInterrupted() { return g_signal != 0; }

int ComputeThreads(const SimulationConfig& config) {
  if (config.compute_threads > 0) return config.compute_threads;
  return std::max(1u, std::thread::hardware_concurrency());
}

SiteDataConfig SiteDataFor(const SimulationConfig& config, int k) {
  SiteDataConfig data;
  data.preprocess = config.coordinator.preprocessing;
  if (!config.site_paths.empty()) {
    data.path = config.site_paths.at(static_cast<size_t>(k - 1));
    if (!config.site_formats.empty()) data.format = config.site_formats.at(static_cast<size_t>(k - 1));
    data.partition = "none";
    data.shard = 1;
    data.num_shards = 1;
    return data;
  }
  data.path = config.data_path;
  data.partition = config.partition;
  data.shard = k;
  data.num_shards = config.sites;
  data.alpha = config.alpha;
  data.seed = config.data_seed;
  return data;
}

void ValidateSimulationConfig(const SimulationConfig& c) {
  const std::string& path = c.config_path;
  for (const auto& [k, round] : c.kill_sites) {
    if (c.mode != "process") {
      throw ConfigError("--kill-site needs process mode (a thread cannot be killed alone)");
    }
    if (k < 1 || k > c.sites || round < 1 || round > c.coordinator.rounds) {
      throw ConfigError("--kill-site " + std::to_string(k) + "@" + std::to_string(round) +
                        ": expected a site in 1.." + std::to_string(c.sites) + " and a round in 1.." +
                        std::to_string(c.coordinator.rounds));
    }
  }
  if (c.sites < 1) ThrowBadSetting(path, "simulation", "sites", "an integer >= 1", std::to_string(c.sites));
  if (c.mode != "process" && c.mode != "threads") {
    ThrowBadSetting(path, "simulation", "mode", "\"process\" or \"threads\"", "\"" + c.mode + "\"");
  }
  if (c.site_threads < 1) {
    ThrowBadSetting(path, "simulation", "site_threads", "an integer >= 1",
                    std::to_string(c.site_threads));
  }
  if (c.compute_threads < 0) {
    ThrowBadSetting(path, "simulation", "compute_threads", "an integer >= 0 (0 = all cores)",
                    std::to_string(c.compute_threads));
  }
  if (!c.select_split.empty()) {
    if (c.select_split != "train" && c.select_split != "val" && c.select_split != "test") {
      ThrowBadSetting(path, "simulation", "select_split",
                      "\"val\" (or \"train\"; \"\" = no model selection)",
                      TomlString(c.select_split));
    }
    if (c.select_split == c.coordinator.eval_split) {
      ThrowBadSetting(path, "simulation", "select_split",
                      "another split than [evaluation] split (choosing a model on the split it is "
                      "reported on would overstate its score)",
                      TomlString(c.select_split));
    }
  }
  if (c.partition != "iid" && c.partition != "dirichlet" && c.partition != "quantity") {
    ThrowBadSetting(path, "data", "partition", "\"iid\", \"dirichlet\" or \"quantity\"",
                    "\"" + c.partition + "\"");
  }
  if (!(c.alpha > 0) || !std::isfinite(c.alpha)) {
    ThrowBadSetting(path, "data", "alpha", "a finite number > 0", TomlDouble(c.alpha));
  }
  if (c.site_paths.empty() && c.data_path.empty()) {
    ThrowBadSetting(path, "data", "path", "the data file to split across the sites (or "
                    "site_paths, one file per site)", "nothing");
  }
  if (!c.site_paths.empty()) {
    if (static_cast<int>(c.site_paths.size()) != c.sites) {
      ThrowBadSetting(path, "simulation", "sites",
                      "the number of [data] site_paths (" + std::to_string(c.site_paths.size()) +
                          "), or no value",
                      std::to_string(c.sites));
    }
    for (const std::string& p : c.site_paths) {
      if (p.empty()) ThrowBadSetting(path, "data", "site_paths", "non-empty paths", "\"\"");
    }
  }
  if (!c.site_formats.empty()) {
    if (c.site_formats.size() != c.site_paths.size()) {
      ThrowBadSetting(path, "data", "site_formats",
                      "one format per [data] site_paths entry (" +
                          std::to_string(c.site_paths.size()) + ")",
                      std::to_string(c.site_formats.size()) + " formats");
    }
    for (const std::string& f : c.site_formats) {
      if (!ParseDataFormat(f).has_value()) {
        ThrowBadSetting(path, "data", "site_formats",
                        "\"medmnist\", \"image_folder\", \"csv\" or \"dicom\" for each site",
                        TomlString(f));
      }
    }
  }
  ValidatePreprocessSpec(c.coordinator.preprocessing, SectionName(path, "preprocessing"));
  const bool scripted = c.coordinator.model == "torchscript";
  if (scripted == c.coordinator.torchscript_path.empty()) {
    ThrowBadSetting(path, "model", "torchscript_path",
                    "the TorchScript file when (and only when) name = \"torchscript\"",
                    TomlString(c.coordinator.torchscript_path) + " with name = " +
                        TomlString(c.coordinator.model));
  }
  try {
    ValidateFrozenLayers(c.coordinator.training.frozen_layers);
  } catch (const ConfigError& e) {
    throw ConfigError(SettingName(path, "training", e.what()));
  }
  ValidateSitePrivacyConfig(path, c.privacy);
  if (!c.budget_epsilon_per_site.empty()) {
    if (static_cast<int>(c.budget_epsilon_per_site.size()) != c.sites) {
      ThrowBadSetting(path, "privacy", "budget_epsilon_per_site",
                      "one budget per site (" + std::to_string(c.sites) + " numbers)",
                      std::to_string(c.budget_epsilon_per_site.size()) + " numbers");
    }
    for (int k = 0; k < c.sites; ++k) {
      SitePrivacyConfig site = c.privacy;
      site.budget_epsilon = c.budget_epsilon_per_site[static_cast<size_t>(k)];
      ValidateSitePrivacyConfig(path, site);
    }
  }
  ValidateStrategyConfig(c.coordinator.strategy, path);
}

std::vector<SiteShardSummary> DescribeSiteShards(const SimulationConfig& config,
                                                 const std::string& data_root, LoadedFiles* files) {
  auto load = [&](const std::string& path) {
    auto it = files->find(path);
    if (it == files->end()) {
      it = files->emplace(path, std::make_shared<const MedMnist>(LoadMedMnist(path))).first;
    }
    return it->second;
  };
  std::vector<SiteShardSummary> out;
  if (!config.site_paths.empty()) {
    for (int k = 1; k <= config.sites; ++k) {
      const SiteDataConfig site = SiteDataFor(config, k);
      const std::string path = ResolveDataPath(site.path, data_root);
      SiteShardSummary s;
      s.site = "site-" + std::to_string(k);
      s.path = path;
      if (ParseDataFormat(site.format) == DataFormat::kMedMnist) {
        const std::shared_ptr<const MedMnist> data = load(path);
        s.train_histogram = data->train.ClassHistogram();
        s.train_size = data->train.size();
        s.test_size = data->test.size();
      } else {  // decoded as the site will decode it, to show what it trains on
        const ImageSet train = LoadSiteSplit(site, Split::kTrain, data_root);
        s.train_histogram = train.ClassHistogram();
        s.train_size = train.size();
        s.test_size = LoadSiteSplit(site, Split::kTest, data_root).size();
      }
      out.push_back(std::move(s));
    }
    return out;
  }
  const std::string path = ResolveDataPath(config.data_path, data_root);
  const std::shared_ptr<const MedMnist> data = load(path);
  PartitionSpec spec;
  spec.scheme = ParsePartitionScheme(config.partition);
  spec.num_sites = config.sites;
  spec.alpha = config.alpha;
  spec.seed = config.data_seed;
  spec.min_samples_per_site = kMinTrainPerSite;
  const auto train = PartitionIndices(data->train.labels, data->train.num_classes, spec);
  spec.min_samples_per_site = kMinTestPerSite;
  const auto test = PartitionIndices(data->test.labels, data->test.num_classes, spec);
  for (int k = 0; k < config.sites; ++k) {
    SiteShardSummary s;
    s.site = "site-" + std::to_string(k + 1);
    s.path = path;
    s.train_histogram.assign(static_cast<size_t>(data->train.num_classes), 0);
    for (const int64_t i : train[static_cast<size_t>(k)]) {
      ++s.train_histogram[static_cast<size_t>(data->train.labels[static_cast<size_t>(i)])];
    }
    s.train_size = static_cast<int64_t>(train[static_cast<size_t>(k)].size());
    s.test_size = static_cast<int64_t>(test[static_cast<size_t>(k)].size());
    out.push_back(std::move(s));
  }
  return out;
}

void PrintSiteShards(const std::vector<SiteShardSummary>& shards, std::ostream& out) {
  out << "site data (training images per class; test images):\n";
  for (const SiteShardSummary& s : shards) {
    out << "  " << std::left << std::setw(9) << s.site << std::right << std::setw(6)
        << s.train_size << " train [" << HistogramText(s.train_histogram) << "], "
        << s.test_size << " test\n";
  }
  out << std::flush;
}

SimulationConfig LoadSimulationConfig(const std::string& path) {
  TomlFile file(path);
  SimulationConfig c;
  c.config_path = path;
  file.Read("simulation", "name", &c.name);
  int sites = 0;
  file.Read("simulation", "sites", &sites);
  file.Read("simulation", "output_dir", &c.output_root);
  file.Read("simulation", "mode", &c.mode);
  file.Read("simulation", "site_threads", &c.site_threads);
  file.Read("simulation", "compute_threads", &c.compute_threads);
  file.Read("simulation", "baseline", &c.baseline);
  file.Read("simulation", "plots", &c.plots);
  file.Read("simulation", "select_split", &c.select_split);
  file.Read("data", "path", &c.data_path);
  file.Read("data", "partition", &c.partition);
  file.Read("data", "alpha", &c.alpha);
  file.Read("data", "seed", &c.data_seed);
  file.Read("data", "site_paths", &c.site_paths);
  file.Read("data", "site_formats", &c.site_formats);
  c.coordinator.config_path = path;
  ReadFederationSections(file, &c.coordinator);  // resolves [model] paths against `path`
  ReadSitePrivacySection(file, &c.privacy);
  file.Read("privacy", "budget_epsilon_per_site", &c.budget_epsilon_per_site);
  file.Read("sweep", "strategy", &c.sweep.strategy);
  file.Read("sweep", "alpha", &c.sweep.alpha);
  std::vector<double> sweep_sites, sweep_seeds;
  file.Read("sweep", "sites", &sweep_sites);
  file.Read("sweep", "epsilon", &c.sweep.epsilon);
  file.Read("sweep", "seed", &sweep_seeds);
  file.Finish();
  for (const double v : sweep_sites) {
    if (!(v >= 1 && v <= 100000 && v == std::floor(v))) {
      ThrowBadSetting(path, "sweep", "sites", "integers >= 1", TomlDouble(v));
    }
    c.sweep.sites.push_back(static_cast<int>(v));
  }
  for (const double v : sweep_seeds) {
    if (!(v >= 0 && v <= 9007199254740992.0 && v == std::floor(v))) {
      ThrowBadSetting(path, "sweep", "seed", "integers >= 0", TomlDouble(v));
    }
    c.sweep.seed.push_back(static_cast<uint64_t>(v));
  }
  // sites: from the config, else one per site file, else 3.
  c.sites = sites != 0 ? sites : (c.site_paths.empty() ? 3 : static_cast<int>(c.site_paths.size()));
  if (c.coordinator.eval_data.empty()) c.coordinator.eval_data = c.data_path;
  if (c.sweep.empty()) {
    ValidateSimulationConfig(c);
  } else {
    ExpandSweep(c);  // validates every grid point (the base may need the sweep's values)
  }
  return c;
}

SimulationResult RunSimulation(const SimulationConfig& config, const std::string& data_root,
                               const std::string& bin_dir, std::ostream& progress) {
  const auto started = Clock::now();
  SimulationResult result;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

  LoadedFiles files;
  PrintSiteShards(DescribeSiteShards(config, data_root, &files), progress);
  const Prepared prepared = Prepare(config, data_root);
  result.run_dir = prepared.run_dir.string();

  ModeOutcome outcome;
  if (config.mode == "threads") {
    outcome = RunThreads(config, prepared, data_root, &files, progress);
  } else {
    files.clear();
    outcome = RunProcesses(config, prepared, data_root, bin_dir, progress);
  }
  result.exit_status = outcome.exit_status;
  result.peak_rss_mib = outcome.peak_rss_mib;

  const std::vector<nlohmann::json> rows =
      ReadJsonLines((prepared.run_dir / "coordinator" / "metrics.jsonl").string());
  PrintTable(rows, progress);
  PrintPrivacy(rows, progress);
  result.rounds_completed = static_cast<int>(rows.size());
  if (!rows.empty()) {
    result.final_global = rows.back().value("global", nlohmann::json());
    result.final_federated = rows.back().value("federated", nlohmann::json());
  }
  result.wall_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  progress << "\n" << outcome.rss_detail << std::endl;

  nlohmann::json summary;
  summary["name"] = config.name;
  summary["mode"] = config.mode;
  summary["sites"] = config.sites;
  summary["rounds"] = config.coordinator.rounds;
  summary["rounds_completed"] = result.rounds_completed;
  summary["exit_status"] = result.exit_status;
  summary["wall_seconds"] = result.wall_seconds;
  summary["peak_rss_mib"] = result.peak_rss_mib;
  summary["compute_threads"] = config.mode == "threads" ? ComputeThreads(config) : 0;
  summary["global"] = result.final_global;
  summary["federated"] = result.final_federated;
  WriteFileAtomically((prepared.run_dir / "summary.json").string(), summary.dump(2) + "\n",
                      "run summary");

  progress << "wall-clock " << std::fixed << std::setprecision(1) << result.wall_seconds
           << " s; everything (configs, certificates, logs, metrics.csv/jsonl, checkpoints) is in\n  "
           << result.run_dir << std::endl;
  return result;
}

}  // namespace fedmed
