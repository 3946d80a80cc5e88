// UnaryLoop and HealthService on a real gRPC server on loopback: answers,
// errors, concurrent callers, the health watch, and the shutdown order with
// calls in flight (it must neither hang nor touch a shut-down queue).
#include "agent/unary_loop.h"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "agent/health_service.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace tcbscope {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// A server whose only service is a HealthService, its Check on a UnaryLoop,
// stopped as agent_server.cc stops its own.
class LoopServer {
 public:
  explicit LoopServer(uint32_t max_watchers = 16) : health_(max_watchers) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&health_);
    cq_ = builder.AddCompletionQueue();
    loop_ = std::make_unique<UnaryLoop>(cq_.get());
    health_.ServeOn(loop_.get());
    server_ = builder.BuildAndStart();
    if (server_ != nullptr) {
      run_ = std::async(std::launch::async, [this] { loop_->Run(); });
    }
  }
  ~LoopServer() { Stop(); }

  bool ok() const { return server_ != nullptr && port_ > 0; }
  std::unique_ptr<Health::Stub> Stub() const {
    return Health::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials()));
  }
  HealthService& health() { return health_; }

  // True when Run returned within `limit` of the server's shutdown.
  bool Stop(std::chrono::seconds limit = std::chrono::seconds(10)) {
    if (stopped_ || server_ == nullptr) return true;
    stopped_ = true;
    health_.Shutdown();
    loop_->BeginShutdown();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    loop_->EndShutdown();
    const bool returned = run_.wait_for(limit) == std::future_status::ready;
    server_->Wait();
    return returned;
  }

 private:
  HealthService health_;
  int port_ = 0;
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  std::unique_ptr<UnaryLoop> loop_;
  std::unique_ptr<grpc::Server> server_;
  std::future<void> run_;
  bool stopped_ = false;
};

grpc::Status Check(Health::Stub& stub, const std::string& service, HealthCheckResponse* out) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  HealthCheckRequest req;
  req.set_service(service);
  return stub.Check(&ctx, req, out);
}

TEST(UnaryLoopTest, AnswersAndErrorsReachTheCaller) {
  LoopServer server;
  ASSERT_TRUE(server.ok());
  auto stub = server.Stub();
  HealthCheckResponse resp;
  ASSERT_TRUE(Check(*stub, "", &resp).ok());
  EXPECT_EQ(resp.status(), HealthCheckResponse::SERVING);
  ASSERT_TRUE(Check(*stub, "tcbscope.v1.Inspector", &resp).ok());
  EXPECT_EQ(resp.status(), HealthCheckResponse::SERVING);
  grpc::Status unknown = Check(*stub, "no.such.Service", &resp);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(unknown.error_message().find("no.such.Service"), std::string::npos);
  EXPECT_TRUE(server.Stop());
}

TEST(UnaryLoopTest, ServesConcurrentCallersOnSeparateConnections) {
  LoopServer server;
  ASSERT_TRUE(server.ok());
  std::atomic<int> serving{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 8; ++t) {
    callers.emplace_back([&] {
      auto stub = server.Stub();
      for (int i = 0; i < 50; ++i) {
        HealthCheckResponse resp;
        if (Check(*stub, "", &resp).ok() && resp.status() == HealthCheckResponse::SERVING) ++serving;
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(serving.load(), 8 * 50);
  EXPECT_TRUE(server.Stop());
}

// Callers keep calling while the server stops: Run must return (every call
// taken answered, every one asked for cancelled, the queue drained), and
// the callers see answers or UNAVAILABLE, nothing else.
TEST(UnaryLoopTest, StopsWithCallsInFlight) {
  auto server = std::make_unique<LoopServer>();
  ASSERT_TRUE(server->ok());
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, other{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, stub = server->Stub()] {
      while (!stop.load()) {
        HealthCheckResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
        grpc::Status s = stub->Check(&ctx, HealthCheckRequest(), &resp);
        if (s.ok()) {
          ++answered;
        } else if (s.error_code() != grpc::StatusCode::UNAVAILABLE &&
                   s.error_code() != grpc::StatusCode::CANCELLED) {
          ++other;
        }
      }
    });
  }
  while (answered.load() < 20) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_TRUE(server->Stop()) << "Run did not return after the server's shutdown";
  stop = true;
  for (auto& t : callers) t.join();
  EXPECT_EQ(other.load(), 0);
}

// A forced shutdown (deadline now) while the loop's thread is still working
// on one answer and another call waits in the queue: the server's Shutdown
// may return before either is answered, and then the queue goes down. The
// answers must be dropped, not started on the shut-down queue (gRPC would
// abort the process).
TEST(UnaryLoopTest, AnswersStillPendingWhenTheQueueGoesDownAreDropped) {
  Health::WithAsyncMethod_Check<Health::Service> service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::ServerCompletionQueue> cq = builder.AddCompletionQueue();
  UnaryLoop loop(cq.get());
  absl::Notification first_in, release;
  std::atomic<int> answers{0};
  loop.Add(&service, &Health::WithAsyncMethod_Check<Health::Service>::RequestCheck,
      [&](grpc::ServerContext*, const HealthCheckRequest&, HealthCheckResponse* resp) {
        if (answers++ == 0) {
          first_in.Notify();
          release.WaitForNotification();
        }
        resp->set_status(HealthCheckResponse::SERVING);
        return grpc::Status::OK;
      });
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto run = std::async(std::launch::async, [&] { loop.Run(); });
  auto stub = Health::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  auto call = [&] {
    HealthCheckResponse resp;
    Check(*stub, "", &resp);
  };
  std::thread a(call);
  ASSERT_TRUE(first_in.WaitForNotificationWithTimeout(absl::Seconds(10)));
  std::thread b(call);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // b's call taken, waiting in the queue
  // Released a second from now, in case the server's Shutdown waits for it.
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    release.Notify();
  });
  loop.BeginShutdown();
  server->Shutdown(std::chrono::system_clock::now());
  loop.EndShutdown();
  EXPECT_EQ(run.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  server->Wait();
  releaser.join();
  a.join();
  b.join();
}

TEST(UnaryLoopTest, ShutdownBeforeAnyCallEndsRun) {
  LoopServer server;
  ASSERT_TRUE(server.ok());
  EXPECT_TRUE(server.Stop());
}

TEST(HealthServiceTest, WatchSendsServingThenNotServingAtShutdown) {
  LoopServer server;
  ASSERT_TRUE(server.ok());
  auto stub = server.Stub();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto reader = stub->Watch(&ctx, HealthCheckRequest());
  HealthCheckResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::SERVING);
  server.health().Shutdown();
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(reader->Read(&resp));
  EXPECT_TRUE(reader->Finish().ok());
  // Check agrees once shut down.
  HealthCheckResponse now;
  ASSERT_TRUE(Check(*stub, "", &now).ok());
  EXPECT_EQ(now.status(), HealthCheckResponse::NOT_SERVING);
}

TEST(HealthServiceTest, WatchOfAnUnknownServiceSaysSoAndWatchesAreBounded) {
  LoopServer server(/*max_watchers=*/1);
  ASSERT_TRUE(server.ok());
  auto stub = server.Stub();
  grpc::ClientContext first_ctx;
  auto first = stub->Watch(&first_ctx, [] {
    HealthCheckRequest r;
    r.set_service("no.such.Service");
    return r;
  }());
  HealthCheckResponse resp;
  ASSERT_TRUE(first->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::SERVICE_UNKNOWN);
  // The first still holds the only place.
  grpc::ClientContext second_ctx;
  auto second = stub->Watch(&second_ctx, HealthCheckRequest());
  EXPECT_FALSE(second->Read(&resp));
  EXPECT_EQ(second->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // A watcher that leaves gives its place back (it is seen within a second).
  first_ctx.TryCancel();
  first->Finish();
  bool got = false;
  for (int i = 0; i < 40 && !got; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    auto again = stub->Watch(&ctx, HealthCheckRequest());
    got = again->Read(&resp);
    ctx.TryCancel();
    again->Finish();
    if (!got) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(got);
}

}  // namespace
}  // namespace tcbscope
