#include "agent/health_service.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tcbscope/v1/inspector.grpc.pb.h"

namespace tcbscope {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

void HealthService::ServeOn(UnaryLoop* loop) {
  loop->Add(this, &HealthService::RequestCheck,
            [this](grpc::ServerContext*, const HealthCheckRequest& request, HealthCheckResponse* response) {
              return Answer(request, response);
            });
}

void HealthService::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
}

HealthCheckResponse::ServingStatus HealthService::StatusOf(const std::string& service) {
  if (!service.empty() && service != v1::Inspector::service_full_name()) return HealthCheckResponse::SERVICE_UNKNOWN;
  absl::MutexLock lock(&mu_);
  return shut_down_ ? HealthCheckResponse::NOT_SERVING : HealthCheckResponse::SERVING;
}

grpc::Status HealthService::Answer(const HealthCheckRequest& request, HealthCheckResponse* response) {
  const HealthCheckResponse::ServingStatus status = StatusOf(request.service());
  if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("no service named \"", request.service(), "\""));
  }
  response->set_status(status);
  return grpc::Status::OK;
}

grpc::Status HealthService::Watch(grpc::ServerContext* context, const HealthCheckRequest* request,
                                  grpc::ServerWriter<HealthCheckResponse>* writer) {
  struct Count {
    std::atomic<uint32_t>* n;
    explicit Count(std::atomic<uint32_t>* c) : n(c), before(n->fetch_add(1)) {}
    ~Count() { n->fetch_sub(1); }
    uint32_t before;
  } count(&watchers_);
  if (count.before >= max_watchers_) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("too many health watches at once (at most ", max_watchers_, ")"));
  }
  HealthCheckResponse response;
  response.set_status(StatusOf(request->service()));
  if (!writer->Write(response)) return grpc::Status::OK;  // the caller left
  if (response.status() == HealthCheckResponse::NOT_SERVING) return grpc::Status::OK;  // came after Shutdown
  // The status changes once at most (to NOT_SERVING); the caller leaving is
  // only seen by asking, so the wait wakes each second to ask.
  while (!context->IsCancelled()) {
    bool ended = false;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&shut_down_), absl::Seconds(1));
      ended = shut_down_;
    }
    if (ended) {
      response.set_status(StatusOf(request->service()));
      if (response.status() == HealthCheckResponse::NOT_SERVING) writer->Write(response);
      return grpc::Status::OK;
    }
  }
  return grpc::Status::OK;
}

}  // namespace tcbscope
