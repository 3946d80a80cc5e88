#include "agent/inspector_service.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "agent/free_memory.h"
#include "agent/kernel/host_facts.h"
#include "agent/kernel/proc_owners.h"
#include "agent/log.h"
#include "agent/watch_messages.h"
#include "common/connection_fields.h"
#include "common/filter.h"
#include "common/proto_time.h"

namespace tcbscope {

grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

namespace {

// The method's index in the service, as the generated code numbers them
// (the order of the .proto).
int MethodIndex(const char* name) {
  const google::protobuf::ServiceDescriptor* service =
      v1::ListConnectionsRequest::descriptor()->file()->FindServiceByName("Inspector");
  return service->FindMethodByName(name)->index();
}

void FreeBytes(void* bytes) { std::free(bytes); }

// A batch's bytes, handed to gRPC without a copy: the slice frees them.
grpc::ByteBuffer TakeBytes(kernel::WireBuffer* batch) {
  const size_t size = batch->size();
  uint8_t* bytes = batch->Release();
  grpc::Slice slice = bytes == nullptr ? grpc::Slice() : grpc::Slice(bytes, size, &FreeBytes);
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace

InspectorService::InspectorService(kernel::DiagSource* source, ServiceOptions options)
    : source_(source), options_(std::move(options)), turns_(options_.max_dumps, options_.dump_stall) {
  // As the generated WithSplitStreamingMethod_ListConnections does, with
  // bytes for the response type.
  MarkMethodStreamed(
      MethodIndex("ListConnections"),
      new grpc::internal::SplitServerStreamingHandler<v1::ListConnectionsRequest, grpc::ByteBuffer>(
          [this](grpc::ServerContext* context,
                 grpc::ServerSplitStreamer<v1::ListConnectionsRequest, grpc::ByteBuffer>* stream) {
            return StreamListConnections(context, stream);
          }));
}

void InspectorService::ServeOn(UnaryLoop* loop) {
  loop->Add(this, &InspectorService::RequestGetHostInfo,
            [this](grpc::ServerContext* context, const v1::GetHostInfoRequest&, v1::HostInfo* response) {
              return AnswerHostInfo(context, response);
            });
  loop->Add(this, &InspectorService::RequestGetCounters,
            [this](grpc::ServerContext* context, const v1::GetCountersRequest&, v1::Counters* response) {
              return AnswerCounters(context, response);
            });
}

grpc::Status InspectorService::Authorize(const grpc::ServerContextBase* context) const {
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

InspectorService::Slot::Slot(std::atomic<uint32_t>* counter, uint32_t limit) : counter_(counter) {
  ok_ = counter_->fetch_add(1) < limit;
}

InspectorService::Slot::~Slot() { counter_->fetch_sub(1); }

grpc::Status InspectorService::Admit(const grpc::ServerContextBase* context, Slot* slot, const char* what) const {
  if (grpc::Status auth = Authorize(context); !auth.ok()) return auth;
  if (!slot->ok()) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("the agent is busy: too many ", what, " in progress; try again"));
  }
  return grpc::Status::OK;
}

grpc::Status InspectorService::AnswerHostInfo(const grpc::ServerContextBase* context, v1::HostInfo* response) {
  Slot slot(&calls_, options_.max_calls);
  if (grpc::Status s = Admit(context, &slot, "calls"); !s.ok()) return s;
  absl::Status s = host_facts_.Read(response);
  if (!s.ok()) return ToGrpcStatus(s);
  response->set_agent_version(options_.version);
  response->set_source(source_->Describe());
  response->set_netns(source_->netns());
  v1::Capabilities* caps = response->mutable_capabilities();
  caps->set_seq_source(options_.seq ? v1::Capabilities::SEQ_SOURCE_BPF : v1::Capabilities::SEQ_SOURCE_NONE);
  if (!options_.hub) {
    caps->set_event_source(v1::Capabilities::EVENT_SOURCE_NONE);
  } else if (options_.hub->uses_bpf()) {
    caps->set_event_source(v1::Capabilities::EVENT_SOURCE_BPF);
  } else {
    caps->set_event_source(v1::Capabilities::EVENT_SOURCE_POLL);
    caps->add_notes(absl::StrCat("change events: polling every ",
                                 absl::FormatDuration(options_.hub->options().poll_interval)));
  }
  caps->set_owners(!options_.replay);
  caps->set_probe(options_.prober != nullptr && options_.prober->allowed());
  caps->set_all_netns(options_.netns != nullptr);
  for (const std::string& n : options_.notes) caps->add_notes(n);
  if (options_.replay) caps->add_notes("serving a recording: no owners, no counters");
  return grpc::Status::OK;
}

grpc::Status InspectorService::StreamListConnections(
    grpc::ServerContext* context, grpc::ServerSplitStreamer<v1::ListConnectionsRequest, grpc::ByteBuffer>* stream) {
  // Admitted before the request is read: a caller that never sends it holds
  // a slot (and a thread) only within the limit.
  Slot slot(&calls_, options_.max_calls);
  if (grpc::Status s = Admit(context, &slot, "calls"); !s.ok()) return s;
  v1::ListConnectionsRequest request_message;
  if (!stream->Read(&request_message)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "could not read the ListConnectionsRequest");
  }
  const v1::ListConnectionsRequest* request = &request_message;
  // A bad filter or field mask is refused before the request takes a turn,
  // scans /proc or walks every namespace (StreamSnapshot checks them again).
  if (absl::StatusOr<Filter> f = Filter::Parse(request->filter(), options_.snapshot.filter_limits); !f.ok()) {
    return ToGrpcStatus(f.status());
  }
  if (absl::StatusOr<ConnectionFields> f = ConnectionFields::FromMask(request->fields()); !f.ok()) {
    return ToGrpcStatus(f.status());
  }
  const auto deadline = context->deadline();
  std::unique_ptr<DumpTurns::Turn> turn = turns_.Take(
      [&] { return context->IsCancelled() || std::chrono::system_clock::now() >= deadline; });
  if (turn == nullptr) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "gave up waiting for a turn to read the kernel's sockets");
  }
  std::unique_ptr<kernel::SocketOwners> owners;
  if (request->owners() && !options_.replay) {
    if (options_.files != nullptr) {
      absl::StatusOr<kernel::SocketOwners> from_bpf = kernel::SocketOwners::FromBpf(*options_.files);
      if (from_bpf.ok()) {
        owners = std::make_unique<kernel::SocketOwners>(*std::move(from_bpf));
      } else {
        Log(LogLevel::kWarning, absl::StrCat("owners: ", from_bpf.status().message(), "; reading /proc instead"));
      }
    }
    if (!owners) owners = std::make_unique<kernel::SocketOwners>(kernel::SocketOwners::Scan(options_.proc_root));
  }
  // The sequence pass runs first: a socket the dump then finds is either in
  // it or newer than it (and goes without numbers), never misjoined.
  std::unique_ptr<SeqTable> seq;
  if (request->sequence() && options_.seq != nullptr) {
    seq = std::make_unique<SeqTable>();
    auto read_here = [&] {
      absl::Status read = options_.seq->Read([&](const tcb_seq_record& r) { seq->Add(r); });
      if (!read.ok()) Log(LogLevel::kWarning, absl::StrCat("sequence numbers: ", read.message()));
    };
    // The iterator walks the namespace of the thread that creates it.
    if (options_.netns != nullptr) {
      options_.netns->ForEachNamespace([&](const kernel::NetnsEntry&) { read_here(); });
    } else {
      read_here();
    }
  }
  turn->Progress();  // the owner scan and the sequence pass may take a while
  absl::Status s = StreamSnapshot(
      *source_, *request, options_.snapshot, owners.get(),
      [&](kernel::WireBuffer* batch, bool last) {
        if (context->IsCancelled()) return false;
        // The last batch goes out with the trailers, in one write: a small
        // listing is then one segment instead of two, and the client learns
        // of the stream's end in the same read (docs/performance.md).
        // (WriteLast's own outcome arrives with the call's end.)
        bool ok = true;
        if (last) {
          stream->WriteLast(TakeBytes(batch), grpc::WriteOptions());
        } else {
          ok = stream->Write(TakeBytes(batch));
        }
        turn->Progress();
        return ok;
      },
      seq.get());
  if (!s.ok() && !absl::IsInvalidArgument(s) && !absl::IsCancelled(s)) {
    Log(LogLevel::kWarning, absl::StrCat("ListConnections from ", context->peer(), ": ", s.ToString()));
  }
  return ToGrpcStatus(s);
}

grpc::Status InspectorService::WatchConnections(grpc::ServerContext* context, const v1::WatchConnectionsRequest* request,
                                                grpc::ServerWriter<v1::WatchEvent>* writer) {
  Slot slot(&calls_, options_.max_calls);
  if (grpc::Status s = Admit(context, &slot, "calls"); !s.ok()) return s;
  Slot stream(&streams_, options_.max_streams);
  if (grpc::Status s = Admit(context, &stream, "watch streams"); !s.ok()) return s;
  if (options_.hub == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("this agent serves ", source_->Describe(), ": it has no live changes"));
  }
  absl::StatusOr<Filter> filter = Filter::Parse(request->filter(), options_.snapshot.filter_limits);
  if (!filter.ok()) return ToGrpcStatus(filter.status());
  const StateMask states = RequestStates(*filter, request->listening(), request->all());
  auto selected = [&](const v1::Connection& c) { return (states & StateBit(c.state())) && filter->Matches(c); };

  // The hub applies this stream's filter as it queues events, so every event
  // that reaches the loop below is one this stream wants.
  auto subscribed = options_.hub->Subscribe([&](const HubEvent& e) {
    return (e.before && selected(*e.before)) || (e.after && selected(*e.after));
  });
  if (!subscribed.ok()) return ToGrpcStatus(subscribed.status());
  std::shared_ptr<WatchHub::Subscription> sub = subscribed->first;
  WatchHub* hub = options_.hub;
  struct Unsubscribe {
    WatchHub* hub;
    std::shared_ptr<WatchHub::Subscription> sub;
    ~Unsubscribe() { hub->Unsubscribe(sub); }
  } unsubscribe{hub, sub};

  uint64_t sequence = 0;
  absl::Time last_write = absl::Now();
  auto send = [&](const v1::WatchEvent& e) {
    last_write = absl::Now();
    return writer->Write(e);
  };
  // A message that is not a change: numbered and timed here.
  auto write = [&](v1::WatchEvent* e, absl::Time t) {
    e->set_sequence(++sequence);
    ToTimestamp(t, e->mutable_time());
    return send(*e);
  };
  // The snapshot events are relative to, in batches; `resync` after drops.
  auto send_snapshot = [&](const Snapshot& snap, bool resync, absl::Time t) {
    const uint32_t batch_size = options_.snapshot.batch_size;
    v1::WatchEvent e;
    v1::ConnectionBatch* b = resync ? e.mutable_resync() : e.mutable_snapshot();
    ToTimestamp(t, b->mutable_captured_at());
    uint64_t total = 0;
    for (const v1::Connection& c : snap) {
      if (!selected(c)) continue;
      *b->add_connections() = c;
      ++total;
      if (static_cast<uint32_t>(b->connections_size()) >= batch_size) {
        if (!write(&e, t)) return false;
        b->clear_connections();
      }
    }
    b->set_last(true);
    b->set_total(total);
    return write(&e, t);
  };
  if (!send_snapshot(*subscribed->second, false, sub->snapshot_time())) return grpc::Status::OK;
  // Sent: a long stream must not hold a copy of the table, nor the agent
  // the pages it took (100k sockets: ~90 MB).
  subscribed->second.reset();
  GiveFreeMemoryBack();

  std::vector<std::shared_ptr<const HubEvent>> events;
  const absl::Duration wait = std::min(options_.heartbeat, absl::Seconds(1));
  while (!context->IsCancelled()) {
    events.clear();
    if (!sub->Next(wait, &events)) {
      // Fell behind: what was queued is gone; start again from the latest dump.
      absl::Time captured_at;
      std::shared_ptr<const Snapshot> latest = hub->LatestSnapshot(&captured_at);
      if (latest && !send_snapshot(*latest, true, captured_at)) return grpc::Status::OK;
      continue;
    }
    for (size_t i = 0; i < events.size();) {
      v1::WatchEvent e;
      i = NextWatchMessage(events, i, request->packed(), &sequence, &e);
      if (!send(e)) return grpc::Status::OK;
    }
    if (absl::Now() - last_write >= options_.heartbeat) {
      v1::WatchEvent e;
      e.set_heartbeat(true);
      if (!write(&e, absl::Now())) return grpc::Status::OK;
    }
  }
  return grpc::Status::OK;
}

grpc::Status InspectorService::AnswerCounters(const grpc::ServerContextBase* context, v1::Counters* response) {
  Slot slot(&calls_, options_.max_calls);
  if (grpc::Status s = Admit(context, &slot, "calls"); !s.ok()) return s;
  if (options_.replay) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("this agent serves a recording (", source_->Describe(), "); it has no counters"));
  }
  return ToGrpcStatus(kernel::ReadCounters(options_.proc_root + "/net", response));
}

grpc::Status InspectorService::Probe(grpc::ServerContext* context, const v1::ProbeRequest* request,
                                     v1::ProbeResult* response) {
  Slot slot(&calls_, options_.max_calls);
  if (grpc::Status s = Admit(context, &slot, "calls"); !s.ok()) return s;
  if (options_.prober == nullptr || !options_.prober->allowed()) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "Probe is off on this agent (start it with --allow-probe)");
  }
  absl::StatusOr<v1::ProbeResult> r = options_.prober->Probe(*request);
  if (!r.ok()) return ToGrpcStatus(r.status());
  Log(LogLevel::kInfo, absl::StrCat("probe from ", context->peer(), " to ", request->target().address(), ":",
                                    request->target().port(), ": ", v1::ProbeResult::Outcome_Name(r->outcome())));
  *response = *std::move(r);
  return grpc::Status::OK;
}

}  // namespace tcbscope
