// One ListConnections snapshot: dump, parse, filter, attach owners, batch.
//
// Batches leave in their wire format. A socket is written into it straight
// from its netlink message (AppendConnectionWire) when nothing needs the
// socket as a v1::Connection: no filter and no owners. Otherwise each socket
// is built as a Connection (on an arena), filtered, given its owners, and
// serialized. Both ways give the same bytes (the tests compare them).
//
// Kept apart from gRPC so the whole path is tested with a recorded dump and a
// plain callback. Memory is bounded by one batch's bytes and the messages of
// at most kBuiltBeforeReset sockets, whatever the host's size or the filter.
#ifndef TCBSCOPE_AGENT_SNAPSHOT_STREAMER_H_
#define TCBSCOPE_AGENT_SNAPSHOT_STREAMER_H_

#include <functional>

#include "absl/status/status.h"
#include "agent/kernel/diag_source.h"
#include "agent/kernel/inet_diag_wire.h"
#include "agent/kernel/proc_owners.h"
#include "agent/seq_table.h"
#include "common/filter.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope {

struct SnapshotOptions {
  uint32_t batch_size = 1000;
  FilterLimits filter_limits;
  // False builds every socket as a Connection even when it could be written
  // straight (for the tests and benchmarks that compare the two).
  bool direct_encoding = true;
};

// Receives each full batch, a serialized v1::ConnectionBatch, and then the
// last (possibly short or empty) one with last=true. The writer may take the
// bytes (WireBuffer::Release). Returning false means the reader is gone: the
// snapshot stops with CANCELLED.
using BatchWriter = std::function<bool(kernel::WireBuffer* batch, bool last)>;

// What a snapshot did, for tests and benchmarks.
struct SnapshotStats {
  uint64_t written_directly = 0;  // sockets written from their netlink message
  uint64_t built = 0;             // sockets built as a Connection (kept or not)
  size_t max_arena_bytes = 0;     // the most the Connections' arena held
};

// Sockets built as Connections before their arena is emptied: the bound on
// the arena's memory (~0.6 KiB each with tcp_info), however many a filter
// refuses.
inline constexpr int kBuiltBeforeReset = 1000;

// Runs one snapshot. `owners` may be null (no -p); so may `seq` (no
// sequence numbers: Connection.seq stays absent). Errors: InvalidArgument for
// a bad filter or field mask (before any dump), the source's error otherwise.
absl::Status StreamSnapshot(kernel::DiagSource& source, const v1::ListConnectionsRequest& request,
                            const SnapshotOptions& options, const kernel::SocketOwners* owners,
                            const BatchWriter& write, SeqTable* seq = nullptr, SnapshotStats* stats = nullptr);

// The kernel state mask a request asks for: its filter's states over the
// -a/-l default.
StateMask RequestStates(const Filter& filter, bool listening, bool all);

}  // namespace tcbscope

#endif  // TCBSCOPE_AGENT_SNAPSHOT_STREAMER_H_
