// The Inspector gRPC service: translates RPCs into reads of a DiagSource and
// the host's /proc, and errors into gRPC status codes. Holds no per-call
// state (the host's addresses are kept between calls, under a lock), so it
// is safe for gRPC's thread pool to call concurrently.
#ifndef TCBSCOPE_AGENT_INSPECTOR_SERVICE_H_
#define TCBSCOPE_AGENT_INSPECTOR_SERVICE_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/bearer_token.h"
#include "agent/dump_turns.h"
#include "agent/kernel/bpf_programs.h"
#include "agent/kernel/diag_source.h"
#include "agent/kernel/host_facts.h"
#include "agent/kernel/netns_source.h"
#include "agent/prober.h"
#include "agent/snapshot_streamer.h"
#include "agent/unary_loop.h"
#include "agent/watch_hub.h"
#include "tcbscope/v1/inspector.grpc.pb.h"

namespace tcbscope {

struct ServiceOptions {
  std::string version;
  // When set, every call must carry "authorization: Bearer <token>".
  std::optional<BearerToken> token;
  SnapshotOptions snapshot;
  std::string proc_root = "/proc";  // owners and counters are read below it
  bool replay = false;              // the source is a recording: no owners, no counters
  WatchHub* hub = nullptr;          // change source for WatchConnections; null: none
  kernel::BpfSeqReader* seq = nullptr;  // sequence numbers; null: none
  kernel::BpfFilesReader* files = nullptr;  // owners from BPF; null: from proc_root
  // The source, when it spans namespaces (--all-netns, --netns): the
  // sequence pass runs in each, and GetHostInfo says so.
  kernel::MultiNetnsSource* netns = nullptr;
  Prober* prober = nullptr;             // Probe; null or not allowed: PERMISSION_DENIED
  uint32_t max_calls = 128;             // calls in progress at once; more: RESOURCE_EXHAUSTED
  uint32_t max_streams = 64;            // WatchConnections streams at once
  // Snapshots read from the kernel at once (dump_turns.h). The others wait
  // until their deadline rather than fail: each dump in progress holds a
  // batch and its transport buffers, so this, not max_calls, bounds a
  // burst's memory.
  uint32_t max_dumps = 4;
  absl::Duration dump_stall = absl::Seconds(1);  // a turn silent this long stops counting
  std::vector<std::string> notes;       // why an optional source is off, for GetHostInfo
  absl::Duration heartbeat = absl::Seconds(5);  // a watch stream's longest silence
};

// GetHostInfo and GetCounters are asynchronous methods, answered on a
// UnaryLoop (they never block); the others are synchronous.
class InspectorService final
    : public v1::Inspector::WithAsyncMethod_GetHostInfo<v1::Inspector::WithAsyncMethod_GetCounters<v1::Inspector::Service>> {
 public:
  // `source` must outlive the service.
  InspectorService(kernel::DiagSource* source, ServiceOptions options);

  // Registers GetHostInfo and GetCounters with `loop`. REQUIRES: before
  // loop->Run.
  void ServeOn(UnaryLoop* loop);
  grpc::Status AnswerHostInfo(const grpc::ServerContextBase* context, v1::HostInfo* response);
  grpc::Status AnswerCounters(const grpc::ServerContextBase* context, v1::Counters* response);
  // ListConnections is registered by hand (see the constructor) to write
  // each batch as bytes it encoded itself: gRPC's path for a message sizes
  // it twice (ByteSizeLong, then again inside SerializeToZeroCopyStream),
  // which was a twentieth of the agent's CPU per snapshot. Same method, same
  // wire format.
  grpc::Status StreamListConnections(grpc::ServerContext* context,
                                     grpc::ServerSplitStreamer<v1::ListConnectionsRequest, grpc::ByteBuffer>* stream);
  grpc::Status WatchConnections(grpc::ServerContext* context, const v1::WatchConnectionsRequest* request,
                                grpc::ServerWriter<v1::WatchEvent>* writer) override;
  grpc::Status Probe(grpc::ServerContext* context, const v1::ProbeRequest* request,
                     v1::ProbeResult* response) override;

 private:
  // OK, or UNAUTHENTICATED when a token is required and missing or wrong.
  grpc::Status Authorize(const grpc::ServerContextBase* context) const;

  // Admission: a call holds a Slot while it runs; past the limit a call is
  // refused at once rather than queued behind the others.
  class Slot {
   public:
    Slot(std::atomic<uint32_t>* counter, uint32_t limit);
    ~Slot();
    bool ok() const { return ok_; }

   private:
    std::atomic<uint32_t>* counter_;
    bool ok_;
  };
  grpc::Status Admit(const grpc::ServerContextBase* context, Slot* slot, const char* what) const;
  std::atomic<uint32_t> calls_{0};
  std::atomic<uint32_t> streams_{0};

  kernel::DiagSource* source_;
  const ServiceOptions options_;
  DumpTurns turns_;
  // Made with the service, so in the agent's own namespace (host_facts.h).
  kernel::HostFacts host_facts_;
};

// absl::Status → grpc::Status, keeping the code and message.
grpc::Status ToGrpcStatus(const absl::Status& s);

}  // namespace tcbscope

#endif  // TCBSCOPE_AGENT_INSPECTOR_SERVICE_H_
