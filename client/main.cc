// tcbscope: the CLI. Everything lives in the library; see client/cli.h.
#include <malloc.h>

#include "absl/synchronization/mutex.h"
#include "client/cli.h"
#include "client/process_end.h"
#include "common/sanitizers.h"

int main(int argc, char** argv) {
  // A 100k-socket listing passes ~100 MB through short-lived buffers (JSON
  // batches of ~1 MB). Keep freed memory for reuse instead of returning it
  // to the kernel and faulting it back in: half of the client's system time
  // (docs/performance.md). The CLI is short-lived; `watch` allocates little.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_TOP_PAD, 16 << 20);
  // One malloc arena for every thread. With one per thread, each of gRPC's
  // reading threads grew its own heap 64 KiB at a time (no top pad there)
  // into new pages while freed memory sat in another arena: at 2 x 100k
  // connections `correlate` took 8.7k page faults instead of 6k. The CLI has
  // a few threads, so one lock costs little.
  mallopt(M_ARENA_MAX, 1);
  // Debian's Abseil checks every Mutex acquisition against a lock graph (a
  // debugging aid; gRPC locks often): a few percent of a fan-out's CPU. The
  // sanitizer build, which runs the tests, keeps the check.
#if !TCBSCOPE_ADDRESS_SANITIZER
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // The process ends without tearing gRPC down: a finished host's channel is
  // kept, not destroyed, and the kernel closes its connection at the exit
  // (client/process_end.h). The sanitizer build tears down as usual, so its
  // tests check that path and look for leaks.
  tcbscope::EndWithoutTeardown();
  tcbscope::EndProcess(tcbscope::RunCli(argc, argv));
#else
  return tcbscope::RunCli(argc, argv);
#endif
}
