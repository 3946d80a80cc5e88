// Turns to read the kernel: the limit holds, waiters get in as turns end,
// and a stalled turn stops keeping others out (on a fake clock).
#include "agent/dump_turns.h"

#include <thread>

#include "gtest/gtest.h"

namespace tcbscope {
namespace {

class DumpTurnsTest : public ::testing::Test {
 protected:
  absl::Time now_ = absl::FromUnixSeconds(1000);
  DumpTurns turns_{2, absl::Seconds(1), [this] { return now_; }};
};

TEST_F(DumpTurnsTest, AtMostLimitAtOnce) {
  auto a = turns_.TryTake();
  auto b = turns_.TryTake();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(turns_.TryTake(), nullptr);
  EXPECT_EQ(turns_.counted(), 2u);
  a.reset();
  EXPECT_NE(turns_.TryTake(), nullptr);
}

TEST_F(DumpTurnsTest, ProgressKeepsATurnStallingLosesIt) {
  auto a = turns_.TryTake();
  auto b = turns_.TryTake();
  now_ += absl::Milliseconds(900);
  a->Progress();
  now_ += absl::Milliseconds(900);  // b silent for 1.8 s, a for 0.9 s
  auto c = turns_.TryTake();
  ASSERT_NE(c, nullptr) << "the stalled turn still kept others out";
  EXPECT_EQ(turns_.TryTake(), nullptr) << "a progressed and c is new: both count";
  // The stalled turn moving again does not push the count past the limit.
  b->Progress();
  EXPECT_EQ(turns_.counted(), 2u);
  b.reset();  // releasing a dropped turn frees nothing it does not hold
  EXPECT_EQ(turns_.counted(), 2u);
  EXPECT_EQ(turns_.TryTake(), nullptr);
}

TEST_F(DumpTurnsTest, TakeWaitsForATurnOrGivesUp) {
  auto a = turns_.TryTake();
  auto b = turns_.TryTake();
  EXPECT_EQ(turns_.Take([] { return true; }, absl::Milliseconds(1)), nullptr);
  std::unique_ptr<DumpTurns::Turn> got;
  std::thread waiter([&] { got = turns_.Take([] { return false; }, absl::Milliseconds(1)); });
  a.reset();
  waiter.join();
  EXPECT_NE(got, nullptr);
  EXPECT_EQ(turns_.counted(), 2u);
}

}  // namespace
}  // namespace tcbscope
