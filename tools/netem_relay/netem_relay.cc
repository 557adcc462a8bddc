#include "tools/netem_relay/netem_relay.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace fedmed::netem {

DelayLine::DelayLine(const LinkSettings& settings)
    : settings_(settings), rng_(settings.seed), drop_(std::clamp(settings.loss, 0.0, 1.0)) {
  if (settings.delay.count() < 0) throw std::invalid_argument("delay: expected >= 0");
  if (!(settings.loss >= 0 && settings.loss <= 1)) {
    throw std::invalid_argument("loss: expected a probability in [0, 1]");
  }
}

bool DelayLine::Offer(std::vector<uint8_t> frame, Clock::time_point now, bool cut) {
  ++counters_.frames_in;
  // The loss draw happens for every frame, cut or not, so that a cut does not shift the
  // sequence of draws of the frames after it.
  const bool lost = settings_.loss > 0 && drop_(rng_);
  if (cut) {
    ++counters_.dropped_cut;
    return false;
  }
  if (lost) {
    ++counters_.dropped_loss;
    return false;
  }
  if (queue_.size() >= settings_.max_queued_frames) {
    ++counters_.dropped_queue;
    return false;
  }
  queue_.push_back({now + settings_.delay, std::move(frame)});
  return true;
}

bool DelayLine::HasDue(Clock::time_point now) const {
  return !queue_.empty() && queue_.front().due <= now;
}

std::vector<uint8_t> DelayLine::PopDue() {
  std::vector<uint8_t> frame = std::move(queue_.front().frame);
  queue_.pop_front();
  ++counters_.frames_out;
  counters_.bytes_out += frame.size();
  return frame;
}

Clock::time_point DelayLine::NextDue() const {
  return queue_.empty() ? Clock::time_point::max() : queue_.front().due;
}

namespace {

TapEnd ParseEnd(const std::string& flag, const std::string& value) {
  const size_t colon = value.rfind(':');
  if (colon == std::string::npos || colon + 1 == value.size() || value.size() - colon - 1 >= IFNAMSIZ) {
    throw std::invalid_argument(flag + " " + value +
                                ": expected NETNS:DEVICE (a TAP device name of 1 to 15 "
                                "characters; NETNS may be empty for the relay's own namespace)");
  }
  TapEnd end;
  end.netns_path = value.substr(0, colon);
  if (!end.netns_path.empty() && end.netns_path.find('/') == std::string::npos) {
    end.netns_path = "/run/netns/" + end.netns_path;
  }
  end.device = value.substr(colon + 1);
  return end;
}

double ParseNumber(const std::string& flag, const std::string& value, double lo, double hi,
                   const std::string& what) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || !std::isfinite(v) || v < lo || v > hi) {
    throw std::invalid_argument(flag + ": expected " + what + ", got \"" + value + "\"");
  }
  return v;
}

}  // namespace

RelayOptions ParseRelayArgs(const std::vector<std::string>& args) {
  RelayOptions o;
  bool have_a = false, have_b = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (i + 1 >= args.size()) throw std::invalid_argument(flag + ": expected a value after it");
    const std::string& value = args[++i];
    if (flag == "--a") {
      o.a = ParseEnd(flag, value);
      have_a = true;
    } else if (flag == "--b") {
      o.b = ParseEnd(flag, value);
      have_b = true;
    } else if (flag == "--delay-ms") {
      const double ms = ParseNumber(flag, value, 0, 60000, "a one-way delay in ms in [0, 60000]");
      o.a_to_b.delay = o.b_to_a.delay =
          std::chrono::microseconds(static_cast<int64_t>(std::llround(ms * 1000)));
    } else if (flag == "--loss") {
      o.a_to_b.loss = o.b_to_a.loss = ParseNumber(flag, value, 0, 1, "a probability in [0, 1]");
    } else if (flag == "--seed") {
      const double s = ParseNumber(flag, value, 0, 9e15, "an integer seed >= 0");
      if (s != std::floor(s)) throw std::invalid_argument("--seed: expected an integer");
      o.a_to_b.seed = static_cast<uint64_t>(s);
      o.b_to_a.seed = o.a_to_b.seed + 1;
    } else if (flag == "--pid-file") {
      o.pid_file = value;
    } else {
      throw std::invalid_argument("unknown flag " + flag +
                                  " (expected --a, --b, --delay-ms, --loss, --seed, --pid-file)");
    }
  }
  if (!have_a || !have_b) throw std::invalid_argument("--a and --b are required");
  return o;
}

namespace {

// Opens the persistent TAP `end.device` inside `end.netns_path`, non-blocking; returns to the
// caller's namespace (`home`) before returning.
int AttachTap(const TapEnd& end, int home) {
  const std::string where = "TAP " + end.device + " in " +
                            (end.netns_path.empty() ? std::string("this namespace") : end.netns_path);
  if (!end.netns_path.empty()) {
    const int ns = ::open(end.netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) {
      const std::string why = std::strerror(errno);
      if (ns >= 0) ::close(ns);
      throw std::runtime_error(where + ": cannot enter the namespace: " + why);
    }
    ::close(ns);
  }
  const int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  std::string error;
  if (fd < 0) {
    error = std::string("cannot open /dev/net/tun: ") + std::strerror(errno);
  } else {
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    std::strncpy(ifr.ifr_name, end.device.c_str(), IFNAMSIZ - 1);
    if (::ioctl(fd, TUNSETIFF, &ifr) != 0) {
      error = std::string("TUNSETIFF: ") + std::strerror(errno) +
              " (expected a TAP made with `ip tuntap add dev NAME mode tap`)";
    }
  }
  if (!end.netns_path.empty() && ::setns(home, CLONE_NEWNET) != 0) {
    error = std::string("cannot return to the relay's namespace: ") + std::strerror(errno);
  }
  if (!error.empty()) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error(where + ": " + error);
  }
  return fd;
}

void LogCounters(const char* name, const LinkCounters& c) {
  std::fprintf(stderr,
               "fedmed-netem-relay: %s: in %llu, out %llu (%llu bytes), dropped: loss %llu, "
               "cut %llu, queue %llu\n",
               name, static_cast<unsigned long long>(c.frames_in),
               static_cast<unsigned long long>(c.frames_out),
               static_cast<unsigned long long>(c.bytes_out),
               static_cast<unsigned long long>(c.dropped_loss),
               static_cast<unsigned long long>(c.dropped_cut),
               static_cast<unsigned long long>(c.dropped_queue));
}

// Reads the frames waiting on `from` into `line`, at most 256 at a time so that delivery in the
// other direction is never starved. Returns false when the TAP is gone.
bool Drain(int from, DelayLine& line, bool cut) {
  std::vector<uint8_t> buffer(65536);
  for (int frames = 0; frames < 256; ++frames) {
    const ssize_t n = ::read(from, buffer.data(), buffer.size());
    if (n > 0) {
      line.Offer(std::vector<uint8_t>(buffer.begin(), buffer.begin() + n), Clock::now(), cut);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    return false;  // EBADFD / EIO / 0: the device was deleted
  }
  return true;  // more may wait: epoll (level-triggered) reports the TAP again at once
}

// Writes every due frame of `line` to `to`. Returns false when the TAP is gone.
bool Deliver(int to, DelayLine& line) {
  while (line.HasDue(Clock::now())) {
    const std::vector<uint8_t> frame = line.PopDue();
    ssize_t n;
    do {
      n = ::write(to, frame.data(), frame.size());
    } while (n < 0 && errno == EINTR);
    // A full receive path (EAGAIN, ENOBUFS) loses the frame, as a congested NIC would.
    if (n < 0 && errno != EAGAIN && errno != ENOBUFS) return false;
  }
  return true;
}

}  // namespace

int RunRelay(const RelayOptions& options) {
  sigset_t signals;
  sigemptyset(&signals);
  for (const int s : {SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGHUP}) sigaddset(&signals, s);
  if (::sigprocmask(SIG_BLOCK, &signals, nullptr) != 0) {
    throw std::runtime_error(std::string("sigprocmask: ") + std::strerror(errno));
  }
  const int sfd = ::signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
  const int home = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (sfd < 0 || home < 0) throw std::runtime_error(std::string("setup: ") + std::strerror(errno));
  const int ta = AttachTap(options.a, home);
  const int tb = AttachTap(options.b, home);
  if (!options.pid_file.empty()) {
    std::ofstream(options.pid_file) << ::getpid() << "\n";
  }
  DelayLine a_to_b(options.a_to_b);
  DelayLine b_to_a(options.b_to_a);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  for (const int fd : {ta, tb, sfd}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
      throw std::runtime_error(std::string("epoll_ctl: ") + std::strerror(errno));
    }
  }
  bool cut = false;
  bool running = true;
  while (running) {
    const Clock::time_point next = std::min(a_to_b.NextDue(), b_to_a.NextDue());
    int timeout_ms = -1;
    if (next != Clock::time_point::max()) {
      const auto wait = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now());
      timeout_ms = static_cast<int>(std::max<int64_t>(0, wait.count()));
    }
    epoll_event events[3];
    const int n = ::epoll_wait(ep, events, 3, timeout_ms);
    if (n < 0 && errno != EINTR) throw std::runtime_error(std::string("epoll_wait: ") + std::strerror(errno));
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == sfd) {
        signalfd_siginfo info{};
        while (::read(sfd, &info, sizeof(info)) == sizeof(info)) {
          switch (info.ssi_signo) {
            case SIGUSR1:
              cut = true;
              std::fprintf(stderr, "fedmed-netem-relay: link cut\n");
              break;
            case SIGUSR2:
              cut = false;
              std::fprintf(stderr, "fedmed-netem-relay: link restored\n");
              break;
            case SIGHUP:
              LogCounters("a->b", a_to_b.counters());
              LogCounters("b->a", b_to_a.counters());
              break;
            default:
              running = false;
          }
        }
      } else if (!Drain(fd, fd == ta ? a_to_b : b_to_a, cut)) {
        std::fprintf(stderr, "fedmed-netem-relay: TAP %s is gone; stopping\n",
                     (fd == ta ? options.a : options.b).device.c_str());
        running = false;
      }
    }
    if (!Deliver(tb, a_to_b) || !Deliver(ta, b_to_a)) {
      std::fprintf(stderr, "fedmed-netem-relay: a TAP is gone; stopping\n");
      running = false;
    }
  }
  LogCounters("a->b", a_to_b.counters());
  LogCounters("b->a", b_to_a.counters());
  if (!options.pid_file.empty()) ::unlink(options.pid_file.c_str());
  for (const int fd : {ep, ta, tb, sfd, home}) ::close(fd);
  return 0;
}

}  // namespace fedmed::netem
