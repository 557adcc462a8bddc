// A mutex the thread-safety analysis understands (thread_annotations.h), its scoped lock and a
// condition variable to wait on it, in the manner of LevelDB's port::Mutex and MutexLock.
// std::mutex itself carries no annotations in libstdc++, so members guarded by a std::mutex cannot
// be checked; guard them with a Mutex instead.
#ifndef FEDMED_COMMON_UTIL_MUTEX_H_
#define FEDMED_COMMON_UTIL_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "common/util/thread_annotations.h"

namespace fedmed {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  // For code the analysis cannot follow (a lambda posted elsewhere that is known to run under
  // this mutex): tells it that the mutex is held. Does not check at run time.
  void AssertHeld() const ASSERT_CAPABILITY(this) {}

  // BasicLockable, for std::condition_variable_any (CondVar).
  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

// Holds `mu` from construction to destruction.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// A condition variable bound to one Mutex, which the caller of Wait* must hold.
class CondVar {
 public:
  explicit CondVar(Mutex* mu) : mu_(mu) {}
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Releases the mutex (which the caller must hold: the analysis cannot tell this mutex from the
  // caller's name for it, so it is not annotated), waits for a signal or until `deadline`, and
  // takes the mutex again. Returns false when the deadline passed (spurious wake-ups return
  // true: re-check the state).
  template <class Clock, class Duration>
  bool WaitUntil(const std::chrono::time_point<Clock, Duration>& deadline) {
    return cv_.wait_until(*mu_, deadline) == std::cv_status::no_timeout;
  }
  void SignalAll() { cv_.notify_all(); }

 private:
  Mutex* const mu_;
  std::condition_variable_any cv_;
};

}  // namespace fedmed

#endif  // FEDMED_COMMON_UTIL_MUTEX_H_
