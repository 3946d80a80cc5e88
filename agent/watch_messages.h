// The WatchConnections stream's change messages, made from the hub's events.
//
// One message per change costs the agent a write (a sendmsg) and the client a
// read and a flow-control update for each: at ~100 changes a second that was
// most of a watched agent's CPU (docs/performance.md). A client that sets
// WatchConnectionsRequest.packed reads WatchEvent.following, so the changes
// the hub hands over together go out in one message.
//
// Pure functions; thread-compatible.
#ifndef TCBSCOPE_AGENT_WATCH_MESSAGES_H_
#define TCBSCOPE_AGENT_WATCH_MESSAGES_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "agent/event_tracker.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope {

// Bounds of one packed message: a burst (a resync's worth of closes, say)
// still goes out in messages far below gRPC's 4 MiB default limit.
constexpr size_t kMaxPackedEvents = 128;
constexpr size_t kMaxPackedBytes = 256 << 10;

// The change `ev` as the stream sends it, without sequence number.
void FillWatchEvent(const HubEvent& ev, v1::WatchEvent* out);

// The next message of the stream: events[from], and with `packed` those
// after it while the bounds allow (in `following`). Each event is numbered
// from *sequence + 1 and timed; *sequence ends at the last number given.
// Returns the index of the first event left for the next message.
// REQUIRES: from < events.size(); `out` is empty.
size_t NextWatchMessage(const HubEvents& events, size_t from, bool packed, uint64_t* sequence, v1::WatchEvent* out);

}  // namespace tcbscope

#endif  // TCBSCOPE_AGENT_WATCH_MESSAGES_H_
