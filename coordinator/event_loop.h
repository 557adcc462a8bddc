// The event loop the round flow runs on, as an interface, so that the domain layer can be driven
// by a real clock in the coordinator and by a manual one in tests.
//
// Three kinds of work: control (Post: the round's decisions, one at a time, on the control
// thread), compute (PostWork: aggregation and central evaluation, off the control thread, which
// post their result back with Post) and timers (Timer: the round, stage and registration
// deadlines). AsioEventLoop is the coordinator's: a Boost.Asio io_context run by
// Coordinator::Run() and a one-thread thread_pool. tests/coordinator/manual_event_loop.h is the
// tests': queues run on demand and a clock advanced by hand.
#ifndef FEDMED_COORDINATOR_EVENT_LOOP_H_
#define FEDMED_COORDINATOR_EVENT_LOOP_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace fedmed {

class EventLoop {
 public:
  using Clock = std::chrono::steady_clock;

  // A one-shot timer. Arm replaces what was armed before (whose callback then never runs);
  // Cancel drops it. The callback runs on the control thread.
  class Timer {
   public:
    virtual ~Timer() = default;
    virtual void Arm(Clock::time_point when, std::function<void()> callback) = 0;
    virtual void Cancel() = 0;
  };

  virtual ~EventLoop() = default;

  // The time the loop's timers and deadlines use.
  virtual Clock::time_point Now() const = 0;
  // Runs `fn` on the control thread later (never inline). Thread-safe.
  virtual void Post(std::function<void()> fn) = 0;
  // Runs `fn` on the compute pool later. Thread-safe.
  virtual void PostWork(std::function<void()> fn) = 0;
  virtual std::unique_ptr<Timer> MakeTimer() = 0;
  // Makes the loop return (the coordinator's Run() then closes the server). Thread-safe.
  virtual void Stop() = 0;

  // What a posted task, compute work or timer callback throws goes to `handler` (with the
  // exception's what()), on the thread that ran it, instead of ending the process: the round
  // flow stops the federation cleanly with it. Set it before anything is posted.
  void SetErrorHandler(std::function<void(const std::string&)> handler) {
    error_handler_ = std::move(handler);
  }

 protected:
  // Runs `fn`, handing what it throws to the error handler (rethrown when none is set).
  void Guarded(const std::function<void()>& fn) const {
    try {
      fn();
    } catch (const std::exception& e) {
      if (!error_handler_) throw;
      error_handler_(e.what());
    }
  }

 private:
  std::function<void(const std::string&)> error_handler_;
};

// A Clock duration in seconds.
inline double ToSeconds(EventLoop::Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Seconds as a Clock duration.
inline EventLoop::Clock::duration SecondsToDuration(double seconds) {
  return std::chrono::duration_cast<EventLoop::Clock::duration>(
      std::chrono::duration<double>(seconds));
}

// The coordinator's loop: Boost.Asio's io_context (control, timers) and a thread_pool of one
// thread (compute). Run() runs the control thread until Stop(), then joins the pool.
class AsioEventLoop final : public EventLoop {
 public:
  AsioEventLoop();
  ~AsioEventLoop() override;

  Clock::time_point Now() const override { return Clock::now(); }
  void Post(std::function<void()> fn) override;
  void PostWork(std::function<void()> fn) override;
  std::unique_ptr<Timer> MakeTimer() override;
  void Stop() override;

  // Runs the control thread until Stop(); then waits for compute work in flight.
  void Run();
  // Calls `on_signal(signal)` once on SIGINT or SIGTERM (from the control thread).
  void HandleSignals(std::function<void(int)> on_signal);
  // Calls `on_hangup()` on every SIGHUP (from the control thread), until Stop().
  void HandleHangup(std::function<void()> on_hangup);

  // Guarded(fn), for the timers.
  void RunGuarded(const std::function<void()>& fn) const { Guarded(fn); }

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_EVENT_LOOP_H_
