// A shared pool of LibTorch compute threads for several site agents in one process.
//
// A real hospital runs one fedmed-site per machine and needs no limit. fedmed-simulate's threads
// mode runs N site agents in one process on a machine with a few cores: without a limit, N local
// trainings would run at once, each with its own model, gradients and optimizer state, and the
// cores would be time-sliced N ways. With ComputeSlots(k) shared by the agents (SiteAgent::Options
// compute_slots), an agent first takes one of k slots (a counting semaphore; the others wait
// their turn, still registered and polling, so the coordinator sees them as alive) and runs its
// training or evaluation on that slot's own compute thread (Lease::Run). LibTorch work therefore
// happens on k long-lived threads only, whatever N is: per-thread state (malloc arenas, oneDNN
// scratchpads, OpenMP state) exists k times, not N times, which keeps the memory per additional
// site small.
#ifndef FEDMED_SITE_AGENT_COMPUTE_SLOTS_H_
#define FEDMED_SITE_AGENT_COMPUTE_SLOTS_H_

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace fedmed {

class ComputeSlots {
 public:
  // Holds one slot from construction until destruction or Release() (movable, not copyable).
  class Lease {
   public:
    // Moves the slot; `other` holds none afterwards (assignment first releases this one's).
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    // Gives the slot back.
    ~Lease();

    // Runs `work` on this slot's compute thread and returns when it has finished, rethrowing
    // what it threw. Must not be called after Release().
    void Run(const std::function<void()>& work);

    // Gives the slot back now (the destructor then does nothing).
    void Release();

    // Which slot this is, 0 .. slots()-1 (-1 after Release()).
    int index() const { return index_; }

   private:
    friend class ComputeSlots;
    Lease(ComputeSlots* owner, int index) : owner_(owner), index_(index) {}
    ComputeSlots* owner_;
    int index_;
  };

  // Starts `slots` >= 1 compute threads. Throws ConfigError if slots < 1.
  explicit ComputeSlots(int slots);
  // Stops and joins the compute threads. Every lease must have been released.
  ~ComputeSlots();
  ComputeSlots(const ComputeSlots&) = delete;
  ComputeSlots& operator=(const ComputeSlots&) = delete;

  // Blocks until a slot is free and returns its lease.
  Lease Acquire();

  // Waits at most `timeout` for a slot: its lease, or std::nullopt when none became free (callers
  // loop on this to notice that they were asked to stop while waiting).
  std::optional<Lease> TryAcquireFor(std::chrono::milliseconds timeout);

  // The number of slots (the constructor's argument).
  int slots() const { return static_cast<int>(workers_.size()); }

  // Slots held right now.
  int in_use() const;

  // The most slots ever held at once (for tests and diagnostics).
  int peak_in_use() const;

 private:
  struct Worker;
  Lease TakeLocked();
  void Put(int index);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<bool> busy_;
  int in_use_ = 0;
  int peak_ = 0;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace fedmed

#endif  // FEDMED_SITE_AGENT_COMPUTE_SLOTS_H_
