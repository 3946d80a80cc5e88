// One source of connection changes shared by every WatchConnections stream.
//
// Two sources, one event vocabulary (added / changed / removed / segment):
//  * BPF: kernel tracepoint records from the ring buffer, turned into events
//    by an EventTracker as they arrive (milliseconds). Lost records (ring
//    buffer full) resync every watcher. Records the kernel skipped (a
//    program busy on that CPU when an interrupt made a transition) are made
//    up for by a dump compared with the tracker (at most once a second):
//    the watcher gets the difference as events marked found_by_dump.
//  * Polling: while anyone watches, the hub dumps the socket table every
//    poll interval and diffs it against the previous dump (common/diff); a
//    grown total_retrans is also reported as a retransmit segment event.
//    Transitions within one interval are folded into one change.
// Idle (nobody watching), a hub costs nothing: its thread sleeps, it holds no
// table, and the BPF programs are detached, so the host's TCP state changes
// do not run them. Each subscriber has a bounded queue: a subscriber that
// falls behind loses its queue and is told to resync (send a fresh snapshot)
// — the agent's memory never grows with a slow reader. Events are shared, not
// copied, between subscribers. Thread-safe.
#ifndef TCBSCOPE_AGENT_WATCH_HUB_H_
#define TCBSCOPE_AGENT_WATCH_HUB_H_

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/event_tracker.h"
#include "agent/kernel/bpf_programs.h"
#include "agent/kernel/diag_source.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope {

struct WatchOptions {
  absl::Duration poll_interval = absl::Seconds(1);
  size_t queue_limit = 10000;  // events a subscriber may have waiting
  // BPF: log each record as the hub reads it, with the count of records lost
  // so far (diagnosis; records the kernel skipped are logged when a dump
  // makes up for them).
  bool log_records = false;
};

class WatchHub {
 public:
  class Subscription {
   public:
    // Waits up to `timeout` for events; moves them into `out`. Returns false
    // when the subscriber overflowed since the last call (its events were
    // dropped; it must resync from LatestSnapshot()).
    bool Next(absl::Duration timeout, std::vector<std::shared_ptr<const HubEvent>>* out);
    // When the snapshot Subscribe returned with this subscriber was taken.
    // Set before Subscribe returns; constant after.
    absl::Time snapshot_time() const { return snapshot_time_; }

   private:
    friend class WatchHub;
    std::function<bool(const HubEvent&)> wants_;  // the subscriber's filter
    absl::Mutex mu_;
    std::deque<std::shared_ptr<const HubEvent>> queue_ ABSL_GUARDED_BY(mu_);
    bool overflowed_ ABSL_GUARDED_BY(mu_) = false;
    size_t limit_ = 0;
    uint64_t since_monotonic_ns_ = 0;  // kernel events older than its snapshot are not its
    absl::Time snapshot_time_;
  };

  // A polling hub. `source` must outlive the hub.
  WatchHub(kernel::DiagSource* source, WatchOptions options);
  // A hub fed by BPF records; `find` looks one socket up by its endpoints
  // (the time-wait check, see event_tracker.h). `forget_lookups`, if given,
  // is called when the last watcher has left, to let go of what `find` keeps
  // between lookups (MultiNetnsSource holds namespaces open).
  WatchHub(kernel::DiagSource* source, WatchOptions options, std::unique_ptr<kernel::BpfEventReader> events,
           EventTracker::Lookup find, std::function<void()> forget_lookups = nullptr);
  ~WatchHub();

  // Registers a subscriber and returns it with the snapshot its events are
  // relative to (taken now if the hub holds none). Subscribers that arrive
  // together share one dump: a polling hub's first dump serves all who find
  // it without a table (a failed one is tried again by the next), and a BPF
  // hub gives a newcomer the last dump a subscriber took, while any stream
  // still holds it and no event has been delivered since (so the two
  // subscribers are in the same place). Only events `wants`
  // accepts are queued for it, so its queue limit counts its own events, not
  // the whole host's.
  absl::StatusOr<std::pair<std::shared_ptr<Subscription>, std::shared_ptr<const Snapshot>>> Subscribe(
      std::function<bool(const HubEvent&)> wants);
  void Unsubscribe(const std::shared_ptr<Subscription>& s);

  // The snapshot a resync sends: the most recent poll, or (BPF) a dump now;
  // null if the dump failed. `captured_at` is set to when it was taken.
  std::shared_ptr<const Snapshot> LatestSnapshot(absl::Time* captured_at);

  size_t subscribers();
  const WatchOptions& options() const { return options_; }
  bool uses_bpf() const { return events_ != nullptr; }

 private:
  absl::StatusOr<std::shared_ptr<const Snapshot>> Dump(StateMask states = kAllStates, bool tcp_info = true);
  void Poll();
  // Polling: adds `sub` with the hub's table, which becomes `base` if the
  // hub holds none.
  std::pair<std::shared_ptr<Subscription>, std::shared_ptr<const Snapshot>> JoinPolling(
      std::shared_ptr<Subscription> sub, std::shared_ptr<const Snapshot> base);
  void RunPolling();
  void RunEvents();
  // Hands one kernel record to the tracker: every record goes through here.
  void ApplyRecord(const tcb_event& r, HubEvents* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues `events` for every subscriber that wants them.
  void Deliver(const HubEvents& events) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // When the kernel has skipped records since the last look, compares a dump
  // with the tracker and appends the difference to `out` (rate-limited).
  void Reconcile(absl::Time now, HubEvents* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  kernel::DiagSource* source_;
  const WatchOptions options_;
  absl::Mutex mu_;
  std::vector<std::shared_ptr<Subscription>> subs_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const Snapshot> latest_ ABSL_GUARDED_BY(mu_);
  absl::Time latest_time_ ABSL_GUARDED_BY(mu_);  // polling: when latest_ was taken
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex dump_mu_;  // one dump at a time
  // Polling: held by a subscriber dumping for a hub without a table, so that
  // those arriving meanwhile wait for its table instead of dumping again.
  absl::Mutex first_dump_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // BPF: the last dump a subscriber took, alive only while some stream holds
  // it (it is sent, then let go), with when it was taken, the time its
  // events start from and the delivery count then.
  std::weak_ptr<const Snapshot> shared_ ABSL_GUARDED_BY(mu_);
  absl::Time shared_time_ ABSL_GUARDED_BY(mu_);
  uint64_t shared_since_ns_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t shared_deliveries_ ABSL_GUARDED_BY(mu_) = 0;
  // BPF: how many non-empty batches of events Deliver has handed on (whether
  // or not any watcher wanted them), plus resyncs; a dump taken at another
  // count is not a newcomer's.
  uint64_t deliveries_ ABSL_GUARDED_BY(mu_) = 0;
  std::unique_ptr<kernel::BpfEventReader> events_;
  EventTracker tracker_ ABSL_GUARDED_BY(mu_);
  const std::function<void()> forget_lookups_;  // may be null
  bool attached_ ABSL_GUARDED_BY(mu_) = false;  // the BPF programs
  uint64_t attached_since_ns_ ABSL_GUARDED_BY(mu_) = 0;  // monotonic
  uint64_t lost_seen_ = 0;  // hub thread only
  uint64_t missed_seen_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time next_miss_check_ = absl::InfinitePast();  // hub thread only
  absl::Time last_reconcile_ = absl::InfinitePast();   // hub thread only
  absl::Duration reconcile_spacing_ = absl::Seconds(1);  // hub thread only
  absl::Time last_miss_log_ = absl::InfinitePast();    // hub thread only
  std::thread poller_;
};

}  // namespace tcbscope

#endif  // TCBSCOPE_AGENT_WATCH_HUB_H_
