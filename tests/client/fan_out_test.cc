// StartEachBounded: every call started and finished, never more than the
// bound in flight, completions from other threads or from within start, and
// what each call holds released on the starting thread once it is done.
#include "client/fan_out.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace tcbscope {
namespace {

TEST(FanOutTest, StartEachBoundedKeepsTheBoundAndWaitsForAll) {
  constexpr size_t kCalls = 200, kBound = 8;
  std::atomic<size_t> running{0}, most{0}, finished{0};
  std::vector<std::thread> completers;
  std::mutex completers_mu;
  StartEachBounded(
      kCalls,
      [&](size_t i, std::function<void()> done) -> std::shared_ptr<void> {
        const size_t now = ++running;
        size_t seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        auto finish = [&, done = std::move(done)] {
          --running;
          ++finished;
          done();
        };
        if (i % 3 == 0) {
          finish();  // done before start returns (a host that failed at once)
          return nullptr;
        }
        std::lock_guard<std::mutex> l(completers_mu);
        completers.emplace_back([finish = std::move(finish)] {
          std::this_thread::sleep_for(std::chrono::microseconds(200));
          finish();
        });
        return nullptr;
      },
      kBound);
  EXPECT_EQ(finished.load(), kCalls) << "returned before every call was done";
  EXPECT_LE(most.load(), kBound);
  EXPECT_GT(most.load(), 1u) << "calls were not in flight together";
  for (auto& t : completers) t.join();
}

TEST(FanOutTest, StartEachBoundedWithNothingToDo) {
  bool called = false;
  StartEachBounded(0, [&](size_t, std::function<void()>) {
    called = true;
    return std::shared_ptr<void>();
  });
  EXPECT_FALSE(called);
}

// Each call's held object is released once its call is done, on the thread
// that started the calls, and before the next call starts when it was done
// by then; every one is released by the time StartEachBounded returns.
TEST(FanOutTest, StartEachBoundedReleasesWhatACallHoldsOnTheStartingThread) {
  constexpr size_t kCalls = 50;
  const std::thread::id starter = std::this_thread::get_id();
  std::atomic<size_t> released{0}, released_elsewhere{0}, alive{0}, most_alive{0};
  std::vector<std::thread> completers;
  StartEachBounded(
      kCalls,
      [&](size_t i, std::function<void()> done) {
        const size_t now = ++alive;
        size_t seen = most_alive.load();
        while (now > seen && !most_alive.compare_exchange_weak(seen, now)) {
        }
        std::shared_ptr<void> held(new int(0), [&](void* p) {
          delete static_cast<int*>(p);
          --alive;
          ++released;
          if (std::this_thread::get_id() != starter) ++released_elsewhere;
        });
        if (i % 2 == 0) {
          done();  // finished at once: released before the next call starts
        } else {
          completers.emplace_back([done = std::move(done)] { done(); });
          completers.back().join();  // finished before start returns, on another thread
        }
        return held;
      },
      4);
  EXPECT_EQ(released.load(), kCalls);
  EXPECT_EQ(released_elsewhere.load(), 0u);
  EXPECT_EQ(most_alive.load(), 1u) << "a finished call's object was kept past the next start";
}

// As gRPC completes calls: later, on threads of its own. What a call holds is
// still released on the starting thread (at a later start, or at the end).
TEST(FanOutTest, StartEachBoundedReleasesLateCompletionsOnTheStartingThread) {
  constexpr size_t kCalls = 40;
  const std::thread::id starter = std::this_thread::get_id();
  std::atomic<size_t> released{0}, released_elsewhere{0};
  std::vector<std::thread> completers;
  StartEachBounded(
      kCalls,
      [&](size_t, std::function<void()> done) {
        std::shared_ptr<void> held(new int(0), [&](void* p) {
          delete static_cast<int*>(p);
          ++released;
          if (std::this_thread::get_id() != starter) ++released_elsewhere;
        });
        completers.emplace_back([done = std::move(done)] {
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
          done();
        });
        return held;
      },
      8);
  EXPECT_EQ(released.load(), kCalls) << "returned holding a finished call's object";
  EXPECT_EQ(released_elsewhere.load(), 0u);
  for (auto& t : completers) t.join();
}

}  // namespace
}  // namespace tcbscope
