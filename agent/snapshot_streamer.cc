#include "agent/snapshot_streamer.h"

#include <sys/socket.h>

#include <algorithm>
#include <memory>

#include "agent/kernel/bpf/tcb_records.h"
#include "agent/kernel/inet_diag_parser.h"
#include "agent/kernel/inet_diag_wire.h"
#include "common/connection_fields.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "google/protobuf/arena.h"

namespace tcbscope {
namespace {

// A thousand connections with tcp_info take about 0.6 MiB of objects.
constexpr size_t kArenaBlockBytes = 1 << 20;

}  // namespace

StateMask RequestStates(const Filter& filter, bool listening, bool all) {
  StateMask defaults = kDefaultStates;
  if (all) {
    defaults = kAllStates;
  } else if (listening) {
    defaults = kListeningStates;
  }
  return filter.States(defaults);
}

absl::Status StreamSnapshot(kernel::DiagSource& source, const v1::ListConnectionsRequest& request,
                            const SnapshotOptions& options, const kernel::SocketOwners* owners,
                            const BatchWriter& write, SeqTable* seq, SnapshotStats* stats) {
  TCB_ASSIGN_OR_RETURN(Filter filter, Filter::Parse(request.filter(), options.filter_limits));
  TCB_ASSIGN_OR_RETURN(const ConnectionFields fields, ConnectionFields::FromMask(request.fields()));
  kernel::DumpRequest dump;
  dump.states = RequestStates(filter, request.listening(), request.all());
  dump.tcp_info = request.tcp_info();
  const uint32_t batch_size =
      request.batch_size() == 0 ? options.batch_size : std::min(request.batch_size(), options.batch_size);
  const bool match_all = filter.MatchesEverything();
  // Without a filter or owners nothing reads a socket as a Connection.
  const bool direct = options.direct_encoding && match_all && owners == nullptr;
  SnapshotStats unused_stats;
  SnapshotStats& counts = stats != nullptr ? *stats : unused_stats;

  kernel::WireBuffer out;  // the batch being written
  uint32_t in_batch = 0;
  uint64_t total = 0;
  bool interrupted_so_far = false;
  bool started = false;
  bool reader_gone = false;
  // The dump's start time is what every batch carries; it is known when the
  // first message arrives.
  absl::Time captured_at;
  const absl::Time before = absl::Now();

  // Ends the batch: its fields after the connections (protobuf writes
  // fields in number order, connections first), then the writer has it.
  auto send = [&](bool last) {
    v1::ConnectionBatch tail;
    ToTimestamp(captured_at, tail.mutable_captured_at());
    tail.set_dump_interrupted(interrupted_so_far);
    if (last) {
      tail.set_last(true);
      tail.set_total(total);
    }
    kernel::AppendMessageBytes(tail, &out);
    const bool ok = write(&out, last);
    out.Truncate(0);
    in_batch = 0;
    return ok;
  };
  auto kept = [&]() -> absl::Status {
    ++total;
    if (++in_batch < batch_size) return absl::OkStatus();
    if (send(/*last=*/false)) return absl::OkStatus();
    reader_gone = true;
    return absl::CancelledError("the client went away");
  };

  // Built connections live on an arena, emptied every kBuiltBeforeReset:
  // no malloc/free per connection and sub-message (they were a tenth of the
  // agent's CPU). Its block is not zero-filled: the arena writes before it
  // reads, so a small snapshot only faults in the pages it uses. Made on
  // first need: a listing written straight never needs it.
  std::unique_ptr<char[]> block;
  std::unique_ptr<google::protobuf::Arena> arena;
  int built_on_arena = 0;
  auto note_arena = [&] {
    if (stats != nullptr && arena) counts.max_arena_bytes = std::max(counts.max_arena_bytes, arena->SpaceUsed());
  };
  auto build = [&](const nlmsghdr* m) -> absl::Status {
    if (!arena) {
      block.reset(new char[kArenaBlockBytes]);
      google::protobuf::ArenaOptions arena_options;
      arena_options.initial_block = block.get();
      arena_options.initial_block_size = kArenaBlockBytes;
      arena_options.max_block_size = kArenaBlockBytes;
      arena = std::make_unique<google::protobuf::Arena>(arena_options);
    } else if (built_on_arena == kBuiltBeforeReset) {
      note_arena();
      arena->Reset();
      built_on_arena = 0;
    }
    ++built_on_arena;
    ++counts.built;
    v1::Connection* c = google::protobuf::Arena::CreateMessage<v1::Connection>(arena.get());
    // One malformed message must not cost the whole snapshot; it cannot
    // happen with a real kernel.
    if (!kernel::ParseFromSource(source, m, c, fields).ok()) return absl::OkStatus();
    if (!match_all && !filter.Matches(*c)) return absl::OkStatus();
    if (owners != nullptr) owners->Fill(c->inode(), c);
    // A time-wait socket has no tcp_sock, so the iterator has no record of it.
    const bool time_wait = kernel::IsTimeWaitRow(c->state(), c->timer().kind() == v1::Timer::KIND_TIME_WAIT);
    if (seq != nullptr && !time_wait) {
      if (const tcb_seq_record* r = seq->Find(c->cookie(), c->family() == v1::FAMILY_INET ? AF_INET : AF_INET6,
                                              static_cast<int>(c->state()))) {
        kernel::FillSequenceSpace(*r, c->mutable_seq());
      }
    }
    if (!fields.all()) fields.Trim(c);
    kernel::AppendMessageField(v1::ConnectionBatch::kConnectionsFieldNumber, *c, &out);
    return kept();
  };
  auto lookup = [&](uint64_t cookie, int family, int state) -> const tcb_seq_record* {
    return seq == nullptr ? nullptr : seq->Find(cookie, family, state);
  };
  auto on_socket = [&](const nlmsghdr* m) -> absl::Status {
    if (!started) {
      captured_at = before;
      started = true;
    }
    if (m->nlmsg_flags & NLM_F_DUMP_INTR) interrupted_so_far = true;
    if (direct) {
      switch (kernel::AppendConnectionWire(m, source.CurrentNetns(), source.CurrentNetnsName(), fields, lookup,
                                           &out)) {
        case kernel::WireOutcome::kEncoded:
          ++counts.written_directly;
          return kept();
        case kernel::WireOutcome::kMalformed:
          return absl::OkStatus();
        case kernel::WireOutcome::kNeedsMessage:
          break;
      }
    }
    return build(m);
  };
  absl::StatusOr<kernel::DumpResult> result = source.Dump(dump, on_socket);
  note_arena();
  if (reader_gone) return absl::CancelledError("the client went away");
  if (!result.ok()) return result.status();
  if (!started) captured_at = result->started;
  interrupted_so_far = interrupted_so_far || result->interrupted;
  if (!send(/*last=*/true)) return absl::CancelledError("the client went away");
  return absl::OkStatus();
}

}  // namespace tcbscope
