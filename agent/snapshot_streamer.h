// One ListConnections snapshot: dump, parse, filter, attach owners, batch.
//
// Kept apart from gRPC so the whole path is tested with a recorded dump and a
// plain callback. Memory is bounded by one batch: connections are parsed
// straight into the batch being filled and the batch is handed over (and
// reused) as soon as it is full.
#ifndef TCBSCOPE_AGENT_SNAPSHOT_STREAMER_H_
#define TCBSCOPE_AGENT_SNAPSHOT_STREAMER_H_

#include <functional>

#include "absl/status/status.h"
#include "agent/kernel/diag_source.h"
#include "agent/kernel/proc_owners.h"
#include "agent/seq_table.h"
#include "common/filter.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope {

struct SnapshotOptions {
  uint32_t batch_size = 1000;
  FilterLimits filter_limits;
};

// Receives each full batch (and the last, possibly short or empty, one with
// last=true). Returning false means the reader is gone: the snapshot stops
// with CANCELLED.
using BatchWriter = std::function<bool(const v1::ConnectionBatch&)>;

// Runs one snapshot. `owners` may be null (no -p); so may `seq` (no
// sequence numbers: Connection.seq stays absent). Errors: InvalidArgument for
// a bad filter or field mask (before any dump), the source's error otherwise.
absl::Status StreamSnapshot(kernel::DiagSource& source, const v1::ListConnectionsRequest& request,
                            const SnapshotOptions& options, const kernel::SocketOwners* owners,
                            const BatchWriter& write, SeqTable* seq = nullptr);

// The kernel state mask a request asks for: its filter's states over the
// -a/-l default.
StateMask RequestStates(const Filter& filter, bool listening, bool all);

}  // namespace tcbscope

#endif  // TCBSCOPE_AGENT_SNAPSHOT_STREAMER_H_
