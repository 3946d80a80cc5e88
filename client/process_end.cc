#include "client/process_end.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace tcbscope {
namespace {

std::atomic<bool> ends_without_teardown{false};

struct Kept {
  absl::Mutex mu;
  std::vector<std::shared_ptr<void>> objects ABSL_GUARDED_BY(mu);
};

// Never destroyed: what it holds is meant to outlive every destructor.
Kept& TheKept() {
  static Kept* const kept = new Kept;
  return *kept;
}

}  // namespace

void EndWithoutTeardown() { ends_without_teardown.store(true, std::memory_order_relaxed); }

void Retire(std::shared_ptr<void> object) {
  if (object == nullptr || !ends_without_teardown.load(std::memory_order_relaxed)) return;
  Kept& kept = TheKept();
  absl::MutexLock l(&kept.mu);
  if (kept.objects.size() < kMaxKept) kept.objects.push_back(std::move(object));
  // Else `object` is destroyed on return, after the lock is released.
}

void EndProcess(int code) {
  fflush(nullptr);
  _exit(code);
}

}  // namespace tcbscope
