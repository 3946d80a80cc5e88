// Answers short unary calls on one thread that drives a server completion
// queue: the methods whose answer never blocks (GetHostInfo, GetCounters,
// the health check).
//
// Why not gRPC's other two ways: the synchronous server hands each call to a
// worker and starts a new polling thread to replace it, and gRPC 1.51's
// callback API runs at least two threads on one queue that pass the poller's
// role to each other at every network event (17 context switches for one
// GetHostInfo on its own connection). A queue with one thread that polls and
// answers costs 5, and when this loop is the only queue a server polls, its
// synchronous methods' queue stops polling too (docs/design-notes.md, "One
// polling thread").
//
// Use: build the server with the queue from ServerBuilder::AddCompletionQueue,
// mark each method asynchronous in its service, Add it here, start the server,
// then call Run on a thread of the caller's. To stop, in this order:
// BeginShutdown (no call is asked for after it), Server::Shutdown,
// EndShutdown, then join that thread: Run returns when the queue is drained,
// and the queue may then be destroyed. Server::Shutdown may return while a
// call taken is not yet answered (a forced cancel closes its connection);
// such a call is dropped, never answered on the shut-down queue.
//
// Thread-safety: Add before Run; BeginShutdown from any thread; the calls'
// answers run on Run's thread, one at a time.
#ifndef TCBSCOPE_AGENT_UNARY_LOOP_H_
#define TCBSCOPE_AGENT_UNARY_LOOP_H_

#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"

namespace tcbscope {

class UnaryLoop {
 public:
  // Computes one call's answer. Must not block: every other call waits.
  template <class Request, class Response>
  using Answer = std::function<grpc::Status(grpc::ServerContext*, const Request&, Response*)>;

  // `cq` must outlive Run.
  explicit UnaryLoop(grpc::ServerCompletionQueue* cq) : cq_(cq) {}
  UnaryLoop(const UnaryLoop&) = delete;
  UnaryLoop& operator=(const UnaryLoop&) = delete;
  ~UnaryLoop() = default;

  // Serves one method, marked asynchronous in `service` by the generated
  // WithAsyncMethod_<Method>: `request` is that class's Request<Method>,
  // which the loop calls with its queue for both the call and its
  // notification. `answer` converts to Answer<Request, Response>.
  // REQUIRES: Run has not started.
  template <class Service, class Base, class Request, class Response, class AnswerFn>
  void Add(Service* service,
           void (Base::*request)(grpc::ServerContext*, Request*, grpc::ServerAsyncResponseWriter<Response>*,
                                 grpc::CompletionQueue*, grpc::ServerCompletionQueue*, void*),
           AnswerFn answer) {
    Ask<Request, Response> ask = [service, request](grpc::ServerContext* context, Request* req,
                                                    grpc::ServerAsyncResponseWriter<Response>* responder,
                                                    grpc::ServerCompletionQueue* cq,
                                                    void* tag) { (service->*request)(context, req, responder, cq, cq, tag); };
    methods_.push_back(std::make_unique<TypedMethod<Request, Response>>(
        std::move(ask), Answer<Request, Response>(std::move(answer))));
  }

  // Serves until EndShutdown, then drains the queue.
  // REQUIRES: the server was started; called once.
  void Run();

  // No more calls are asked for after this returns; the ones asked for
  // already end when the server shuts down.
  void BeginShutdown();
  // Shuts the queue down. REQUIRES: BeginShutdown, then Server::Shutdown,
  // have returned.
  void EndShutdown();

 private:
  // Asks gRPC for the next call of one method: (context, request, responder,
  // queue, tag).
  template <class Request, class Response>
  using Ask = std::function<void(grpc::ServerContext*, Request*, grpc::ServerAsyncResponseWriter<Response>*,
                                 grpc::ServerCompletionQueue*, void*)>;

  // One call in flight: asked for, then answered. Its address is the tag of
  // both operations.
  class Call {
   public:
    virtual ~Call() = default;
    // The operation tagged with this call completed. Returns false when the
    // call is over (the loop then deletes it).
    virtual bool Proceed(UnaryLoop* loop, bool ok) = 0;
  };
  class Method {
   public:
    virtual ~Method() = default;
    // Asks for a new Call on `cq`; the loop deletes it when it is over.
    virtual void AskNext(grpc::ServerCompletionQueue* cq) = 0;
  };
  template <class Request, class Response>
  class TypedMethod;
  template <class Request, class Response>
  class TypedCall;

  // Asks for the next call of `method` unless shutting down.
  void AskNext(Method* method);
  // Runs `finish` (which starts an operation on the queue) unless the queue
  // is shut down; false if it is.
  bool FinishUnlessDown(absl::FunctionRef<void()> finish);

  grpc::ServerCompletionQueue* const cq_;
  std::vector<std::unique_ptr<Method>> methods_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool queue_down_ ABSL_GUARDED_BY(mu_) = false;
};

template <class Request, class Response>
class UnaryLoop::TypedCall final : public Call {
 public:
  explicit TypedCall(TypedMethod<Request, Response>* method) : method_(method), responder_(&context_) {}

  bool Proceed(UnaryLoop* loop, bool ok) override {
    if (answered_ || !ok) return false;  // answered, or the server shut down before a call came
    loop->AskNext(method_);              // the next caller must not wait for this answer to be sent
    answered_ = true;
    grpc::Status status = method_->answer_(&context_, request_, &response_);
    // Dropped if the queue went down meanwhile: deleting the call cancels it.
    return loop->FinishUnlessDown([&] {
      if (status.ok()) {
        responder_.Finish(response_, status, this);
      } else {
        responder_.FinishWithError(status, this);
      }
    });
  }

  void Ask(grpc::ServerCompletionQueue* cq) { method_->ask_(&context_, &request_, &responder_, cq, this); }

 private:
  TypedMethod<Request, Response>* const method_;
  grpc::ServerContext context_;
  Request request_;
  Response response_;
  grpc::ServerAsyncResponseWriter<Response> responder_;
  bool answered_ = false;
};

template <class Request, class Response>
class UnaryLoop::TypedMethod final : public Method {
 public:
  TypedMethod(Ask<Request, Response> ask, Answer<Request, Response> answer)
      : ask_(std::move(ask)), answer_(std::move(answer)) {}

  void AskNext(grpc::ServerCompletionQueue* cq) override { (new TypedCall<Request, Response>(this))->Ask(cq); }

 private:
  friend class TypedCall<Request, Response>;
  const Ask<Request, Response> ask_;
  const Answer<Request, Response> answer_;
};

}  // namespace tcbscope

#endif  // TCBSCOPE_AGENT_UNARY_LOOP_H_
