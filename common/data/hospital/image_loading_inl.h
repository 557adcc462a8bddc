// Implementation of ParallelProduce (image_loading.h); include image_loading.h instead.
#ifndef FEDMED_COMMON_DATA_HOSPITAL_IMAGE_LOADING_INL_H_
#define FEDMED_COMMON_DATA_HOSPITAL_IMAGE_LOADING_INL_H_

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>

namespace fedmed {

template <typename T>
void ParallelProduce(int64_t count, int threads, int capacity,
                     const std::function<T(int64_t)>& produce,
                     const std::function<void(int64_t, T&&)>& consume) {
  if (count <= 0) return;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = static_cast<int>(std::min<int64_t>(threads, count));
  const size_t limit = static_cast<size_t>(std::max(1, capacity));

  std::mutex mu;
  std::condition_variable not_full, not_empty;
  std::deque<std::pair<int64_t, T>> queue;
  std::atomic<int64_t> next{0};
  bool stop = false;
  int running = threads;
  std::exception_ptr error;

  const auto work = [&] {
    for (;;) {
      const int64_t i = next.fetch_add(1);
      if (i >= count) break;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stop) break;
      }
      try {
        T result = produce(i);
        std::unique_lock<std::mutex> lock(mu);
        not_full.wait(lock, [&] { return stop || queue.size() < limit; });
        if (stop) break;
        queue.emplace_back(i, std::move(result));
        not_empty.notify_one();
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        stop = true;
        not_full.notify_all();
        not_empty.notify_all();
        break;
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    --running;
    not_empty.notify_all();
  };

  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (int t = 0; t < threads; ++t) workers.emplace_back(work);

  for (;;) {
    std::unique_lock<std::mutex> lock(mu);
    not_empty.wait(lock, [&] { return stop || !queue.empty() || running == 0; });
    if (stop || queue.empty()) break;  // an error, or every worker finished and all consumed
    std::pair<int64_t, T> item = std::move(queue.front());
    queue.pop_front();
    not_full.notify_one();
    lock.unlock();
    try {
      consume(item.first, std::move(item.second));
    } catch (...) {
      std::lock_guard<std::mutex> relock(mu);
      if (!error) error = std::current_exception();
      stop = true;
      not_full.notify_all();
      break;
    }
  }
  for (std::thread& w : workers) w.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace fedmed

#endif  // FEDMED_COMMON_DATA_HOSPITAL_IMAGE_LOADING_INL_H_
