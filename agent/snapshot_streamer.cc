#include "agent/snapshot_streamer.h"

#include <sys/socket.h>

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/arena.h"
#include "agent/kernel/bpf/tcb_records.h"
#include "agent/kernel/inet_diag_parser.h"
#include "common/connection_fields.h"
#include "common/proto_time.h"
#include "common/status_macros.h"

namespace tcbscope {
namespace {

// A batch of 1,000 connections with tcp_info takes about 0.6 MiB of objects.
constexpr size_t kArenaBlockBytes = 1 << 20;
// Sockets parsed and then dropped (the filter refused them) before the arena
// is emptied. A dropped connection leaves its sub-messages on the arena
// (clearing a message on an arena abandons them there), ~0.6 KiB with
// tcp_info: without a bound, a filter that matches nothing held the whole
// dump, ~60 MiB at 100k sockets, until the end of the call.
constexpr int kDroppedBeforeReset = 2000;

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
                            const BatchWriter& write, SeqTable* seq) {
  TCB_ASSIGN_OR_RETURN(Filter filter, Filter::Parse(request.filter(), options.filter_limits));
  TCB_ASSIGN_OR_RETURN(const ConnectionFields fields, ConnectionFields::FromMask(request.fields()));
  kernel::DumpRequest dump;
  dump.states = RequestStates(filter, request.listening(), request.all());
  dump.tcp_info = request.tcp_info();
  const uint32_t batch_size =
      request.batch_size() == 0 ? options.batch_size : std::min(request.batch_size(), options.batch_size);

  // Each batch lives in an arena that is reset once the batch is sent: no
  // malloc/free per connection and sub-message (they were a tenth of the
  // agent's CPU), and the memory is one block reused for every batch. Not
  // zero-filled: the arena writes before it reads, so a small snapshot only
  // faults in the pages it uses (zeroing 1 MiB per call was a tenth of the
  // agent's CPU for a host with few sockets).
  std::unique_ptr<char[]> block(new char[kArenaBlockBytes]);
  google::protobuf::ArenaOptions arena_options;
  arena_options.initial_block = block.get();
  arena_options.initial_block_size = kArenaBlockBytes;
  arena_options.max_block_size = kArenaBlockBytes;
  google::protobuf::Arena arena(arena_options);
  v1::ConnectionBatch* batch_ptr = google::protobuf::Arena::CreateMessage<v1::ConnectionBatch>(&arena);
  uint64_t total = 0;
  bool interrupted_so_far = false;
  bool started = false;
  bool reader_gone = false;
  const bool match_all = filter.MatchesEverything();

  absl::Time stamped_at;
  auto stamp = [&](absl::Time t) {
    stamped_at = t;
    ToTimestamp(t, batch_ptr->mutable_captured_at());
  };
  // The dump's start time is what every batch carries; it is known when the
  // first message arrives, so stamp lazily.
  const absl::Time before = absl::Now();
  int dropped = 0;  // refused since the arena was last emptied
  // Sends the batch (when `send`) and starts the next on an emptied arena.
  // False when the reader has gone.
  auto next_batch = [&](bool send) {
    if (send) {
      batch_ptr->set_dump_interrupted(interrupted_so_far);
      if (!write(*batch_ptr)) {
        reader_gone = true;
        return false;
      }
    }
    arena.Reset();
    dropped = 0;
    batch_ptr = google::protobuf::Arena::CreateMessage<v1::ConnectionBatch>(&arena);
    ToTimestamp(stamped_at, batch_ptr->mutable_captured_at());
    return true;
  };
  // Drops the connection just parsed; after many, empties the arena, sending
  // the connections kept so far as a batch of their own.
  auto drop_last = [&]() -> absl::Status {
    batch_ptr->mutable_connections()->RemoveLast();
    if (++dropped < kDroppedBeforeReset) return absl::OkStatus();
    if (!next_batch(/*send=*/batch_ptr->connections_size() > 0)) {
      return absl::CancelledError("the client went away");
    }
    return absl::OkStatus();
  };
  auto on_socket = [&](const nlmsghdr* m) -> absl::Status {
    if (!started) {
      stamp(before);
      started = true;
    }
    if (m->nlmsg_flags & NLM_F_DUMP_INTR) interrupted_so_far = true;
    v1::ConnectionBatch& batch = *batch_ptr;
    v1::Connection* c = batch.add_connections();
    if (!kernel::ParseFromSource(source, m, c, fields).ok()) {
      // One malformed message must not cost the whole snapshot; it cannot
      // happen with a real kernel and is logged by the caller via the count.
      return drop_last();
    }
    if (!match_all && !filter.Matches(*c)) return drop_last();
    if (owners != nullptr) owners->Fill(c->inode(), c);
    // A time-wait socket has no tcp_sock, so the iterator has no record of
    // it. The kernel reports one as TIME_WAIT or, closed from FIN_WAIT2, as
    // that; either way with the time-wait timer, which no full socket has.
    const bool time_wait = c->state() == v1::TCP_STATE_TIME_WAIT || c->timer().kind() == v1::Timer::KIND_TIME_WAIT;
    if (seq != nullptr && !time_wait) {
      if (const tcb_seq_record* found = seq->Find(c->cookie(), c->family() == v1::FAMILY_INET ? AF_INET : AF_INET6,
                                                  static_cast<int>(c->state()))) {
        const tcb_seq_record& r = *found;
        v1::SequenceSpace* q = c->mutable_seq();
        q->set_snd_una(r.snd_una);
        q->set_snd_nxt(r.snd_nxt);
        q->set_rcv_nxt(r.rcv_nxt);
        q->set_write_seq(r.write_seq);
        q->set_copied_seq(r.copied_seq);
        q->set_snd_wnd(r.snd_wnd);
        q->set_rcv_wnd(r.rcv_wnd);
        q->set_rcv_wup(r.rcv_wup);
        q->set_bytes_acked(r.bytes_acked);
        q->set_bytes_received(r.bytes_received);
      }
    }
    if (!fields.all()) fields.Trim(c);
    ++total;
    if (static_cast<uint32_t>(batch.connections_size()) >= batch_size) {
      if (!next_batch(/*send=*/true)) return absl::CancelledError("the client went away");
    }
    return absl::OkStatus();
  };
  absl::StatusOr<kernel::DumpResult> result = source.Dump(dump, on_socket);
  if (reader_gone) return absl::CancelledError("the client went away");
  if (!result.ok()) return result.status();
  if (!started) stamp(result->started);
  v1::ConnectionBatch& batch = *batch_ptr;
  batch.set_dump_interrupted(result->interrupted);
  batch.set_last(true);
  batch.set_total(total);
  if (!write(batch)) return absl::CancelledError("the client went away");
  return absl::OkStatus();
}

}  // namespace tcbscope
