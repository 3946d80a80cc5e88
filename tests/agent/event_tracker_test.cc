// EventTracker on hand-built kernel records: the lifecycle of a connect, the
// time-wait hand-over, held-back connects, late records, and what is dropped.
#include "agent/event_tracker.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstring>

#include "gtest/gtest.h"

namespace tcbscope {
namespace {

constexpr uint64_t kCookie = 77;

tcb_event Record(uint8_t from, uint8_t to, uint16_t sport = 40000, uint16_t dport = 5000,
                 uint16_t kind = TCB_EVENT_STATE) {
  tcb_event r;
  std::memset(&r, 0, sizeof(r));
  r.kind = kind;
  r.family = AF_INET;
  r.cookie = kCookie;
  r.netns = 1;
  r.oldstate = from;
  r.newstate = to;
  r.sport = sport;
  r.dport = dport;
  inet_pton(AF_INET, "198.51.100.1", r.saddr);
  inet_pton(AF_INET, "198.51.100.2", r.daddr);
  return r;
}

// A fake kernel for the time-wait lookup: whatever `socket` holds.
struct FakeKernel {
  std::optional<v1::Connection> socket;
  int lookups = 0;
  EventTracker::Lookup lookup() {
    return [this](const v1::Connection&) -> absl::StatusOr<std::optional<v1::Connection>> {
      ++lookups;
      return socket;
    };
  }
};

v1::Connection TimeWait(v1::TcpState reported, uint32_t expires_ms) {
  v1::Connection c = ConnectionFromRecord(Record(v1::TCP_STATE_CLOSE, reported));
  c.mutable_timer()->set_kind(v1::Timer::KIND_TIME_WAIT);
  c.mutable_timer()->set_expires_ms(expires_ms);
  return c;  // inode 0, as the kernel reports time-wait sockets
}

using K = HubEvent::Kind;

// A connection whose owner has just closed it: established, then FIN-WAIT-1.
void ConnectThenClose(EventTracker* t, absl::Time now, HubEvents* out) {
  t->Apply(Record(v1::TCP_STATE_SYN_SENT, v1::TCP_STATE_ESTABLISHED), now, out);
  t->Apply(Record(v1::TCP_STATE_ESTABLISHED, v1::TCP_STATE_FIN_WAIT1), now, out);
}

TEST(EventTrackerTest, ConnectIsHeldUntilItsPortIsKnown) {
  FakeKernel kernel;
  EventTracker t(kernel.lookup(), nullptr);
  const absl::Time now = absl::Now();
  HubEvents out;
  t.Apply(Record(v1::TCP_STATE_CLOSE, v1::TCP_STATE_SYN_SENT, 0, 5000), now, &out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(t.pending(), 1u);
  t.Apply(Record(v1::TCP_STATE_SYN_SENT, v1::TCP_STATE_ESTABLISHED), now, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0]->kind, K::kAdded);
  EXPECT_EQ(out[0]->after->state(), v1::TCP_STATE_SYN_SENT);
  EXPECT_EQ(out[0]->after->local().port(), 40000u);
  EXPECT_EQ(out[0]->after->local().address(), "198.51.100.1");
  EXPECT_EQ(out[1]->kind, K::kChanged);
  EXPECT_EQ(out[1]->before->state(), v1::TCP_STATE_SYN_SENT);
  EXPECT_EQ(out[1]->after->state(), v1::TCP_STATE_ESTABLISHED);
  EXPECT_EQ(out[1]->fields, std::vector<std::string>{"state"});
  EXPECT_EQ(t.pending(), 0u);
}

TEST(EventTrackerTest, ActiveCloseBecomesTimeWaitAndIsRemovedWhenItsTimerEnds) {
  FakeKernel kernel;
  EventTracker t(kernel.lookup(), nullptr);
  const absl::Time now = absl::Now();
  HubEvents out;
  ConnectThenClose(&t, now, &out);
  t.Apply(Record(v1::TCP_STATE_FIN_WAIT1, v1::TCP_STATE_FIN_WAIT2), now, &out);
  kernel.socket = TimeWait(v1::TCP_STATE_TIME_WAIT, 60000);
  // The kernel clears the port before CLOSE; the tracker still knows it.
  t.Apply(Record(v1::TCP_STATE_FIN_WAIT2, v1::TCP_STATE_CLOSE, 0, 5000), now, &out);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[3]->kind, K::kChanged);
  EXPECT_EQ(out[3]->before->state(), v1::TCP_STATE_FIN_WAIT2);
  EXPECT_EQ(out[3]->after->state(), v1::TCP_STATE_TIME_WAIT);
  EXPECT_EQ(kernel.lookups, 1);
  out.clear();
  t.ExpireTimeWait(now + absl::Seconds(30), &out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(kernel.lookups, 1) << "not looked at before its timer";
  kernel.socket.reset();
  t.ExpireTimeWait(now + absl::Seconds(61), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->kind, K::kRemoved);
  EXPECT_EQ(out[0]->before->local().port(), 40000u);
  EXPECT_EQ(t.size(), 0u);
}

TEST(EventTrackerTest, OrphanFinWait2IsFollowedUntilTimeWaitAndGone) {
  FakeKernel kernel;
  EventTracker t(kernel.lookup(), nullptr);
  const absl::Time now = absl::Now();
  HubEvents out;
  ConnectThenClose(&t, now, &out);
  t.Apply(Record(v1::TCP_STATE_FIN_WAIT1, v1::TCP_STATE_FIN_WAIT2), now, &out);
  kernel.socket = TimeWait(v1::TCP_STATE_FIN_WAIT2, 59000);
  out.clear();
  t.Apply(Record(v1::TCP_STATE_FIN_WAIT2, v1::TCP_STATE_CLOSE, 0, 5000), now, &out);
  EXPECT_TRUE(out.empty()) << "still FIN-WAIT-2 as far as anyone can see";
  kernel.socket = TimeWait(v1::TCP_STATE_TIME_WAIT, 60000);
  t.ExpireTimeWait(now + absl::Milliseconds(1100), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->kind, K::kChanged);
  EXPECT_EQ(out[0]->after->state(), v1::TCP_STATE_TIME_WAIT);
  kernel.socket.reset();
  out.clear();
  t.ExpireTimeWait(now + absl::Seconds(62), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->kind, K::kRemoved);
}

// The kernel sometimes turns a socket closed in FIN-WAIT-1 into a time-wait
// socket without a record for either step (event_tracker.h).
TEST(EventTrackerTest, AClosingSocketTheKernelStopsReportingIsLookedUp) {
  FakeKernel kernel;
  EventTracker t(kernel.lookup(), nullptr);
  const absl::Time now = absl::Now();
  HubEvents out;
  ConnectThenClose(&t, now, &out);
  out.clear();
  kernel.socket = TimeWait(v1::TCP_STATE_FIN_WAIT2, 59900);
  t.CheckClosing(now + absl::Milliseconds(250), &out);
  EXPECT_EQ(kernel.lookups, 0) << "looked up before the peer's delayed ACK could have come";
  t.CheckClosing(now + absl::Milliseconds(350), &out);
  EXPECT_EQ(kernel.lookups, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->kind, K::kChanged);
  EXPECT_EQ(out[0]->before->state(), v1::TCP_STATE_FIN_WAIT1);
  EXPECT_EQ(out[0]->after->state(), v1::TCP_STATE_FIN_WAIT2);
  EXPECT_EQ(out[0]->before->local().port(), 40000u);
  // From here it is a time-wait socket like any other: followed to the end.
  out.clear();
  kernel.socket = TimeWait(v1::TCP_STATE_TIME_WAIT, 60000);
  t.ExpireTimeWait(now + absl::Milliseconds(1500), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->after->state(), v1::TCP_STATE_TIME_WAIT);
  out.clear();
  kernel.socket.reset();
  t.ExpireTimeWait(now + absl::Seconds(62), &out);
  t.CheckClosing(now + absl::Seconds(62), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->kind, K::kRemoved);
  EXPECT_EQ(t.size(), 0u);
}

TEST(EventTrackerTest, AReportedCloseCostsNoLookup) {
  FakeKernel kernel;
  EventTracker t(kernel.lookup(), nullptr);
  const absl::Time now = absl::Now();
  HubEvents out;
  ConnectThenClose(&t, now, &out);
  t.Apply(Record(v1::TCP_STATE_FIN_WAIT1, v1::TCP_STATE_FIN_WAIT2), now + absl::Milliseconds(40), &out);
  out.clear();
  t.CheckClosing(now + absl::Seconds(5), &out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(kernel.lookups, 0);
}

TEST(EventTrackerTest, AFinWait1ThatLingersIsLookedAtLessAndLessUntilItIsGone) {
  FakeKernel kernel;
  EventTracker t(kernel.lookup(), nullptr);
  const absl::Time now = absl::Now();
  HubEvents out;
  ConnectThenClose(&t, now, &out);
  out.clear();
  // Its FIN unacknowledged: still FIN-WAIT-1, a full socket.
  v1::Connection waiting = ConnectionFromRecord(Record(v1::TCP_STATE_ESTABLISHED, v1::TCP_STATE_FIN_WAIT1));
  waiting.set_inode(1234);
  kernel.socket = waiting;
  t.CheckClosing(now + absl::Milliseconds(300), &out);  // 0.3 s
  t.CheckClosing(now + absl::Milliseconds(800), &out);
  EXPECT_EQ(kernel.lookups, 1) << "the second look waits twice as long";
  t.CheckClosing(now + absl::Milliseconds(900), &out);  // 0.3 + 0.6 s
  t.CheckClosing(now + absl::Milliseconds(2000), &out);
  EXPECT_EQ(kernel.lookups, 2);
  t.CheckClosing(now + absl::Milliseconds(2100), &out);  // + 1.2 s
  EXPECT_EQ(kernel.lookups, 3);
  EXPECT_TRUE(out.empty()) << "nothing changed";
  kernel.socket.reset();  // the kernel gave up on the peer
  t.CheckClosing(now + absl::Milliseconds(4500), &out);  // + 2.4 s
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->kind, K::kRemoved);
  EXPECT_EQ(out[0]->before->state(), v1::TCP_STATE_FIN_WAIT1);
  EXPECT_EQ(t.size(), 0u);
  t.CheckClosing(now + absl::Minutes(5), &out);
  EXPECT_EQ(kernel.lookups, 4) << "not looked at once gone";
}

TEST(EventTrackerTest, PassiveCloseIsRemovedWithoutALookup) {
  FakeKernel kernel;
  EventTracker t(kernel.lookup(), nullptr);
  HubEvents out;
  const absl::Time now = absl::Now();
  t.Apply(Record(v1::TCP_STATE_LISTEN, v1::TCP_STATE_SYN_RECV), now, &out);
  EXPECT_TRUE(out.empty()) << "a child's addresses are set after it enters SYN-RECV";
  t.Apply(Record(v1::TCP_STATE_SYN_RECV, v1::TCP_STATE_ESTABLISHED), now, &out);
  t.Apply(Record(v1::TCP_STATE_ESTABLISHED, v1::TCP_STATE_CLOSE_WAIT), now, &out);
  t.Apply(Record(v1::TCP_STATE_CLOSE_WAIT, v1::TCP_STATE_LAST_ACK), now, &out);
  t.Apply(Record(v1::TCP_STATE_LAST_ACK, v1::TCP_STATE_CLOSE, 0, 0), now, &out);
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[0]->kind, K::kAdded);
  EXPECT_EQ(out[0]->after->state(), v1::TCP_STATE_SYN_RECV);
  EXPECT_EQ(out[4]->kind, K::kRemoved);
  EXPECT_EQ(out[4]->before->state(), v1::TCP_STATE_LAST_ACK);
  EXPECT_EQ(out[4]->before->remote().port(), 5000u);
  EXPECT_EQ(kernel.lookups, 0);
}

TEST(EventTrackerTest, UnansweredConnectIsResolvedFromADumpOrGivenUp) {
  EventTracker t(nullptr, nullptr);
  const absl::Time now = absl::Now();
  HubEvents out;
  t.Apply(Record(v1::TCP_STATE_CLOSE, v1::TCP_STATE_SYN_SENT, 0, 5000), now, &out);
  tcb_event other = Record(v1::TCP_STATE_CLOSE, v1::TCP_STATE_SYN_SENT, 0, 5000);
  other.cookie = kCookie + 1;
  t.Apply(other, now, &out);
  ASSERT_TRUE(t.OldestPending().has_value());
  Snapshot dump;
  v1::Connection* c = dump.Add();
  *c = ConnectionFromRecord(Record(v1::TCP_STATE_CLOSE, v1::TCP_STATE_SYN_SENT, 41000, 5000));
  c->set_inode(1234);
  t.ResolvePending(dump, now + absl::Milliseconds(30), now - absl::Seconds(1), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->kind, K::kAdded);
  EXPECT_EQ(out[0]->after->local().port(), 41000u);
  EXPECT_EQ(out[0]->after->inode(), 1234u);
  EXPECT_EQ(t.pending(), 1u) << "the other one is younger than the give-up time";
  t.ResolvePending(Snapshot(), now + absl::Seconds(2), now + absl::Seconds(1), &out);
  EXPECT_EQ(t.pending(), 0u);
  EXPECT_EQ(out.size(), 1u);
}

TEST(EventTrackerTest, ConnectRefusedIsAddedAndRemovedAroundItsReset) {
  EventTracker t(nullptr, nullptr);
  const absl::Time now = absl::Now();
  HubEvents out;
  t.Apply(Record(v1::TCP_STATE_CLOSE, v1::TCP_STATE_SYN_SENT, 0, 9), now, &out);
  t.Apply(Record(0, v1::TCP_STATE_SYN_SENT, 41000, 9, TCB_EVENT_RESET_RECV), now, &out);
  t.Apply(Record(v1::TCP_STATE_SYN_SENT, v1::TCP_STATE_CLOSE, 0, 9), now, &out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0]->kind, K::kAdded);
  EXPECT_EQ(out[1]->kind, K::kSegment);
  EXPECT_EQ(out[1]->segment, v1::SegmentEvent::RESET_RECEIVED);
  EXPECT_EQ(out[1]->after->local().port(), 41000u);
  EXPECT_EQ(out[2]->kind, K::kRemoved);
  EXPECT_EQ(out[2]->before->local().port(), 41000u);
}

TEST(EventTrackerTest, ResetAfterCloseKeepsTheEndpoints) {
  EventTracker t(nullptr, [](uint32_t v) { return v == 5 ? std::string("TCP_STATE") : std::string(); });
  const absl::Time now = absl::Now();
  HubEvents out;
  t.Apply(Record(v1::TCP_STATE_SYN_SENT, v1::TCP_STATE_ESTABLISHED), now, &out);
  t.Apply(Record(v1::TCP_STATE_ESTABLISHED, v1::TCP_STATE_CLOSE, 0, 0), now, &out);
  tcb_event rst = Record(0, v1::TCP_STATE_CLOSE, 0, 0, TCB_EVENT_RESET_SENT);
  rst.reason = 5;
  t.Apply(rst, now, &out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[2]->segment, v1::SegmentEvent::RESET_SENT);
  EXPECT_EQ(out[2]->after->local().port(), 40000u);
  EXPECT_EQ(out[2]->reason, "TCP_STATE");
}

TEST(EventTrackerTest, ResetForNoSocketAndUnknownClosesAreHandled) {
  EventTracker t(nullptr, nullptr);
  const absl::Time now = absl::Now();
  HubEvents out;
  tcb_event rst = Record(0, v1::TCP_STATE_CLOSE, 9, 41000, TCB_EVENT_RESET_SENT);
  rst.cookie = 0;
  t.Apply(rst, now, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->after->local().port(), 9u);
  EXPECT_EQ(out[0]->after->state(), v1::TCP_STATE_CLOSE);
  out.clear();
  // Closing, never seen, endpoints already cleared: nothing to say.
  t.Apply(Record(v1::TCP_STATE_ESTABLISHED, v1::TCP_STATE_CLOSE, 0, 0), now, &out);
  EXPECT_TRUE(out.empty());
  // Closing, never seen, endpoints known: removed.
  t.Apply(Record(v1::TCP_STATE_CLOSE_WAIT, v1::TCP_STATE_CLOSE), now, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->kind, K::kRemoved);
}

TEST(EventTrackerTest, SeededSocketsAreKnownAndTimeWaitOnesExpire) {
  FakeKernel kernel;
  EventTracker t(kernel.lookup(), nullptr);
  const absl::Time now = absl::Now();
  Snapshot snap;
  *snap.Add() = ConnectionFromRecord(Record(v1::TCP_STATE_CLOSE, v1::TCP_STATE_ESTABLISHED));
  v1::Connection tw = TimeWait(v1::TCP_STATE_TIME_WAIT, 5000);
  tw.set_cookie(kCookie + 5);
  tw.mutable_local()->set_port(40005);
  *snap.Add() = tw;
  t.Seed(snap, now);
  EXPECT_EQ(t.size(), 2u);
  HubEvents out;
  t.Apply(Record(v1::TCP_STATE_ESTABLISHED, v1::TCP_STATE_CLOSE, 0, 0), now, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->kind, K::kRemoved);
  EXPECT_EQ(out[0]->before->local().port(), 40000u);
  out.clear();
  t.ExpireTimeWait(now + absl::Seconds(6), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->before->local().port(), 40005u);
  EXPECT_EQ(t.size(), 0u);
}

// The kernel skipped FIN_WAIT1 -> FIN_WAIT2 -> CLOSE (an interrupt's
// transition while the program ran on that CPU): the reconciling dump shows
// the orphan's time-wait socket, and from there it is followed as usual.
TEST(EventTrackerTest, ReconcileReportsWhatTheKernelSkippedAndFollowsOn) {
  FakeKernel kernel;
  EventTracker t(kernel.lookup(), nullptr);
  const absl::Time now = absl::Now();
  HubEvents out;
  ConnectThenClose(&t, now, &out);
  out.clear();
  Snapshot dump;
  *dump.Add() = TimeWait(v1::TCP_STATE_FIN_WAIT2, 59000);
  t.Reconcile(dump, {1000, 1200}, now, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->kind, K::kChanged);
  EXPECT_TRUE(out[0]->found_by_dump);
  EXPECT_EQ(out[0]->monotonic_ns, 1000u);
  EXPECT_EQ(out[0]->before->state(), v1::TCP_STATE_FIN_WAIT1);
  EXPECT_EQ(out[0]->after->state(), v1::TCP_STATE_FIN_WAIT2);
  EXPECT_EQ(out[0]->fields, std::vector<std::string>{"state"});
  // The same dump again: nothing new.
  out.clear();
  t.Reconcile(dump, {1300, 1400}, now, &out);
  EXPECT_TRUE(out.empty());
  // The peer's FIN turns it into TIME_WAIT (no record): found by looking.
  kernel.socket = TimeWait(v1::TCP_STATE_TIME_WAIT, 60000);
  t.ExpireTimeWait(now + absl::Milliseconds(1100), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->kind, K::kChanged);
  EXPECT_FALSE(out[0]->found_by_dump);
  EXPECT_EQ(out[0]->after->state(), v1::TCP_STATE_TIME_WAIT);
}

TEST(EventTrackerTest, ReconcileAddsRemovesAndDropsRecordsTheDumpAlreadyShows) {
  FakeKernel kernel;
  EventTracker t(kernel.lookup(), nullptr);
  const absl::Time now = absl::Now();
  HubEvents out;
  auto with_cookie = [](tcb_event r, uint64_t cookie) {
    r.cookie = cookie;
    return r;
  };
  // Known: kCookie, kCookie+1 and kCookie+4 established. Held back: a
  // connect without its port, kCookie+2.
  t.Apply(Record(v1::TCP_STATE_SYN_SENT, v1::TCP_STATE_ESTABLISHED), now, &out);
  t.Apply(with_cookie(Record(v1::TCP_STATE_SYN_SENT, v1::TCP_STATE_ESTABLISHED, 40001), kCookie + 1), now, &out);
  t.Apply(with_cookie(Record(v1::TCP_STATE_SYN_SENT, v1::TCP_STATE_ESTABLISHED, 40004), kCookie + 4), now, &out);
  t.Apply(with_cookie(Record(v1::TCP_STATE_CLOSE, v1::TCP_STATE_SYN_SENT, 0, 5000), kCookie + 2), now, &out);
  ASSERT_EQ(t.pending(), 1u);
  out.clear();
  // The dump: kCookie unchanged; kCookie+1 and kCookie+4 absent (the kernel,
  // asked, still has kCookie+4: the dump missed it); kCookie+2 established
  // with its port; kCookie+3 new; a request socket, which is not tracked.
  Snapshot dump;
  *dump.Add() = ConnectionFromRecord(Record(v1::TCP_STATE_SYN_SENT, v1::TCP_STATE_ESTABLISHED));
  *dump.Add() = ConnectionFromRecord(with_cookie(Record(v1::TCP_STATE_SYN_SENT, v1::TCP_STATE_ESTABLISHED, 40002), kCookie + 2));
  dump.Mutable(1)->mutable_tcp_info()->set_rtt_us(30);  // not kept: no record would refresh it
  *dump.Add() = ConnectionFromRecord(with_cookie(Record(v1::TCP_STATE_LISTEN, v1::TCP_STATE_SYN_RECV, 5000, 40003), kCookie + 3));
  *dump.Add() = ConnectionFromRecord(with_cookie(Record(v1::TCP_STATE_LISTEN, v1::TCP_STATE_NEW_SYN_RECV, 5000, 40005), kCookie + 5));
  kernel.socket = ConnectionFromRecord(with_cookie(Record(v1::TCP_STATE_SYN_SENT, v1::TCP_STATE_ESTABLISHED, 40004), kCookie + 4));
  const DumpSpan span{5000, 6000};
  t.Reconcile(dump, span, now, &out);
  ASSERT_EQ(out.size(), 3u);
  for (const auto& e : out) EXPECT_TRUE(e->found_by_dump);
  for (const auto& e : out) EXPECT_EQ(e->monotonic_ns, span.start_ns);
  EXPECT_EQ(out[0]->kind, K::kAdded);
  EXPECT_EQ(out[0]->after->cookie(), kCookie + 2);
  EXPECT_EQ(out[0]->after->local().port(), 40002u);
  EXPECT_FALSE(out[0]->after->has_tcp_info());
  EXPECT_EQ(out[1]->kind, K::kAdded);
  EXPECT_EQ(out[1]->after->cookie(), kCookie + 3);
  EXPECT_EQ(out[2]->kind, K::kRemoved);
  EXPECT_EQ(out[2]->before->cookie(), kCookie + 1);
  EXPECT_EQ(t.pending(), 0u);
  EXPECT_EQ(t.size(), 4u);  // kCookie, +2, +3, +4
  out.clear();
  // Stamped while the dump ran and already in it (kCookie+2 is known
  // established): dropped. The removed socket's late CLOSE: not a second
  // removal.
  tcb_event during = with_cookie(Record(v1::TCP_STATE_SYN_SENT, v1::TCP_STATE_ESTABLISHED, 40002), kCookie + 2);
  during.ktime_ns = 5500;
  t.Apply(during, now, &out);
  tcb_event late_close = with_cookie(Record(v1::TCP_STATE_ESTABLISHED, v1::TCP_STATE_CLOSE, 40001), kCookie + 1);
  late_close.ktime_ns = 6001;
  t.Apply(late_close, now, &out);
  EXPECT_TRUE(out.empty());
  // Stamped before the dump began but not in it (the dump read the socket
  // before the kernel stored the new state): it starts from the state the
  // tracker holds, so it is applied.
  tcb_event before = Record(v1::TCP_STATE_ESTABLISHED, v1::TCP_STATE_FIN_WAIT1);
  before.ktime_ns = 4999;
  t.Apply(before, now, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->kind, K::kChanged);
  EXPECT_FALSE(out[0]->found_by_dump);
  EXPECT_EQ(out[0]->after->state(), v1::TCP_STATE_FIN_WAIT1);
}

}  // namespace
}  // namespace tcbscope
