// Retire and EndProcess: what is retired is destroyed at once unless the
// process ends without teardown; then it is kept (to a bound) and never
// destroyed, and the process ends with the code given, its output flushed
// or the failure to write it reported. The last two run in a child process:
// EndWithoutTeardown cannot be undone.
#include "client/process_end.h"

#include <unistd.h>

#include <cstdio>
#include <memory>

#include "gtest/gtest.h"

namespace tcbscope {
namespace {

// Counts destructions, and says so on stderr.
struct Counted {
  explicit Counted(int* destroyed) : destroyed_(destroyed) {}
  ~Counted() {
    ++*destroyed_;
    fputs("destroyed\n", stderr);
  }
  int* destroyed_;
};

TEST(ProcessEndTest, RetireDestroysAtOnceByDefault) {
  int destroyed = 0;
  Retire(std::make_shared<Counted>(&destroyed));
  EXPECT_EQ(destroyed, 1);
  auto shared = std::make_shared<Counted>(&destroyed);
  Retire(shared);  // not the last reference
  EXPECT_EQ(destroyed, 1);
  shared.reset();
  EXPECT_EQ(destroyed, 2);
  Retire(nullptr);
}

TEST(ProcessEndTest, KeepsUpToTheBoundAndEndsWithoutDestroying) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        EndWithoutTeardown();
        int destroyed = 0;
        for (size_t i = 0; i < kMaxKept + 3; ++i) Retire(std::make_shared<Counted>(&destroyed));
        fprintf(stderr, "%d at once\n", destroyed);
        EndProcess(5);
      },
      testing::ExitedWithCode(5),
      // Three beyond the bound went at once; nothing after that line: no
      // kept object was destroyed on the way out.
      "^destroyed\ndestroyed\ndestroyed\n3 at once\n$");
}

TEST(ProcessEndTest, AFailedWriteOfTheOutputIsAnError) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        if (freopen("/dev/full", "w", stdout) == nullptr) _exit(99);
        fputs("a result that cannot be written", stdout);
        EndProcess(0);
      },
      testing::ExitedWithCode(1), "^tcbscope: writing the output: No space left on device\n$");
  // A non-zero code is kept: it already says what went wrong.
  EXPECT_EXIT(
      {
        if (freopen("/dev/full", "w", stdout) == nullptr) _exit(99);
        fputs("x", stdout);
        EndProcess(3);
      },
      testing::ExitedWithCode(3), "");
}

}  // namespace
}  // namespace tcbscope
