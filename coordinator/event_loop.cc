#include "coordinator/event_loop.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <csignal>
#include <optional>

#include "common/util/mutex.h"

namespace fedmed {

namespace asio = boost::asio;

class AsioEventLoop::Impl {
 public:
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  asio::thread_pool pool{1};
  std::optional<asio::signal_set> signals;
  std::optional<asio::signal_set> hangup;
};

namespace {

// A steady_timer whose callback runs only for the latest Arm: a handler already queued when the
// timer is re-armed or cancelled sees a newer generation and does nothing.
class AsioTimer final : public EventLoop::Timer {
 public:
  AsioTimer(asio::io_context& io, const AsioEventLoop* loop) : timer_(io), loop_(loop) {}

  void Arm(EventLoop::Clock::time_point when, std::function<void()> callback) override {
    uint64_t generation;
    {
      MutexLock lock(&mu_);
      generation = ++generation_;
    }
    timer_.expires_at(when);
    timer_.async_wait([this, generation, callback = std::move(callback)](
                          const boost::system::error_code& ec) {
      if (ec) return;
      {
        MutexLock lock(&mu_);
        if (generation != generation_) return;
      }
      loop_->RunGuarded(callback);
    });
  }

  void Cancel() override {
    {
      MutexLock lock(&mu_);
      ++generation_;
    }
    timer_.cancel();
  }

 private:
  asio::steady_timer timer_;
  const AsioEventLoop* loop_;
  Mutex mu_;
  uint64_t generation_ GUARDED_BY(mu_) = 0;
};

}  // namespace

AsioEventLoop::AsioEventLoop() : impl_(std::make_unique<Impl>()) {}

AsioEventLoop::~AsioEventLoop() { impl_->pool.join(); }

void AsioEventLoop::Post(std::function<void()> fn) {
  asio::post(impl_->io, [this, fn = std::move(fn)] { Guarded(fn); });
}

void AsioEventLoop::PostWork(std::function<void()> fn) {
  asio::post(impl_->pool, [this, fn = std::move(fn)] { Guarded(fn); });
}

std::unique_ptr<EventLoop::Timer> AsioEventLoop::MakeTimer() {
  return std::make_unique<AsioTimer>(impl_->io, this);
}

void AsioEventLoop::Stop() {
  if (impl_->signals) {
    boost::system::error_code ignored;
    impl_->signals->cancel(ignored);
  }
  if (impl_->hangup) {
    boost::system::error_code ignored;
    impl_->hangup->cancel(ignored);
  }
  impl_->io.stop();
}

void AsioEventLoop::Run() {
  impl_->io.run();
  impl_->pool.join();
}

void AsioEventLoop::HandleSignals(std::function<void(int)> on_signal) {
  impl_->signals.emplace(impl_->io, SIGINT, SIGTERM);
  impl_->signals->async_wait(
      [on_signal = std::move(on_signal)](const boost::system::error_code& ec, int signal) {
        if (!ec) on_signal(signal);
      });
}

namespace {

void WaitForHangup(asio::signal_set* set, std::function<void()> on_hangup) {
  set->async_wait([set, on_hangup = std::move(on_hangup)](const boost::system::error_code& ec,
                                                           int) mutable {
    if (ec) return;
    on_hangup();
    WaitForHangup(set, std::move(on_hangup));
  });
}

}  // namespace

void AsioEventLoop::HandleHangup(std::function<void()> on_hangup) {
  impl_->hangup.emplace(impl_->io, SIGHUP);
  WaitForHangup(&*impl_->hangup, std::move(on_hangup));
}

}  // namespace fedmed
