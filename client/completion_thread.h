// A completion queue and the one thread that takes its completions, for
// asynchronous calls started from another thread.
//
// Why not gRPC's callback API: in gRPC 1.51 its first use starts at least two
// threads on one queue, and they hand the poller's role to each other at
// every network event. With one thread that polls and completes, a 32-host
// `info` took 18% less of the CLI's CPU (docs/performance.md).
//
// Thread-safety: cq() may be used from any thread; each Tag's Done runs on
// the queue's thread, one at a time, so it must not block.
#ifndef TCBSCOPE_CLIENT_COMPLETION_THREAD_H_
#define TCBSCOPE_CLIENT_COMPLETION_THREAD_H_

#include <thread>

#include "grpcpp/grpcpp.h"

namespace tcbscope {

class CompletionThread {
 public:
  // What an operation started on cq() is tagged with: Done runs once for it,
  // with gRPC's ok, on this thread.
  class Tag {
   public:
    virtual ~Tag() = default;
    virtual void Done(bool ok) = 0;
  };

  CompletionThread();
  CompletionThread(const CompletionThread&) = delete;
  CompletionThread& operator=(const CompletionThread&) = delete;
  // REQUIRES: every operation started on cq() has completed.
  ~CompletionThread();

  grpc::CompletionQueue* cq() { return &cq_; }

 private:
  grpc::CompletionQueue cq_;
  std::thread thread_;
};

}  // namespace tcbscope

#endif  // TCBSCOPE_CLIENT_COMPLETION_THREAD_H_
