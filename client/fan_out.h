// Runs one function (or one asynchronous call) per host concurrently and
// waits for all of them.
#ifndef TCBSCOPE_CLIENT_FAN_OUT_H_
#define TCBSCOPE_CLIENT_FAN_OUT_H_

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "client/process_end.h"

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

// Starts start(i, done) for i in [0, n) from the calling thread, at most
// `in_flight` at a time, and returns when every one has called its `done`
// (exactly once, from any thread; it may be called before start returns).
// For asynchronous calls: many hosts in flight need no thread each, and the
// bound keeps a long host list within the file limit.
//
// What start returns (a host's client, say) is kept until that call's `done`
// and then retired (process_end.h) on the calling thread, before the next
// call starts or before this returns: never inside a completion. A finished
// host's connection is closed then, before another is opened; in a CLI that
// ends without teardown it is kept instead, up to kMaxKept, so that at most
// in_flight + kMaxKept connections are open at once.
inline void StartEachBounded(size_t n,
                             const std::function<std::shared_ptr<void>(size_t, std::function<void()>)>& start,
                             size_t in_flight = 128) {
  std::vector<std::shared_ptr<void>> held(n);
  absl::Mutex mu;
  size_t running = 0;            // guarded by mu
  std::vector<size_t> finished;  // guarded by mu; not yet released
  size_t finished_total = 0;     // guarded by mu
  auto release_finished = [&] {
    std::vector<size_t> ready;
    {
      absl::MutexLock l(&mu);
      ready.swap(finished);
    }
    for (size_t i : ready) Retire(std::move(held[i]));
  };
  for (size_t i = 0; i < n; ++i) {
    {
      absl::MutexLock l(&mu);
      auto room = [&] { return running < in_flight; };
      mu.Await(absl::Condition(&room));
      ++running;
    }
    release_finished();
    held[i] = start(i, [&, i] {
      absl::MutexLock l(&mu);
      --running;
      ++finished_total;
      finished.push_back(i);
    });
  }
  {
    absl::MutexLock l(&mu);
    auto all = [&] { return finished_total == n; };
    mu.Await(absl::Condition(&all));
  }
  for (std::shared_ptr<void>& h : held) Retire(std::move(h));
}

}  // namespace tcbscope

#endif  // TCBSCOPE_CLIENT_FAN_OUT_H_
