#include "common/util/process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <thread>

#include "common/util/error.h"

extern char** environ;

namespace fedmed {

namespace {

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& output_file,
                           const std::vector<std::string>& extra_env) {
  if (argv.empty()) throw Error("ChildProcess: empty command line");
  name_ = std::filesystem::path(argv[0]).filename().string();

  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) env_storage.emplace_back(*e);
  for (const std::string& e : extra_env) env_storage.push_back(e);
  std::vector<char*> env;
  for (std::string& e : env_storage) env.push_back(e.data());
  env.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (!output_file.empty()) {
    const std::filesystem::path path(output_file);
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, output_file.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  }
  const int rc = posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    throw Error("cannot start '" + argv[0] + "': " + std::strerror(rc));
  }
  // Readable once the program has ended (Linux 5.3+); -1 where the kernel has no pidfd, and
  // Wait then checks every 20 ms instead.
  exit_fd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  if (exit_fd_ >= 0) fcntl(exit_fd_, F_SETFD, FD_CLOEXEC);
}

ChildProcess::~ChildProcess() {
  if (!status_.has_value()) Stop(2.0);
  if (exit_fd_ >= 0) close(exit_fd_);
}

std::optional<int> ChildProcess::Poll() {
  if (status_.has_value()) return status_;
  int status = 0;
  struct rusage usage {};
  const pid_t r = wait4(pid_, &status, WNOHANG, &usage);
  if (r == pid_) {
    status_ = DecodeStatus(status);
    max_rss_kib_ = usage.ru_maxrss;
  }
  return status_;
}

std::optional<int> ChildProcess::Wait(double timeout_seconds) {
  if (timeout_seconds < 0) {
    if (status_.has_value()) return status_;
    int status = 0;
    struct rusage usage {};
    while (wait4(pid_, &status, 0, &usage) < 0 && errno == EINTR) {
    }
    status_ = DecodeStatus(status);
    max_rss_kib_ = usage.ru_maxrss;
    return status_;
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  while (!Poll().has_value()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) return std::nullopt;
    if (exit_fd_ >= 0) {
      pollfd p{exit_fd_, POLLIN, 0};
      poll(&p, 1, static_cast<int>(std::min<int64_t>(left + 1, 60000)));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return status_;
}

void ChildProcess::Signal(int signal) {
  if (!Poll().has_value()) kill(pid_, signal);
}

int ChildProcess::Stop(double grace_seconds) {
  Signal(SIGTERM);
  if (!Wait(grace_seconds).has_value()) {
    Signal(SIGKILL);
    Wait();
  }
  return *status_;
}

std::string ExecutableDir() {
  return std::filesystem::canonical("/proc/self/exe").parent_path().string();
}

}  // namespace fedmed
