// StartEachBounded: every call started and finished, never more than the
// bound in flight, completions from other threads or from within start.
#include "client/fan_out.h"

#include <atomic>
#include <chrono>
#include <functional>
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
      [&](size_t i, std::function<void()> done) {
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
          return;
        }
        std::lock_guard<std::mutex> l(completers_mu);
        completers.emplace_back([finish = std::move(finish)] {
          std::this_thread::sleep_for(std::chrono::microseconds(200));
          finish();
        });
      },
      kBound);
  EXPECT_EQ(finished.load(), kCalls) << "returned before every call was done";
  EXPECT_LE(most.load(), kBound);
  EXPECT_GT(most.load(), 1u) << "calls were not in flight together";
  for (auto& t : completers) t.join();
}

TEST(FanOutTest, StartEachBoundedWithNothingToDo) {
  bool called = false;
  StartEachBounded(0, [&](size_t, std::function<void()>) { called = true; });
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace tcbscope
