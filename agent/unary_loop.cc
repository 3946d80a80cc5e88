#include "agent/unary_loop.h"

namespace tcbscope {

void UnaryLoop::AskNext(Method* method) {
  // Held while asking: BeginShutdown returns either before this looks or
  // after the call is asked for, and the server's Shutdown, which comes
  // after BeginShutdown, then ends that call. So nothing is added to the
  // queue once it is shut down.
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  method->AskNext(cq_);
}

bool UnaryLoop::FinishUnlessDown(absl::FunctionRef<void()> finish) {
  absl::MutexLock lock(&mu_);
  if (queue_down_) return false;
  finish();
  return true;
}

void UnaryLoop::EndShutdown() {
  // Under the lock: an answer is either started before the queue goes down
  // (and then completes, cancelled, before Next says the queue is empty) or
  // not at all.
  absl::MutexLock lock(&mu_);
  queue_down_ = true;
  cq_->Shutdown();
}

void UnaryLoop::BeginShutdown() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
}

void UnaryLoop::Run() {
  for (const auto& m : methods_) AskNext(m.get());
  void* tag = nullptr;
  bool ok = false;
  // Every call asked for comes back, answered or cancelled by the server's
  // shutdown, before Next says the queue is shut down and empty.
  while (cq_->Next(&tag, &ok)) {
    auto* call = static_cast<Call*>(tag);
    if (!call->Proceed(this, ok)) delete call;
  }
}

}  // namespace tcbscope
