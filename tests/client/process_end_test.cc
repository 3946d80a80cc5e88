// Retire and EndProcess: what is retired is destroyed at once unless the
// process ends without teardown; then it is kept (to a bound) and never
// destroyed, and the process ends with the code given, its output flushed,
// running no exit handlers. The last two run in a child process:
// EndWithoutTeardown cannot be undone.
#include "client/process_end.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

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
        // Would print at exit(), not at _exit().
        atexit([] { fputs("atexit ran\n", stderr); });
        EndWithoutTeardown();
        int destroyed = 0;
        for (size_t i = 0; i < kMaxKept + 3; ++i) Retire(std::make_shared<Counted>(&destroyed));
        fprintf(stderr, "%d at once\n", destroyed);
        EndProcess(5);
      },
      testing::ExitedWithCode(5),
      // Three beyond the bound went at once; nothing after that line: no
      // kept object was destroyed and no exit handler ran on the way out.
      "^destroyed\ndestroyed\ndestroyed\n3 at once\n$");
}

TEST(ProcessEndTest, EndProcessFlushesWhatWasBuffered) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // In the build tree: the child is this binary run again, so the name must
  // not depend on the process, and builds side by side must not share it.
  const std::string path = TCBSCOPE_BINARY_DIR "/process_end_test_out";
  EXPECT_EXIT(
      {
        if (freopen(path.c_str(), "w", stdout) == nullptr) _exit(99);
        fputs("no newline, still buffered", stdout);
        EndProcess(4);
      },
      testing::ExitedWithCode(4), "");
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "no newline, still buffered");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace tcbscope
