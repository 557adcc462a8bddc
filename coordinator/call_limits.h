// Per-call resource limits of the coordinator's gRPC service (transport/service.cc), so that one site
// cannot take the server's threads or hold a transfer open forever:
//   InFlight    at most one long call of each kind (a poll, a download, an upload, a secure-
//               aggregation receive, the presence stream) in flight per site; a second is refused
//               at once (the service answers RESOURCE_EXHAUSTED).
//   IdleWatch   an upload that receives nothing for [federation] upload_idle_seconds is cancelled
//               by the server (the site sees CANCELLED), so a site stalling its upload holds one
//               thread for at most that long.
// No gRPC here: the service hands IdleWatch a function that cancels its call. Thread-safe.
#ifndef FEDMED_COORDINATOR_CALL_LIMITS_H_
#define FEDMED_COORDINATOR_CALL_LIMITS_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "common/util/mutex.h"

namespace fedmed {

// Which long calls are in flight, per site and kind.
class InFlight {
 public:
  // Holds a (site, kind) pair until destroyed.
  class Slot {
   public:
    Slot(InFlight* owner, std::string key) : owner_(owner), key_(std::move(key)) {}
    Slot(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    Slot& operator=(Slot&&) = delete;
    ~Slot();

   private:
    InFlight* owner_;
    std::string key_;
  };

  // A slot for call `rpc` of `site`, or nullopt when that site already holds one for `rpc`.
  std::optional<Slot> Take(const std::string& site, const char* rpc);

 private:
  Mutex mu_;
  std::set<std::string> held_ GUARDED_BY(mu_);  // "site\nrpc"
};

// Cancels calls that make no progress for `limit`: a thread checks the watched calls every
// 100 ms and calls the `cancel` of each one whose last Touch is older than `limit` (once). A
// limit of zero watches nothing.
class IdleWatch {
 public:
  using Clock = std::chrono::steady_clock;

  // Watches one call until destroyed; must be destroyed before what its `cancel` refers to.
  class Entry {
   public:
    Entry(IdleWatch* owner, uint64_t id) : owner_(owner), id_(id) {}
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    ~Entry();
    // The call made progress (a message arrived): its idle time starts again.
    void Touch();
    // Whether the watch cancelled the call.
    bool fired() const;

   private:
    IdleWatch* owner_;
    uint64_t id_;  // 0 when the watch is off
  };

  explicit IdleWatch(Clock::duration limit);
  ~IdleWatch();
  IdleWatch(const IdleWatch&) = delete;
  IdleWatch& operator=(const IdleWatch&) = delete;

  // Starts watching a call, idle from now; `cancel` (the service cancels its call) runs on
  // the watch's thread, under its lock, so it must be quick and must not call back into this.
  Entry Watch(std::function<void()> cancel);
  Clock::duration limit() const { return limit_; }

 private:
  struct Call {
    std::function<void()> cancel;
    Clock::time_point last;
    bool fired;
  };
  void Loop();

  const Clock::duration limit_;
  mutable Mutex mu_;
  CondVar stop_cv_{&mu_};
  bool stop_ GUARDED_BY(mu_) = false;
  uint64_t next_id_ GUARDED_BY(mu_) = 1;
  std::map<uint64_t, Call> calls_ GUARDED_BY(mu_);
  std::thread thread_;               // started last, joined by the destructor
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_CALL_LIMITS_H_
