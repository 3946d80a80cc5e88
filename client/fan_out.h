// Runs one function per host concurrently and waits for all of them.
#ifndef TCBSCOPE_CLIENT_FAN_OUT_H_
#define TCBSCOPE_CLIENT_FAN_OUT_H_

#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>
#include <vector>

namespace tcbscope {

// Calls fn(i) for i in [0, n) on up to `parallelism` threads. Each call
// writes only its own slot of the caller's results, so no locking is needed.
inline void ForEachConcurrently(size_t n, const std::function<void(size_t)>& fn, size_t parallelism = 64) {
  if (n == 0) return;
  if (n == 1) {
    fn(0);
    return;
  }
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  const size_t workers = std::min(n, parallelism);
  threads.reserve(workers);
  for (size_t w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      for (size_t i = next++; i < n; i = next++) fn(i);
    });
  }
  for (auto& t : threads) t.join();
}

}  // namespace tcbscope

#endif  // TCBSCOPE_CLIENT_FAN_OUT_H_
