#include "simulator/event_waiter.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "common/util/error.h"

namespace fedmed {

EventWaiter::EventWaiter() {
  inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) throw Error(std::string("inotify_init1: ") + std::strerror(errno));
  event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) {
    close(inotify_fd_);
    throw Error(std::string("eventfd: ") + std::strerror(errno));
  }
}

EventWaiter::~EventWaiter() {
  close(inotify_fd_);
  close(event_fd_);
}

void EventWaiter::WatchDirectory(const std::filesystem::path& dir) {
  if (inotify_add_watch(inotify_fd_, dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
    throw Error("cannot watch " + dir.string() + ": " + std::strerror(errno));
  }
}

void EventWaiter::WatchDescriptor(int fd) {
  if (fd >= 0) descriptors_.push_back(fd);
}

void EventWaiter::Forget(int fd) {
  descriptors_.erase(std::remove(descriptors_.begin(), descriptors_.end(), fd),
                     descriptors_.end());
}

void EventWaiter::Notify() {
  const uint64_t one = 1;
  // Cannot fail short of a counter overflow (2^64 - 1 notifications not waited for).
  [[maybe_unused]] const ssize_t n = write(event_fd_, &one, sizeof one);
}

bool EventWaiter::Wait(std::chrono::milliseconds timeout) {
  std::vector<pollfd> fds = {{inotify_fd_, POLLIN, 0}, {event_fd_, POLLIN, 0}};
  for (int fd : descriptors_) fds.push_back({fd, POLLIN, 0});
  const int n = poll(fds.data(), fds.size(), static_cast<int>(timeout.count()));
  if (n <= 0) return false;  // timeout, or a signal (EINTR)
  if (fds[0].revents & POLLIN) {
    alignas(inotify_event) char buffer[4096];
    while (read(inotify_fd_, buffer, sizeof buffer) > 0) {
    }
  }
  if (fds[1].revents & POLLIN) {
    uint64_t count = 0;
    [[maybe_unused]] const ssize_t r = read(event_fd_, &count, sizeof count);
  }
  return true;
}

}  // namespace fedmed
