// grpc.health.v1.Health for the agent, in place of gRPC's built-in service
// (see proto/grpc/health/v1/health.proto for why). Check is answered on a
// UnaryLoop; Watch is a synchronous stream.
//
// Known services: "" (the agent as a whole) and tcbscope.v1.Inspector. Both
// are SERVING from construction until Shutdown, then NOT_SERVING. Check of
// any other name is NOT_FOUND; Watch of one sends SERVICE_UNKNOWN and waits,
// as the protocol asks. A Watch stream ends when its caller leaves (seen
// within a second) or at Shutdown, after sending NOT_SERVING for a known
// service. Watch streams are bounded (a thread each): past the bound,
// RESOURCE_EXHAUSTED.
//
// Thread-safe.
#ifndef TCBSCOPE_AGENT_HEALTH_SERVICE_H_
#define TCBSCOPE_AGENT_HEALTH_SERVICE_H_

#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agent/unary_loop.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace tcbscope {

class HealthService final : public grpc::health::v1::Health::WithAsyncMethod_Check<grpc::health::v1::Health::Service> {
 public:
  explicit HealthService(uint32_t max_watchers = 16) : max_watchers_(max_watchers) {}

  // Registers Check with `loop`. REQUIRES: before loop->Run.
  void ServeOn(UnaryLoop* loop);

  // NOT_SERVING from now on; every Watch stream sends it and ends.
  void Shutdown();

  grpc::Status Watch(grpc::ServerContext* context, const grpc::health::v1::HealthCheckRequest* request,
                     grpc::ServerWriter<grpc::health::v1::HealthCheckResponse>* writer) override;

  // Check's answer, apart from gRPC for tests.
  grpc::Status Answer(const grpc::health::v1::HealthCheckRequest& request,
                      grpc::health::v1::HealthCheckResponse* response);

 private:
  grpc::health::v1::HealthCheckResponse::ServingStatus StatusOf(const std::string& service);

  const uint32_t max_watchers_;
  std::atomic<uint32_t> watchers_{0};
  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace tcbscope

#endif  // TCBSCOPE_AGENT_HEALTH_SERVICE_H_
