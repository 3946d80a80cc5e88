#include "agent/watch_hub.h"

#include <algorithm>

#include "agent/free_memory.h"
#include "agent/kernel/inet_diag_parser.h"
#include "absl/strings/str_cat.h"
#include "agent/log.h"
#include "common/diff.h"

namespace tcbscope {
namespace {

// How long the BPF loop waits for records before it looks at its timers
// (time-wait expiry, held-back connects) and the stop flag.
constexpr absl::Duration kEventWait = absl::Milliseconds(100);
// A connect held back for want of its local port is looked up in a dump of
// SYN_SENT sockets after this long, and given up after kPendingGiveUp.
constexpr absl::Duration kPendingLookup = absl::Milliseconds(20);
constexpr absl::Duration kPendingGiveUp = absl::Seconds(1);
// How often the kernel's count of skipped records is read (one bpf(2) call
// per program), and the least time between two reconciling dumps: on a busy
// host records may be skipped every second, and a dump of 100k sockets costs
// ~0.1 s of CPU.
constexpr absl::Duration kMissCheck = absl::Milliseconds(100);
constexpr absl::Duration kReconcileSpacing = absl::Seconds(1);
constexpr absl::Duration kMissLogSpacing = absl::Minutes(1);

}  // namespace

bool WatchHub::Subscription::Next(absl::Duration timeout, std::vector<std::shared_ptr<const HubEvent>>* out) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || overflowed_; };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (overflowed_) {
    overflowed_ = false;
    queue_.clear();
    return false;
  }
  out->insert(out->end(), std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
  queue_.clear();
  return true;
}

WatchHub::WatchHub(kernel::DiagSource* source, WatchOptions options)
    : source_(source), options_(options), tracker_(nullptr, nullptr), poller_([this] { RunPolling(); }) {}

WatchHub::WatchHub(kernel::DiagSource* source, WatchOptions options, std::unique_ptr<kernel::BpfEventReader> events,
                   EventTracker::Lookup find, std::function<void()> forget_lookups)
    : source_(source),
      options_(options),
      events_(std::move(events)),
      tracker_(std::move(find), [r = events_.get()](uint32_t v) { return r->ResetReason(v); }),
      forget_lookups_(std::move(forget_lookups)),
      lost_seen_(events_->lost()),
      poller_([this] { RunEvents(); }) {}

WatchHub::~WatchHub() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (poller_.joinable()) poller_.join();
}

absl::StatusOr<std::shared_ptr<const Snapshot>> WatchHub::Dump(StateMask states, bool tcp_info) {
  absl::MutexLock lock(&dump_mu_);
  auto snap = std::make_shared<Snapshot>();
  kernel::DumpRequest req;
  req.states = states;
  req.tcp_info = tcp_info;  // change fields include the byte and segment counters
  absl::StatusOr<kernel::DumpResult> r = source_->Dump(req, [&](const nlmsghdr* m) {
    v1::Connection* c = snap->Add();
    if (!kernel::ParseFromSource(*source_, m, c).ok()) snap->RemoveLast();
    return absl::OkStatus();
  });
  if (!r.ok()) return r.status();
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

absl::StatusOr<std::pair<std::shared_ptr<WatchHub::Subscription>, std::shared_ptr<const Snapshot>>>
WatchHub::Subscribe(std::function<bool(const HubEvent&)> wants) {
  auto sub = std::make_shared<Subscription>();
  sub->limit_ = options_.queue_limit;
  sub->wants_ = std::move(wants);
  if (events_) {
    // The hub thread waits while we dump, so no record is applied between
    // the snapshot and the subscription; records the kernel made before the
    // dump began are already in the snapshot and are not this watcher's.
    absl::MutexLock lock(&mu_);
    const bool first = subs_.empty();
    // The counts first: a table locked and then not used would be freed
    // here, under the lock, if its last holder let go meanwhile.
    if (!first && shared_deliveries_ == deliveries_) {
      if (std::shared_ptr<const Snapshot> shared = shared_.lock()) {
        // Nothing was delivered since that dump: the newcomer starts where
        // its taker did, and every record from then on is for both.
        sub->since_monotonic_ns_ = shared_since_ns_;
        sub->snapshot_time_ = shared_time_;
        subs_.push_back(sub);
        return std::make_pair(sub, std::move(shared));
      }
    }
    if (first) {
      // The programs run only while someone watches (RunEvents detaches
      // them), and from before this dump begins.
      if (!attached_) {
        attached_since_ns_ = kernel::MonotonicNowNs();
        if (absl::Status s = events_->Attach(); !s.ok()) return s;
        attached_ = true;
      }
      missed_seen_ = events_->missed();  // skipped before now: in the dump
    }
    sub->since_monotonic_ns_ = kernel::MonotonicNowNs();
    absl::StatusOr<std::shared_ptr<const Snapshot>> snap = Dump();
    if (!snap.ok()) return snap.status();
    const DumpSpan span{sub->since_monotonic_ns_, kernel::MonotonicNowNs()};
    // With watchers already there the tracker is up to date, and replacing
    // its table would hide from them what changed since (records made before
    // this dump are still to come). The first watcher starts it afresh.
    if (first) {
      tracker_.Clear();
      tracker_.Seed(**snap, absl::Now(), span);
    }
    // The tracker holds what it needs; a second copy of the table would
    // double the memory of watching (resyncs dump afresh).
    sub->snapshot_time_ = absl::Now();
    shared_ = *snap;
    shared_time_ = sub->snapshot_time_;
    shared_since_ns_ = sub->since_monotonic_ns_;
    shared_deliveries_ = deliveries_;
    subs_.push_back(sub);
    return std::make_pair(sub, *snap);
  }
  std::shared_ptr<const Snapshot> base;
  {
    absl::MutexLock lock(&mu_);
    base = latest_;
  }
  if (!base) {
    // One dump for everyone who finds the hub without a table: those who
    // wait here take the table the first one left (or, if its dump failed,
    // try in turn).
    absl::MutexLock first_dump(&first_dump_mu_);
    {
      absl::MutexLock lock(&mu_);
      base = latest_;
    }
    if (!base) {
      absl::StatusOr<std::shared_ptr<const Snapshot>> fresh = Dump();
      if (!fresh.ok()) return fresh.status();
      base = *std::move(fresh);
    }
    // Still holding first_dump_mu_: the table must be the hub's before the
    // next waiter looks for it.
    return JoinPolling(std::move(sub), std::move(base));
  }
  return JoinPolling(std::move(sub), std::move(base));
}

std::pair<std::shared_ptr<WatchHub::Subscription>, std::shared_ptr<const Snapshot>> WatchHub::JoinPolling(
    std::shared_ptr<Subscription> sub, std::shared_ptr<const Snapshot> base) {
  absl::MutexLock lock(&mu_);
  // A poll since `base` was read may have replaced the table (then the newer
  // one is the base) or, with nobody subscribed yet, let go of it.
  if (!latest_) {
    latest_ = std::move(base);
    latest_time_ = absl::Now();
  }
  sub->snapshot_time_ = latest_time_;
  subs_.push_back(sub);
  return std::make_pair(std::move(sub), latest_);
}

void WatchHub::Unsubscribe(const std::shared_ptr<Subscription>& s) {
  absl::MutexLock lock(&mu_);
  subs_.erase(std::remove(subs_.begin(), subs_.end(), s), subs_.end());
}

std::shared_ptr<const Snapshot> WatchHub::LatestSnapshot(absl::Time* captured_at) {
  if (events_) {
    absl::StatusOr<std::shared_ptr<const Snapshot>> fresh = Dump();
    *captured_at = absl::Now();
    if (!fresh.ok()) return nullptr;
    return *fresh;
  }
  absl::MutexLock lock(&mu_);
  *captured_at = latest_time_;
  return latest_;
}

size_t WatchHub::subscribers() {
  absl::MutexLock lock(&mu_);
  return subs_.size();
}

void WatchHub::Deliver(const HubEvents& events) {
  if (!events.empty()) ++deliveries_;
  for (const auto& sub : subs_) {
    absl::MutexLock sl(&sub->mu_);
    for (const auto& e : events) {
      if (sub->overflowed_) break;
      if (e->monotonic_ns != 0 && e->monotonic_ns < sub->since_monotonic_ns_) continue;
      if (sub->wants_ && !sub->wants_(*e)) continue;
      if (sub->queue_.size() >= sub->limit_) {
        sub->overflowed_ = true;  // it will resync; drop what it had
        sub->queue_.clear();
        break;
      }
      sub->queue_.push_back(e);
    }
  }
}

void WatchHub::Poll() {
  {
    absl::MutexLock lock(&mu_);
    if (subs_.empty()) {
      // Nobody watches: hold no snapshot, and give its memory back.
      if (latest_) {
        latest_.reset();
        GiveFreeMemoryBack();
      }
      return;
    }
  }
  absl::StatusOr<std::shared_ptr<const Snapshot>> next = Dump();
  if (!next.ok()) return;  // a failed dump is retried at the next interval
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&mu_);
  std::shared_ptr<const Snapshot> prev = latest_;
  latest_ = *next;
  latest_time_ = now;
  if (!prev || subs_.empty()) return;
  // Diff under the lock so that a new subscriber's baseline and the events
  // it receives always fit together.
  SnapshotDiff d = DiffSnapshots(*prev, **next);
  if (d.empty()) return;
  HubEvents events;
  events.reserve(d.added.size() + d.changed.size() + d.removed.size());
  for (const ConnectionChange& c : d.changed) {
    auto e = std::make_shared<HubEvent>();
    e->kind = HubEvent::Kind::kChanged;
    e->time = now;
    e->before = std::make_shared<const v1::Connection>(*c.before);
    e->after = std::make_shared<const v1::Connection>(*c.after);
    e->fields = c.fields;
    const uint32_t was = c.before->tcp_info().total_retrans(), is = c.after->tcp_info().total_retrans();
    events.push_back(e);
    if (is > was) {
      auto seg = std::make_shared<HubEvent>();
      seg->kind = HubEvent::Kind::kSegment;
      seg->time = now;
      seg->after = e->after;
      seg->segment = v1::SegmentEvent::RETRANSMIT;
      seg->count = is - was;
      events.push_back(std::move(seg));
    }
  }
  for (const v1::Connection* c : d.added) {
    auto e = std::make_shared<HubEvent>();
    e->kind = HubEvent::Kind::kAdded;
    e->time = now;
    e->after = std::make_shared<const v1::Connection>(*c);
    events.push_back(std::move(e));
  }
  for (const v1::Connection* c : d.removed) {
    auto e = std::make_shared<HubEvent>();
    e->kind = HubEvent::Kind::kRemoved;
    e->time = now;
    e->before = std::make_shared<const v1::Connection>(*c);
    events.push_back(std::move(e));
  }
  Deliver(events);
}

void WatchHub::RunPolling() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      // Nobody watches: no dumps, and no wakeups until someone does (or a
      // table is left from one who came and went, for Poll to let go of).
      auto watched = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !subs_.empty() || latest_; };
      mu_.Await(absl::Condition(&watched));
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), options_.poll_interval)) return;
    }
    Poll();
  }
}

void WatchHub::ApplyRecord(const tcb_event& r, HubEvents* out) {
  if (options_.log_records) {
    Log(LogLevel::kInfo,
        absl::StrCat("BPF record: kind ", r.kind, " cookie ", r.cookie, " ports ", r.sport, "->", r.dport, " state ",
                     static_cast<int>(r.oldstate), "->", static_cast<int>(r.newstate), " at ", r.ktime_ns,
                     " ns (attached at ", attached_since_ns_, "; lost so far ", events_->lost(), ")"));
  }
  // A record from before the programs were last attached (a run that ended
  // after the detach and its drain) is not the tracker's.
  if (r.ktime_ns < attached_since_ns_) return;
  tracker_.Apply(r, kernel::MonotonicToTime(r.ktime_ns), out);
}

void WatchHub::Reconcile(absl::Time now, HubEvents* out) {
  if (now < next_miss_check_) return;
  next_miss_check_ = now + kMissCheck;
  if (now - last_reconcile_ < reconcile_spacing_) return;
  const uint64_t missed = events_->missed();
  if (missed == missed_seen_) return;
  missed_seen_ = missed;
  last_reconcile_ = now;
  // Apply what is already queued first, so that the dump adds only what the
  // kernel skipped; records still to come from before it are then dropped.
  (void)events_->Poll(absl::ZeroDuration(), [&](const tcb_event& r) { ApplyRecord(r, out); });
  DumpSpan span;
  span.start_ns = kernel::MonotonicNowNs();
  absl::StatusOr<std::shared_ptr<const Snapshot>> snap = Dump(kAllStates, /*tcp_info=*/false);
  span.end_ns = kernel::MonotonicNowNs();
  // The ring buffer is not read while the hub dumps: a slow dump (many
  // sockets, many namespaces) spaces the next one further out.
  reconcile_spacing_ = std::max(kReconcileSpacing, 10 * absl::Nanoseconds(span.end_ns - span.start_ns));
  if (!snap.ok()) {
    missed_seen_ = missed - 1;  // differs: tried again after the spacing
    return;
  }
  const size_t before = out->size();
  tracker_.Reconcile(**snap, span, absl::Now(), out);
  if (now - last_miss_log_ >= kMissLogSpacing) {
    last_miss_log_ = now;
    Log(LogLevel::kInfo, absl::StrCat("BPF: the kernel has skipped ", missed,
                                      " records since load (a tracing program does not nest on one CPU); a dump "
                                      "showed ", out->size() - before, " changes they would have carried, sent to watchers"));
  }
}

void WatchHub::RunEvents() {
  std::vector<tcb_event> batch;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (subs_.empty()) {
        // Nobody watches: the programs are detached (attached, they run on
        // every TCP state change of the host), what they queued is dropped
        // so that a new watcher never receives a backlog from before its
        // snapshot, the table is forgotten and its memory given back, and
        // this thread sleeps until a watcher comes. Subscribe attaches.
        // It waits for the attaching, not for a watcher: one that came and
        // went before this thread ran would otherwise leave them attached.
        events_->Detach();
        attached_ = false;
        (void)events_->Poll(absl::ZeroDuration(), [](const tcb_event&) {});
        lost_seen_ = events_->lost();
        if (!tracker_.empty()) {
          tracker_.Clear();
          GiveFreeMemoryBack();
        }
        if (forget_lookups_) forget_lookups_();
        auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || attached_; };
        mu_.Await(absl::Condition(&wake));
      }
      if (stop_) return;
    }
    batch.clear();
    absl::StatusOr<int> n = events_->Poll(kEventWait, [&](const tcb_event& r) { batch.push_back(r); });
    (void)n;
    const uint64_t lost = events_->lost();
    const absl::Time now = absl::Now();
    absl::MutexLock lock(&mu_);
    if (subs_.empty()) continue;  // the last watcher left during the wait
    if (lost != lost_seen_) {
      // Records were lost: what the tracker knows may be wrong and every
      // watcher has a gap. Start over from the kernel's table.
      lost_seen_ = lost;
      tracker_.Clear();
      DumpSpan span;
      span.start_ns = kernel::MonotonicNowNs();
      absl::StatusOr<std::shared_ptr<const Snapshot>> snap = Dump();
      span.end_ns = kernel::MonotonicNowNs();
      if (snap.ok()) tracker_.Seed(**snap, now, span);
      ++deliveries_;
      for (const auto& sub : subs_) {
        absl::MutexLock sl(&sub->mu_);
        sub->overflowed_ = true;
        sub->queue_.clear();
      }
      continue;
    }
    HubEvents out;
    for (const tcb_event& r : batch) ApplyRecord(r, &out);
    Reconcile(now, &out);
    tracker_.ExpireTimeWait(now, &out);
    const size_t before_closing = out.size();
    tracker_.CheckClosing(now, &out);
    if (options_.log_records && out.size() > before_closing) {
      Log(LogLevel::kInfo, absl::StrCat("BPF: ", out.size() - before_closing,
                                        " change(s) with no record, found by looking up a socket left in FIN_WAIT1"));
    }
    if (std::optional<absl::Time> oldest = tracker_.OldestPending(); oldest && now - *oldest >= kPendingLookup) {
      absl::StatusOr<std::shared_ptr<const Snapshot>> syn =
          Dump(StateBit(v1::TCP_STATE_SYN_SENT) | StateBit(v1::TCP_STATE_SYN_RECV), false);
      if (syn.ok()) tracker_.ResolvePending(**syn, now, now - kPendingGiveUp, &out);
    }
    if (!out.empty()) Deliver(out);
  }
}

}  // namespace tcbscope
