// Child processes for the simulator and the integration tests (POSIX posix_spawn).
//
// A ChildProcess owns one running program. Its destructor stops the program (SIGTERM, then
// SIGKILL after a grace period) if it is still running, so a failing test or an interrupted
// simulation never leaves orphan coordinators or sites behind.
#ifndef FEDMED_COMMON_UTIL_PROCESS_H_
#define FEDMED_COMMON_UTIL_PROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace fedmed {

class ChildProcess {
 public:
  // Starts argv[0] (a path, or a name looked up in PATH) with arguments argv[1..]. stdout and
  // stderr are appended to `output_file` (created with its parent directories) when it is not
  // empty, else inherited. `extra_env` entries ("NAME=value") are added to the environment.
  // Throws Error naming the program if it cannot be started.
  ChildProcess(const std::vector<std::string>& argv, const std::string& output_file,
               const std::vector<std::string>& extra_env = {});
  ~ChildProcess();

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }

  // Non-blocking: the exit status if the program has ended (128 + signal number when it was killed
  // by a signal), std::nullopt while it runs.
  std::optional<int> Poll();

  // Waits up to `timeout_seconds` (forever when negative) for the program to end, woken by its
  // end (a pidfd), not by a fixed interval. Returns its exit status as Poll does, or
  // std::nullopt on timeout.
  std::optional<int> Wait(double timeout_seconds = -1);

  // A descriptor that poll() finds readable once the program has ended (its pidfd: for an
  // event loop that waits on it beside other things), or -1 where the kernel has none. Owned
  // by this object; Poll() still collects the exit status.
  int exit_fd() const { return exit_fd_; }

  // Sends `signal` if the program still runs.
  void Signal(int signal);

  // SIGTERM, then SIGKILL after `grace_seconds`; returns the exit status.
  int Stop(double grace_seconds = 5.0);

  // Peak resident set size of the program in KiB (getrusage's ru_maxrss, what /usr/bin/time -v
  // reports as "Maximum resident set size"); 0 until it has ended.
  long max_rss_kib() const { return max_rss_kib_; }

 private:
  std::string name_;
  pid_t pid_ = -1;
  int exit_fd_ = -1;
  std::optional<int> status_;
  long max_rss_kib_ = 0;
};

// The directory that holds the running executable (from /proc/self/exe); the simulator finds
// fedmed-coordinator and fedmed-site beside itself.
std::string ExecutableDir();

}  // namespace fedmed

#endif  // FEDMED_COMMON_UTIL_PROCESS_H_
