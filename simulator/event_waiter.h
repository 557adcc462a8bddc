// What the simulator's loops wait on instead of a fixed interval: a file written in a watched
// folder (inotify: a file closed after writing, or renamed into it, as WriteFileAtomically and
// ReplaceFile do), a child process that ended (ChildProcess::exit_fd), or Notify() from another
// thread. The federation's progress (status.json, metrics.jsonl) and its end then reach the
// simulator as they happen: no poll interval sits on the critical path of a run. Linux only.
#ifndef FEDMED_SIMULATOR_EVENT_WAITER_H_
#define FEDMED_SIMULATOR_EVENT_WAITER_H_

#include <chrono>
#include <filesystem>
#include <vector>

namespace fedmed {

class EventWaiter {
 public:
  // Throws Error when the kernel refuses an inotify instance or an eventfd.
  EventWaiter();
  ~EventWaiter();
  EventWaiter(const EventWaiter&) = delete;
  EventWaiter& operator=(const EventWaiter&) = delete;

  // Wakes Wait when a file in `dir` (not its subfolders) is written or renamed into it. `dir`
  // must exist. Throws Error naming `dir` when it cannot be watched.
  void WatchDirectory(const std::filesystem::path& dir);
  // Wakes Wait while `fd` is readable (e.g. ChildProcess::exit_fd(); -1 is ignored). Not owned.
  void WatchDescriptor(int fd);
  // Wakes one Wait (now, or the next one when none waits). Thread-safe.
  void Notify();

  // Returns when something watched happened (its events are consumed), a signal interrupted the
  // wait, or `timeout` passed: true in the first case. A readable descriptor given to
  // WatchDescriptor stays readable: stop watching it (Forget) once handled.
  bool Wait(std::chrono::milliseconds timeout);
  // Stops watching `fd` (WatchDescriptor).
  void Forget(int fd);

 private:
  int inotify_fd_ = -1;
  int event_fd_ = -1;
  std::vector<int> descriptors_;
};

}  // namespace fedmed

#endif  // FEDMED_SIMULATOR_EVENT_WAITER_H_
