// Turns the kernel's BPF event records into the watch hub's events.
//
// The kernel reports transitions (cookie, four-tuple as the socket has it at
// that instant, old and new state). Watchers want connections: the tracker
// keeps what it knows of each socket by cookie — seeded from a dump when the
// first watcher arrives — so that an event carries the connection before and
// after, with the endpoints even when the kernel has already cleared them
// (a closing socket has lost its port by the time it reaches CLOSE).
//
// Three kernel facts shape it:
//  * connect() enters SYN_SENT before it picks the local port, and a passive
//    child enters SYN_RECV before its addresses are set. Such an "added" is
//    held back until the socket's next record (microseconds later for a
//    child) or, for a connect whose SYN goes unanswered, until a dump of
//    SYN_SENT sockets names it (ResolvePending).
//  * TIME_WAIT has no tracepoint: the socket goes to CLOSE and a time-wait
//    socket with the same cookie takes its place (reporting TIME_WAIT, or
//    FIN_WAIT2 for an orphan still waiting for the peer's FIN). After
//    FIN_WAIT1/FIN_WAIT2/CLOSING -> CLOSE the tracker asks the kernel (the
//    lookup seam) whether one exists; if so the event is a change to its
//    state, and later changes and its removal are found by looking again
//    (ExpireTimeWait): every second while it reports FIN_WAIT2, when its
//    timer runs out once it reports TIME_WAIT.
//  * The kernel does not always report the end of an active close. Now and
//    then (in about one run in a hundred of a watch test beside another BPF
//    agent, on 6.18; perf's own probe on the tracepoint saw nothing either)
//    a socket closed in FIN_WAIT1 turns into a time-wait socket with no
//    FIN_WAIT1 -> FIN_WAIT2 and no -> CLOSE at all. So a socket that enters
//    FIN_WAIT1 is looked up if no record has moved it on after
//    kClosingFirstCheck, and again at doubling intervals while it stays
//    there (CheckClosing): a peer that never acknowledges the FIN keeps it
//    in FIN_WAIT1 for minutes.
//  * Events are applied in ring-buffer order, which is per-socket order.
//  * The kernel may skip a record (a program does not nest on one CPU; see
//    BpfEventReader::missed). Reconcile compares a dump with what the
//    tracker knows and reports the difference, so a watcher is told where
//    the socket ended up even when it was not told how.
//  * A record stamped before a Seed or Reconcile dump ended may already be
//    in it, or not (the dump reads each socket at its own moment, and the
//    tracepoint fires just before the kernel stores the state). Such a record
//    about a known socket is applied only when it starts from the state the
//    tracker holds; otherwise the dump has it already, and applying it could
//    only move the socket back.
//  * Request sockets (NEW_SYN_RECV) are in dumps but never in records: they
//    are not tracked (the child socket is, from its own records).
//
// Pure logic apart from the lookup callback, so it is tested with hand-built
// records. Not thread-safe: the hub calls it under its lock.
#ifndef TCBSCOPE_AGENT_EVENT_TRACKER_H_
#define TCBSCOPE_AGENT_EVENT_TRACKER_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/kernel/bpf/tcb_records.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope {

// A change, as shared by all subscribers.
struct HubEvent {
  enum class Kind { kAdded, kChanged, kRemoved, kSegment };
  Kind kind;
  absl::Time time;
  // CLOCK_MONOTONIC of the kernel event (BPF); 0 for polled events. A
  // watcher whose snapshot was taken later already has this change.
  uint64_t monotonic_ns = 0;
  std::shared_ptr<const v1::Connection> before;  // changed, removed
  std::shared_ptr<const v1::Connection> after;   // added, changed, segment
  std::vector<std::string> fields;               // changed
  // kSegment only:
  v1::SegmentEvent::Kind segment = v1::SegmentEvent::KIND_UNSPECIFIED;
  uint32_t seq = 0;
  uint32_t count = 0;
  std::string reason;
  // The kernel skipped this change's records; a dump found it (Reconcile).
  bool found_by_dump = false;
};

using HubEvents = std::vector<std::shared_ptr<const HubEvent>>;
using Snapshot = google::protobuf::RepeatedPtrField<v1::Connection>;

// The connection a record describes: family, endpoints, state (the record's
// new state), cookie, netns, uid and, when the record has one, its process.
v1::Connection ConnectionFromRecord(const tcb_event& r);

// When a dump ran, in CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns).
struct DumpSpan {
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
};

class EventTracker {
 public:
  // Finds the socket with these endpoints in the kernel now (any state);
  // nullopt when there is none.
  using Lookup = std::function<absl::StatusOr<std::optional<v1::Connection>>(const v1::Connection&)>;
  // `reason_name` names a reset reason value ("" when unknown); may be null.
  EventTracker(Lookup lookup, std::function<std::string(uint32_t)> reason_name);

  // Records every socket of `snap` (replacing what is known of them), without
  // their tcp_info and sequence numbers: events carry identity and state.
  void Seed(const Snapshot& snap, absl::Time now, DumpSpan span = {});
  // Brings what is known in line with `dump` (taken at `now`) after the
  // kernel skipped records: a socket the tracker did not know is added, one
  // in another state changed, one absent removed — once the lookup confirms
  // it is gone (a dump is not atomic and may miss a socket), each event
  // marked found_by_dump. Held-back connects the dump names are completed the
  // same way.
  void Reconcile(const Snapshot& dump, DumpSpan span, absl::Time now, HubEvents* out);
  // Forgets everything (no one watches).
  void Clear();
  bool empty() const {
    return known_.empty() && gone_.empty() && pending_.empty() && time_wait_.empty() && closing_.empty();
  }

  // Applies one record; appends the resulting events (zero or more) to `out`.
  void Apply(const tcb_event& r, absl::Time t, HubEvents* out);

  // Connects/children held back for want of their endpoints, oldest first
  // time; nullopt when none.
  std::optional<absl::Time> OldestPending() const;
  // Resolves pending sockets from a dump of SYN_SENT/SYN_RECV sockets: those
  // found become "added" with the dump's endpoints; those not found and older
  // than `give_up` are dropped (they moved on, and their next record will
  // say so, or they are gone).
  void ResolvePending(const Snapshot& dump, absl::Time now, absl::Time give_up, HubEvents* out);

  // Time-wait sockets whose timer should have run out are looked up; the
  // ones gone become "removed".
  void ExpireTimeWait(absl::Time now, HubEvents* out);
  // Sockets still in FIN_WAIT1 as far as the records go, whose check is due,
  // are looked up: one the kernel has moved on becomes "changed" (and, as a
  // time-wait socket, is followed by ExpireTimeWait), one gone "removed".
  void CheckClosing(absl::Time now, HubEvents* out);

  size_t size() const { return known_.size(); }
  size_t pending() const { return pending_.size(); }

 private:
  struct Pending {
    tcb_event record;
    absl::Time time;
  };
  void EmitAdded(std::shared_ptr<const v1::Connection> c, absl::Time t, uint64_t mono, HubEvents* out);
  // `time_wait`: c is a time-wait socket (whatever state it reports), to be
  // checked on until it is gone.
  void Remember(std::shared_ptr<const v1::Connection> c, absl::Time now, bool time_wait = false);
  static absl::Time NextTimeWaitCheck(const v1::Connection& c, absl::Time now);
  // Schedules CheckClosing for a socket now known in FIN_WAIT1 (once).
  void WatchClosing(const v1::Connection& c, absl::Time now);
  // What is kept of a dumped socket (no counters), and whether it is a
  // time-wait socket.
  static std::shared_ptr<const v1::Connection> Kept(const v1::Connection& c);
  static bool IsTimeWaitSocket(const v1::Connection& c);

  using KnownMap = absl::flat_hash_map<uint64_t, std::shared_ptr<const v1::Connection>>;
  // Reports a known socket removed (at `t`, kernel time `mono` or 0) and
  // forgets it.
  void Remove(KnownMap::iterator it, absl::Time t, uint64_t mono, HubEvents* out);

  Lookup lookup_;
  std::function<std::string(uint32_t)> reason_name_;
  KnownMap known_;
  absl::flat_hash_map<uint64_t, Pending> pending_;
  std::multimap<absl::Time, uint64_t> time_wait_;  // when to check, cookie
  absl::flat_hash_set<uint64_t> tw_cookies_;       // known sockets that are time-wait sockets
  std::multimap<absl::Time, uint64_t> closing_;    // when to look at a FIN_WAIT1 socket, cookie
  absl::flat_hash_map<uint64_t, absl::Duration> closing_wait_;  // its current interval
  // Sockets removed lately, for records that arrive after the socket's CLOSE
  // (a reset sent on close with SO_LINGER 0 follows it). Bounded.
  absl::flat_hash_map<uint64_t, std::shared_ptr<const v1::Connection>> gone_;
  std::deque<uint64_t> gone_order_;
  uint64_t settled_until_ns_ = 0;  // end of the last Seed/Reconcile dump
  void Forget(uint64_t cookie, std::shared_ptr<const v1::Connection> last);
};

}  // namespace tcbscope

#endif  // TCBSCOPE_AGENT_EVENT_TRACKER_H_
