#include "agent/event_tracker.h"

#include <sys/socket.h>

#include <algorithm>

#include "common/ip_address.h"

namespace tcbscope {
namespace {

constexpr uint8_t kClose = v1::TCP_STATE_CLOSE;
// A time-wait socket lasts TCP_TIMEWAIT_LEN (60 s) unless the dump told us
// its timer; checked a little after it should be gone.
constexpr absl::Duration kTimeWaitLength = absl::Seconds(60);
constexpr absl::Duration kTimeWaitSlack = absl::Milliseconds(200);
constexpr absl::Duration kTimeWaitRecheck = absl::Seconds(1);
// A FIN_WAIT1 socket no record has moved on is looked at after this long:
// past the peer's longest delayed ACK (200 ms), so that an ordinary close
// has long been reported by then and costs no lookup. Then at doubling
// intervals, up to the last.
constexpr absl::Duration kClosingFirstCheck = absl::Milliseconds(300);
constexpr absl::Duration kClosingLastCheck = absl::Seconds(30);
// Removed sockets remembered for late records.
constexpr size_t kGoneRemembered = 4096;

bool HasEndpoints(const tcb_event& r) { return r.sport != 0 && r.dport != 0; }

// Takes the cookies whose check is due by `now` off a schedule, in time order.
std::vector<uint64_t> TakeDue(std::multimap<absl::Time, uint64_t>* schedule, absl::Time now) {
  std::vector<uint64_t> due;
  while (!schedule->empty() && schedule->begin()->first <= now) {
    due.push_back(schedule->begin()->second);
    schedule->erase(schedule->begin());
  }
  return due;
}

std::shared_ptr<HubEvent> Event(HubEvent::Kind kind, absl::Time t, uint64_t mono,
                                      std::shared_ptr<const v1::Connection> before,
                                      std::shared_ptr<const v1::Connection> after) {
  auto e = std::make_shared<HubEvent>();
  e->kind = kind;
  e->time = t;
  e->monotonic_ns = mono;
  e->before = std::move(before);
  e->after = std::move(after);
  if (kind == HubEvent::Kind::kChanged) e->fields = {"state"};
  return e;
}

}  // namespace

v1::Connection ConnectionFromRecord(const tcb_event& r) {
  v1::Connection c;
  const bool v4 = r.family == AF_INET;
  c.set_family(v4 ? v1::FAMILY_INET : v1::FAMILY_INET6);
  c.mutable_local()->set_address((v4 ? IpAddress::V4(r.saddr) : IpAddress::V6(r.saddr)).ToString());
  c.mutable_local()->set_port(r.sport);
  c.mutable_remote()->set_address((v4 ? IpAddress::V4(r.daddr) : IpAddress::V6(r.daddr)).ToString());
  c.mutable_remote()->set_port(r.dport);
  c.set_state(static_cast<v1::TcpState>(r.newstate <= v1::TCP_STATE_NEW_SYN_RECV ? r.newstate : 0));
  c.set_cookie(r.cookie);
  c.set_netns(r.netns);
  c.set_uid(r.uid);
  if (r.pid != 0) {
    v1::Owner* o = c.add_owners();
    o->set_pid(r.pid);
    o->set_comm(std::string(r.comm, strnlen(r.comm, sizeof(r.comm))));
  }
  return c;
}

EventTracker::EventTracker(Lookup lookup, std::function<std::string(uint32_t)> reason_name)
    : lookup_(std::move(lookup)), reason_name_(std::move(reason_name)) {}

void EventTracker::Remember(std::shared_ptr<const v1::Connection> c, absl::Time now, bool time_wait) {
  if (time_wait || c->state() == v1::TCP_STATE_TIME_WAIT) {
    // Once: a socket already followed keeps its schedule (a late record may
    // report what a lookup found first).
    if (tw_cookies_.insert(c->cookie()).second) time_wait_.emplace(NextTimeWaitCheck(*c, now), c->cookie());
  } else {
    WatchClosing(*c, now);
  }
  known_[c->cookie()] = std::move(c);
}

void EventTracker::WatchClosing(const v1::Connection& c, absl::Time now) {
  if (c.state() != v1::TCP_STATE_FIN_WAIT1) return;
  if (!closing_wait_.emplace(c.cookie(), kClosingFirstCheck).second) return;  // already watched
  closing_.emplace(now + kClosingFirstCheck, c.cookie());
}

absl::Time EventTracker::NextTimeWaitCheck(const v1::Connection& c, absl::Time now) {
  // An orphan's FIN_WAIT2 lives on as a time-wait socket reporting
  // FIN_WAIT2 until the peer's FIN turns it into TIME_WAIT; the kernel has no
  // event for either step, so it is looked at every second. TIME_WAIT itself
  // only ends, when its timer says.
  if (c.state() != v1::TCP_STATE_TIME_WAIT) return now + kTimeWaitRecheck;
  const absl::Duration left =
      c.timer().expires_ms() > 0 ? absl::Milliseconds(c.timer().expires_ms()) : kTimeWaitLength;
  return now + left + kTimeWaitSlack;
}

std::shared_ptr<const v1::Connection> EventTracker::Kept(const v1::Connection& c) {
  // What the tracker keeps of a socket is who it is and its state: its
  // counters would only grow stale (no record refreshes them), and they are
  // most of its memory (100k sockets: ~85 MB with them, ~30 MB without).
  auto kept = std::make_shared<v1::Connection>(c);
  kept->clear_tcp_info();
  kept->clear_seq();
  return kept;
}

bool EventTracker::IsTimeWaitSocket(const v1::Connection& c) {
  // An orphan's FIN_WAIT2 is a time-wait socket too: no inode.
  return c.state() == v1::TCP_STATE_TIME_WAIT || (c.state() == v1::TCP_STATE_FIN_WAIT2 && c.inode() == 0);
}

void EventTracker::Seed(const Snapshot& snap, absl::Time now, DumpSpan span) {
  settled_until_ns_ = std::max(settled_until_ns_, span.end_ns);
  for (const v1::Connection& c : snap) {
    if (c.cookie() == 0 || c.state() == v1::TCP_STATE_NEW_SYN_RECV) continue;
    Remember(Kept(c), now, IsTimeWaitSocket(c));
  }
}

void EventTracker::Reconcile(const Snapshot& dump, DumpSpan span, absl::Time now, HubEvents* out) {
  settled_until_ns_ = std::max(settled_until_ns_, span.end_ns);
  const uint64_t dump_start_ns = span.start_ns;
  auto emit = [&](HubEvent::Kind kind, std::shared_ptr<const v1::Connection> before,
                  std::shared_ptr<const v1::Connection> after) {
    // A watcher whose snapshot is newer than the dump has it already.
    std::shared_ptr<HubEvent> e = Event(kind, now, dump_start_ns, std::move(before), std::move(after));
    e->found_by_dump = true;
    out->push_back(std::move(e));
  };
  absl::flat_hash_set<uint64_t> present;
  present.reserve(static_cast<size_t>(dump.size()));
  for (const v1::Connection& c : dump) {
    if (c.cookie() == 0 || c.state() == v1::TCP_STATE_NEW_SYN_RECV) continue;
    present.insert(c.cookie());
    pending_.erase(c.cookie());
    auto it = known_.find(c.cookie());
    if (it != known_.end() && it->second->state() == c.state()) continue;
    std::shared_ptr<const v1::Connection> kept = Kept(c);
    if (it == known_.end()) {
      emit(HubEvent::Kind::kAdded, nullptr, kept);
    } else {
      emit(HubEvent::Kind::kChanged, it->second, kept);
    }
    if (tw_cookies_.contains(c.cookie())) {
      known_[c.cookie()] = std::move(kept);  // already checked on by ExpireTimeWait
    } else {
      Remember(std::move(kept), now, IsTimeWaitSocket(c));
    }
  }
  std::vector<uint64_t> absent;
  for (const auto& [cookie, c] : known_) {
    if (!present.contains(cookie)) absent.push_back(cookie);
  }
  for (uint64_t cookie : absent) {
    auto it = known_.find(cookie);
    // Gone, or only missed by the dump (one bucket at a time, it can skip a
    // socket while others close)? Asked directly; when unsure, kept.
    absl::StatusOr<std::optional<v1::Connection>> still =
        lookup_ ? lookup_(*it->second) : std::optional<v1::Connection>();
    if (!still.ok()) continue;
    if (still->has_value() && (*still)->cookie() == cookie) {
      if ((*still)->state() != it->second->state()) {
        std::shared_ptr<const v1::Connection> kept = Kept(**still);
        emit(HubEvent::Kind::kChanged, it->second, kept);
        it->second = std::move(kept);
      }
      continue;
    }
    std::shared_ptr<const v1::Connection> last = std::move(it->second);
    known_.erase(it);
    emit(HubEvent::Kind::kRemoved, last, nullptr);
    Forget(cookie, std::move(last));
  }
}

void EventTracker::Forget(uint64_t cookie, std::shared_ptr<const v1::Connection> last) {
  tw_cookies_.erase(cookie);
  closing_wait_.erase(cookie);
  if (gone_.size() >= kGoneRemembered && !gone_order_.empty()) {
    gone_.erase(gone_order_.front());
    gone_order_.pop_front();
  }
  if (gone_.emplace(cookie, std::move(last)).second) gone_order_.push_back(cookie);
}

void EventTracker::Clear() {
  gone_.clear();
  gone_order_.clear();
  known_.clear();
  pending_.clear();
  time_wait_.clear();
  tw_cookies_.clear();
  closing_.clear();
  closing_wait_.clear();
  settled_until_ns_ = 0;
}

void EventTracker::EmitAdded(std::shared_ptr<const v1::Connection> c, absl::Time t, uint64_t mono, HubEvents* out) {
  out->push_back(Event(HubEvent::Kind::kAdded, t, mono, nullptr, c));
  Remember(std::move(c), t);
}

void EventTracker::Apply(const tcb_event& r, absl::Time t, HubEvents* out) {
  // Perhaps in the last dump already (see the header). Segment records never
  // are: a dump has no record of a retransmission.
  if (r.kind == TCB_EVENT_STATE && r.ktime_ns < settled_until_ns_) {
    auto k = known_.find(r.cookie);
    if (k != known_.end() && k->second->state() != r.oldstate) return;
  }
  // A held-back socket's next record completes it: "added" first, with the
  // endpoints this record has, unless it never became visible at all.
  if (auto p = pending_.find(r.cookie); p != pending_.end()) {
    Pending held = p->second;
    pending_.erase(p);
    if (HasEndpoints(r)) {
      tcb_event first = held.record;
      std::memcpy(first.saddr, r.saddr, sizeof(first.saddr));
      std::memcpy(first.daddr, r.daddr, sizeof(first.daddr));
      first.sport = r.sport;
      first.dport = r.dport;
      EmitAdded(std::make_shared<const v1::Connection>(ConnectionFromRecord(first)), held.time,
                held.record.ktime_ns, out);
    } else if (r.newstate == kClose) {
      return;  // created and gone without ever having endpoints
    } else {
      pending_[r.cookie] = held;  // still incomplete
    }
  }

  if (r.kind != TCB_EVENT_STATE) {
    auto seg = std::make_shared<HubEvent>();
    seg->kind = HubEvent::Kind::kSegment;
    seg->time = t;
    seg->monotonic_ns = r.ktime_ns;
    std::shared_ptr<const v1::Connection> was;
    if (r.cookie != 0) {
      if (auto it = known_.find(r.cookie); it != known_.end()) {
        was = it->second;
      } else if (auto g = gone_.find(r.cookie); g != gone_.end()) {
        was = g->second;
      }
    }
    auto c = std::make_shared<v1::Connection>(was ? *was : ConnectionFromRecord(r));
    if (was) c->set_state(static_cast<v1::TcpState>(r.newstate));
    seg->after = std::move(c);
    switch (r.kind) {
      case TCB_EVENT_RETRANSMIT:
        seg->segment = v1::SegmentEvent::RETRANSMIT;
        seg->seq = r.seq;
        seg->count = 1;
        break;
      case TCB_EVENT_RESET_SENT:
        seg->segment = v1::SegmentEvent::RESET_SENT;
        if (reason_name_) seg->reason = reason_name_(r.reason);
        break;
      case TCB_EVENT_RESET_RECV:
        seg->segment = v1::SegmentEvent::RESET_RECEIVED;
        break;
      default:
        return;
    }
    out->push_back(std::move(seg));
    return;
  }

  auto known = known_.find(r.cookie);
  if (known == known_.end()) {
    // Removed already: a dump found it gone before its record arrived.
    if (r.newstate == kClose && gone_.contains(r.cookie)) return;
    if (r.newstate == kClose) {
      // A socket we never knew, closing: report it only if the kernel still
      // gave its endpoints.
      if (HasEndpoints(r)) {
        auto c = std::make_shared<v1::Connection>(ConnectionFromRecord(r));
        c->set_state(static_cast<v1::TcpState>(r.oldstate));
        out->push_back(Event(HubEvent::Kind::kRemoved, t, r.ktime_ns, std::move(c), nullptr));
      }
      return;
    }
    const bool incomplete = (r.oldstate == kClose && r.newstate == v1::TCP_STATE_SYN_SENT) ||
                            (r.oldstate == v1::TCP_STATE_LISTEN && r.newstate == v1::TCP_STATE_SYN_RECV);
    if (incomplete || !HasEndpoints(r)) {
      if (r.newstate == v1::TCP_STATE_LISTEN && r.sport != 0) {
        EmitAdded(std::make_shared<const v1::Connection>(ConnectionFromRecord(r)), t, r.ktime_ns, out);
        return;
      }
      pending_[r.cookie] = Pending{r, t};
      return;
    }
    EmitAdded(std::make_shared<const v1::Connection>(ConnectionFromRecord(r)), t, r.ktime_ns, out);
    return;
  }

  std::shared_ptr<const v1::Connection> before = known->second;
  if (r.newstate == kClose) {
    const uint8_t from = r.oldstate;
    if (from == v1::TCP_STATE_FIN_WAIT1 || from == v1::TCP_STATE_FIN_WAIT2 || from == v1::TCP_STATE_CLOSING) {
      absl::StatusOr<std::optional<v1::Connection>> tw = lookup_ ? lookup_(*before) : std::optional<v1::Connection>();
      if (tw.ok() && tw->has_value() && (*tw)->cookie() == r.cookie && (*tw)->inode() == 0) {
        auto after = std::make_shared<v1::Connection>(**tw);
        if (after->state() != before->state()) {
          out->push_back(Event(HubEvent::Kind::kChanged, t, r.ktime_ns, before, after));
        }
        known_.erase(known);
        Remember(std::move(after), t, /*time_wait=*/true);
        return;
      }
    }
    Remove(known, t, r.ktime_ns, out);
    return;
  }
  auto after = std::make_shared<v1::Connection>(*before);
  if (HasEndpoints(r)) {
    v1::Connection fresh = ConnectionFromRecord(r);
    *after->mutable_local() = fresh.local();
    *after->mutable_remote() = fresh.remote();
  }
  after->set_state(static_cast<v1::TcpState>(r.newstate));
  if (r.pid != 0) {
    after->clear_owners();
    v1::Owner* o = after->add_owners();
    o->set_pid(r.pid);
    o->set_comm(std::string(r.comm, strnlen(r.comm, sizeof(r.comm))));
  }
  if (after->state() == before->state()) {
    known->second = std::move(after);  // nothing a watcher would see
    return;
  }
  out->push_back(Event(HubEvent::Kind::kChanged, t, r.ktime_ns, before, after));
  WatchClosing(*after, t);
  known->second = std::move(after);
}

std::optional<absl::Time> EventTracker::OldestPending() const {
  std::optional<absl::Time> oldest;
  for (const auto& [cookie, p] : pending_) {
    if (!oldest || p.time < *oldest) oldest = p.time;
  }
  return oldest;
}

void EventTracker::ResolvePending(const Snapshot& dump, absl::Time now, absl::Time give_up, HubEvents* out) {
  (void)now;
  if (pending_.empty()) return;
  absl::flat_hash_map<uint64_t, const v1::Connection*> by_cookie;
  for (const v1::Connection& c : dump) by_cookie[c.cookie()] = &c;
  for (auto it = pending_.begin(); it != pending_.end();) {
    auto found = by_cookie.find(it->first);
    if (found != by_cookie.end()) {
      auto c = std::make_shared<v1::Connection>(*found->second);
      const v1::Connection held = ConnectionFromRecord(it->second.record);
      c->set_state(held.state());
      *c->mutable_owners() = held.owners();
      EmitAdded(std::move(c), it->second.time, it->second.record.ktime_ns, out);
      pending_.erase(it++);
    } else if (it->second.time < give_up) {
      pending_.erase(it++);
    } else {
      ++it;
    }
  }
}

void EventTracker::Remove(KnownMap::iterator it, absl::Time t, uint64_t mono, HubEvents* out) {
  std::shared_ptr<const v1::Connection> last = std::move(it->second);
  const uint64_t cookie = it->first;
  known_.erase(it);
  out->push_back(Event(HubEvent::Kind::kRemoved, t, mono, last, nullptr));
  Forget(cookie, std::move(last));
}

void EventTracker::ExpireTimeWait(absl::Time now, HubEvents* out) {
  std::vector<std::pair<absl::Time, uint64_t>> again;
  for (const uint64_t cookie : TakeDue(&time_wait_, now)) {
    auto it = known_.find(cookie);
    if (it == known_.end() || !tw_cookies_.contains(cookie)) continue;
    absl::StatusOr<std::optional<v1::Connection>> still = lookup_ ? lookup_(*it->second) : std::optional<v1::Connection>();
    if (!still.ok()) {
      again.emplace_back(now + kTimeWaitRecheck, cookie);
      continue;
    }
    if (still->has_value() && (*still)->cookie() == cookie) {
      if ((*still)->state() != it->second->state()) {
        auto after = std::make_shared<const v1::Connection>(**still);
        out->push_back(Event(HubEvent::Kind::kChanged, now, 0, it->second, after));
        it->second = after;
      }
      again.emplace_back(NextTimeWaitCheck(*it->second, now), cookie);
      continue;
    }
    Remove(it, now, 0, out);
  }
  for (const auto& a : again) time_wait_.insert(a);
}

void EventTracker::CheckClosing(absl::Time now, HubEvents* out) {
  std::vector<std::pair<absl::Time, uint64_t>> again;
  for (const uint64_t cookie : TakeDue(&closing_, now)) {
    auto wait = closing_wait_.find(cookie);
    if (wait == closing_wait_.end()) continue;  // gone since
    auto it = known_.find(cookie);
    if (it == known_.end() || it->second->state() != v1::TCP_STATE_FIN_WAIT1 || tw_cookies_.contains(cookie)) {
      closing_wait_.erase(wait);  // a record or a dump has moved it on: the common case, no lookup
      continue;
    }
    absl::StatusOr<std::optional<v1::Connection>> found =
        lookup_ ? lookup_(*it->second) : std::optional<v1::Connection>();
    if (!found.ok()) {
      again.emplace_back(now + wait->second, cookie);
      continue;
    }
    if (found->has_value() && (*found)->cookie() == cookie) {
      std::shared_ptr<const v1::Connection> after = Kept(**found);
      if (after->state() == v1::TCP_STATE_FIN_WAIT1) {
        wait->second = std::min(2 * wait->second, kClosingLastCheck);
        again.emplace_back(now + wait->second, cookie);
        continue;
      }
      closing_wait_.erase(wait);
      out->push_back(Event(HubEvent::Kind::kChanged, now, 0, it->second, after));
      Remember(std::move(after), now, IsTimeWaitSocket(**found));
      continue;
    }
    Remove(it, now, 0, out);  // its Forget ends the watch too
  }
  for (const auto& a : again) closing_.insert(a);
}

}  // namespace tcbscope
