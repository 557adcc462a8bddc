#include "coordinator/call_limits.h"

#include <utility>

namespace fedmed {

InFlight::Slot::Slot(Slot&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), key_(std::move(other.key_)) {}

InFlight::Slot::~Slot() {
  if (owner_ == nullptr) return;
  MutexLock lock(&owner_->mu_);
  owner_->held_.erase(key_);
}

std::optional<InFlight::Slot> InFlight::Take(const std::string& site, const char* rpc) {
  std::string key = site + '\n' + rpc;
  MutexLock lock(&mu_);
  if (!held_.insert(key).second) return std::nullopt;
  return Slot(this, std::move(key));
}

IdleWatch::IdleWatch(Clock::duration limit) : limit_(limit) {
  if (limit_ > Clock::duration::zero()) thread_ = std::thread([this] { Loop(); });
}

IdleWatch::~IdleWatch() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  stop_cv_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

IdleWatch::Entry IdleWatch::Watch(std::function<void()> cancel) {
  if (limit_ <= Clock::duration::zero()) return Entry(this, 0);
  MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  calls_[id] = Call{std::move(cancel), Clock::now(), false};
  return Entry(this, id);
}

IdleWatch::Entry::~Entry() {
  if (id_ == 0) return;
  MutexLock lock(&owner_->mu_);
  owner_->calls_.erase(id_);
}

void IdleWatch::Entry::Touch() {
  if (id_ == 0) return;
  MutexLock lock(&owner_->mu_);
  owner_->calls_.at(id_).last = Clock::now();
}

bool IdleWatch::Entry::fired() const {
  if (id_ == 0) return false;
  MutexLock lock(&owner_->mu_);
  return owner_->calls_.at(id_).fired;
}

void IdleWatch::Loop() {
  MutexLock lock(&mu_);
  while (!stop_) {
    stop_cv_.WaitUntil(Clock::now() + std::chrono::milliseconds(100));
    if (stop_) break;
    const Clock::time_point now = Clock::now();
    for (auto& [id, call] : calls_) {
      if (call.fired || now - call.last < limit_) continue;
      call.fired = true;
      // Under mu_, so the Entry (and with it what `cancel` refers to) outlives this.
      call.cancel();
    }
  }
}

}  // namespace fedmed
