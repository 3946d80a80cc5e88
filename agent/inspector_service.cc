#include "agent/inspector_service.h"

#include "absl/strings/str_cat.h"
#include "agent/kernel/host_facts.h"
#include "agent/kernel/proc_owners.h"
#include "agent/log.h"

namespace tcbscope {

grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

InspectorService::InspectorService(kernel::DiagSource* source, ServiceOptions options)
    : source_(source), options_(std::move(options)) {}

grpc::Status InspectorService::Authorize(const grpc::ServerContext* context) const {
  if (!options_.token) return grpc::Status::OK;
  const auto& md = context->client_metadata();
  auto it = md.find("authorization");
  if (it != md.end() && options_.token->Accepts(absl::string_view(it->second.data(), it->second.size()))) {
    return grpc::Status::OK;
  }
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      it == md.end() ? "this agent requires a bearer token (--token-file)"
                                     : "the bearer token was not accepted");
}

grpc::Status InspectorService::GetHostInfo(grpc::ServerContext* context, const v1::GetHostInfoRequest*,
                                           v1::HostInfo* response) {
  if (grpc::Status auth = Authorize(context); !auth.ok()) return auth;
  absl::Status s = kernel::ReadHostFacts(response);
  if (!s.ok()) return ToGrpcStatus(s);
  response->set_agent_version(options_.version);
  response->set_source(source_->Describe());
  response->set_netns(source_->netns());
  v1::Capabilities* caps = response->mutable_capabilities();
  caps->set_seq_source(v1::Capabilities::SEQ_SOURCE_NONE);
  caps->set_event_source(v1::Capabilities::EVENT_SOURCE_NONE);
  caps->set_owners(!options_.replay);
  caps->add_notes("sequence numbers: BPF iter/tcp not built into this agent yet");
  caps->add_notes("change events: WatchConnections not built into this agent yet");
  if (options_.replay) caps->add_notes("serving a recording: no owners, no counters");
  return grpc::Status::OK;
}

grpc::Status InspectorService::ListConnections(grpc::ServerContext* context, const v1::ListConnectionsRequest* request,
                                               grpc::ServerWriter<v1::ConnectionBatch>* writer) {
  if (grpc::Status auth = Authorize(context); !auth.ok()) return auth;
  std::unique_ptr<kernel::SocketOwners> owners;
  if (request->owners() && !options_.replay) {
    owners = std::make_unique<kernel::SocketOwners>(kernel::SocketOwners::Scan(options_.proc_root));
  }
  absl::Status s = StreamSnapshot(*source_, *request, options_.snapshot, owners.get(),
                                  [&](const v1::ConnectionBatch& batch) {
                                    if (context->IsCancelled()) return false;
                                    return writer->Write(batch);
                                  });
  if (!s.ok() && !absl::IsInvalidArgument(s) && !absl::IsCancelled(s)) {
    Log(LogLevel::kWarning, absl::StrCat("ListConnections from ", context->peer(), ": ", s.ToString()));
  }
  return ToGrpcStatus(s);
}

grpc::Status InspectorService::WatchConnections(grpc::ServerContext* context, const v1::WatchConnectionsRequest*,
                                                grpc::ServerWriter<v1::WatchEvent>*) {
  if (grpc::Status auth = Authorize(context); !auth.ok()) return auth;
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "WatchConnections is not available in this agent version");
}

grpc::Status InspectorService::GetCounters(grpc::ServerContext* context, const v1::GetCountersRequest*,
                                           v1::Counters* response) {
  if (grpc::Status auth = Authorize(context); !auth.ok()) return auth;
  if (options_.replay) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("this agent serves a recording (", source_->Describe(), "); it has no counters"));
  }
  return ToGrpcStatus(kernel::ReadCounters(options_.proc_root + "/net", response));
}

grpc::Status InspectorService::Probe(grpc::ServerContext* context, const v1::ProbeRequest*, v1::ProbeResult*) {
  if (grpc::Status auth = Authorize(context); !auth.ok()) return auth;
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "Probe is not available in this agent version");
}

}  // namespace tcbscope
