// An EventLoop (coordinator/event_loop.h) for tests: nothing runs until the test says so. Posted
// control tasks and compute work wait in one queue (RunPending runs it until it is empty; compute
// work can also be held aside, HoldWork), and the clock stands still until Advance moves it,
// firing the timers that fall due.
#ifndef FEDMED_TESTS_COORDINATOR_MANUAL_EVENT_LOOP_H_
#define FEDMED_TESTS_COORDINATOR_MANUAL_EVENT_LOOP_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "coordinator/event_loop.h"

namespace fedmed {
namespace testing {

class ManualEventLoop final : public EventLoop {
 public:
  Clock::time_point Now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  void Post(std::function<void()> fn) override { Enqueue(std::move(fn)); }
  void PostWork(std::function<void()> fn) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (hold_work_) {
        held_work_.push_back(std::move(fn));
        return;
      }
    }
    Enqueue(std::move(fn));
  }
  // While held, compute work (PostWork) waits aside until ReleaseWork queues it: a test can then
  // look at what the control thread does while aggregation or evaluation is still running.
  void HoldWork(bool hold) {
    std::lock_guard<std::mutex> lock(mu_);
    hold_work_ = hold;
  }
  // Queues the compute work held so far (in the order it was posted); returns how many items.
  size_t ReleaseWork() {
    std::lock_guard<std::mutex> lock(mu_);
    const size_t n = held_work_.size();
    for (auto& fn : held_work_) queue_.push_back(std::move(fn));
    held_work_.clear();
    return n;
  }
  void Stop() override {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
  }
  bool stopped() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stopped_;
  }

  std::unique_ptr<Timer> MakeTimer() override {
    return std::make_unique<ManualTimer>(this, next_timer_++);
  }

  // Runs queued work, and what it queues, until the queue is empty.
  void RunPending() {
    while (true) {
      std::function<void()> fn;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (queue_.empty()) return;
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      Guarded(fn);
    }
  }

  // Moves the clock by `seconds`, running due timers (in order) and the work they queue.
  void Advance(double seconds) {
    const Clock::time_point until = Now() + SecondsToDuration(seconds);
    RunPending();
    while (true) {
      std::function<void()> fn;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto due = timers_.end();
        for (auto it = timers_.begin(); it != timers_.end(); ++it) {
          if (it->second.first <= until &&
              (due == timers_.end() || it->second.first < due->second.first)) {
            due = it;
          }
        }
        if (due == timers_.end()) {
          now_ = until;
          break;
        }
        now_ = due->second.first;
        fn = std::move(due->second.second);
        timers_.erase(due);
      }
      Guarded(fn);
      RunPending();
    }
    RunPending();
  }

 private:
  class ManualTimer final : public Timer {
   public:
    ManualTimer(ManualEventLoop* loop, int id) : loop_(loop), id_(id) {}
    ~ManualTimer() override { Cancel(); }
    void Arm(Clock::time_point when, std::function<void()> callback) override {
      std::lock_guard<std::mutex> lock(loop_->mu_);
      loop_->timers_[id_] = {when, std::move(callback)};
    }
    void Cancel() override {
      std::lock_guard<std::mutex> lock(loop_->mu_);
      loop_->timers_.erase(id_);
    }

   private:
    ManualEventLoop* loop_;
    int id_;
  };

  void Enqueue(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(fn));
  }

  mutable std::mutex mu_;
  Clock::time_point now_{};  // the clock starts at the epoch of steady_clock
  std::deque<std::function<void()>> queue_;
  std::deque<std::function<void()>> held_work_;
  bool hold_work_ = false;
  std::map<int, std::pair<Clock::time_point, std::function<void()>>> timers_;
  int next_timer_ = 0;
  bool stopped_ = false;
};

}  // namespace testing
}  // namespace fedmed

#endif  // FEDMED_TESTS_COORDINATOR_MANUAL_EVENT_LOOP_H_
