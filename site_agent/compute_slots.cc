#include "site_agent/compute_slots.h"

#include <exception>
#include <string>
#include <thread>

#include "common/util/error.h"

namespace fedmed {

// One compute thread and its mailbox: at most one job at a time (its slot's holder's).
struct ComputeSlots::Worker {
  std::mutex mu;
  std::condition_variable cv;
  const std::function<void()>* job = nullptr;  // set by Run, cleared by Run once done
  bool done = false;
  bool quit = false;
  std::thread thread;

  void Loop() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [this] { return quit || (job != nullptr && !done); });
      if (job == nullptr || done) return;  // quit with nothing to do
      const std::function<void()>* work = job;
      lock.unlock();
      (*work)();  // never throws: Run wraps the caller's work
      lock.lock();
      done = true;
      cv.notify_all();
    }
  }
};

ComputeSlots::Lease::Lease(Lease&& other) noexcept : owner_(other.owner_), index_(other.index_) {
  other.owner_ = nullptr;
  other.index_ = -1;
}

ComputeSlots::Lease& ComputeSlots::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Release();
    owner_ = other.owner_;
    index_ = other.index_;
    other.owner_ = nullptr;
    other.index_ = -1;
  }
  return *this;
}

ComputeSlots::Lease::~Lease() { Release(); }

void ComputeSlots::Lease::Release() {
  if (owner_ != nullptr) owner_->Put(index_);
  owner_ = nullptr;
  index_ = -1;
}

void ComputeSlots::Lease::Run(const std::function<void()>& work) {
  if (owner_ == nullptr) throw Error("ComputeSlots::Lease::Run on a released lease");
  Worker& w = *owner_->workers_[static_cast<size_t>(index_)];
  std::exception_ptr error;
  const std::function<void()> job = [&] {
    try {
      work();
    } catch (...) {
      error = std::current_exception();
    }
  };
  std::unique_lock<std::mutex> lock(w.mu);
  w.job = &job;
  w.done = false;
  w.cv.notify_all();
  w.cv.wait(lock, [&w] { return w.done; });
  w.job = nullptr;
  lock.unlock();
  if (error) std::rethrow_exception(error);
}

ComputeSlots::ComputeSlots(int slots) {
  if (slots < 1) {
    throw ConfigError("compute slots: expected an integer >= 1, got " + std::to_string(slots));
  }
  busy_.assign(static_cast<size_t>(slots), false);
  for (int i = 0; i < slots; ++i) {
    workers_.push_back(std::make_unique<Worker>());
    Worker* w = workers_.back().get();
    w->thread = std::thread([w] { w->Loop(); });
  }
}

ComputeSlots::~ComputeSlots() {
  for (auto& w : workers_) {
    {
      std::lock_guard<std::mutex> lock(w->mu);
      w->quit = true;
    }
    w->cv.notify_all();
    w->thread.join();
  }
}

ComputeSlots::Lease ComputeSlots::Acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return in_use_ < slots(); });
  return TakeLocked();
}

std::optional<ComputeSlots::Lease> ComputeSlots::TryAcquireFor(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [this] { return in_use_ < slots(); })) return std::nullopt;
  return TakeLocked();
}

int ComputeSlots::in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_use_;
}

int ComputeSlots::peak_in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_;
}

ComputeSlots::Lease ComputeSlots::TakeLocked() {
  int index = 0;
  while (busy_[static_cast<size_t>(index)]) ++index;  // in_use_ < slots(): one is free
  busy_[static_cast<size_t>(index)] = true;
  ++in_use_;
  if (in_use_ > peak_) peak_ = in_use_;
  return Lease(this, index);
}

void ComputeSlots::Put(int index) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    busy_[static_cast<size_t>(index)] = false;
    --in_use_;
  }
  cv_.notify_one();
}

}  // namespace fedmed
