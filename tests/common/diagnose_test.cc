// Diagnosis rules on hand-built inputs: each verdict, the order between them,
// and the ambiguous cases, where the verdict must say what it cannot tell
// apart instead of guessing.
#include "common/diagnose.h"

#include <string>

#include "common/compare.h"
#include "gtest/gtest.h"

namespace tcbscope {
namespace {

constexpr uint16_t kPort = 8080;

v1::Connection Listener(const std::string& addr, uint32_t queue = 0, uint32_t backlog = 128, bool v6only = false) {
  v1::Connection c;
  c.set_family(addr.find(':') == std::string::npos ? v1::FAMILY_INET : v1::FAMILY_INET6);
  c.set_state(v1::TCP_STATE_LISTEN);
  c.mutable_local()->set_address(addr);
  c.mutable_local()->set_port(kPort);
  c.set_recv_q(queue);
  c.set_send_q(backlog);
  c.set_v6only(v6only);
  return c;
}

v1::Counters Counters(std::initializer_list<std::pair<std::string, int64_t>> values) {
  v1::Counters c;
  v1::CounterGroup* tcp = c.add_groups();
  tcp->set_name("Tcp");
  v1::CounterGroup* ext = c.add_groups();
  ext->set_name("TcpExt");
  for (const auto& [name, v] : values) {
    const size_t dot = name.find('.');
    ((name.substr(0, dot) == "Tcp") ? tcp : ext)->mutable_values()->insert({name.substr(dot + 1), v});
  }
  return c;
}

v1::ProbeResult Probe(v1::ProbeResult::Outcome o) {
  v1::ProbeResult p;
  p.set_outcome(o);
  p.mutable_local()->set_address("198.51.100.1");
  p.mutable_local()->set_port(40001);
  p.add_states(v1::TCP_STATE_SYN_SENT);
  return p;
}

struct Case {
  DiagnoseInput in;
  v1::Counters b0 = Counters({}), b1 = Counters({});
  v1::ProbeResult probe;
  v1::CorrelateResult before, after;
  Case() {
    in.target = *IpAddress::Parse("198.51.100.2");
    in.port = kPort;
    in.b_before = &b0;
    in.b_after = &b1;
    in.before = &before;
    in.after = &after;
  }
  v1::DiagnoseResult Run() {
    v1::DiagnoseResult r;
    Diagnose(in, &r);
    return r;
  }
  void WithProbe(v1::ProbeResult::Outcome o) {
    probe = Probe(o);
    in.probe = &probe;
  }
};

bool HasEvidence(const v1::DiagnoseResult& r, const std::string& host, const std::string& field) {
  for (const auto& e : r.evidence()) {
    if (e.host() == host && e.field().find(field) != std::string::npos) return true;
  }
  return false;
}

TEST(DiagnoseTest, NoListenerAtAllOrOnlyElsewhere) {
  Case c;
  c.WithProbe(v1::ProbeResult::OUTCOME_REFUSED);
  v1::DiagnoseResult r = c.Run();
  EXPECT_EQ(r.verdict(), kNoListener);
  EXPECT_TRUE(HasEvidence(r, "B", "listeners"));
  EXPECT_TRUE(HasEvidence(r, "A", "probe"));

  Case d;
  d.in.b_listeners = {Listener("127.0.0.1"), Listener("::", 0, 128, /*v6only=*/true)};
  v1::DiagnoseResult s = d.Run();
  EXPECT_EQ(s.verdict(), kNoListener) << "loopback and a v6-only wildcard do not take 198.51.100.2";
  EXPECT_NE(s.summary().find("127.0.0.1:8080"), std::string::npos) << s.summary();
}

TEST(DiagnoseTest, WildcardListenersServe) {
  for (const v1::Connection& l : {Listener("0.0.0.0"), Listener("::"), Listener("198.51.100.2")}) {
    Case c;
    c.in.b_listeners = {l};
    EXPECT_EQ(c.Run().verdict(), kReachable) << l.ShortDebugString();
  }
}

TEST(DiagnoseTest, AcceptQueueFullNeedsAStuckAttemptOrOverflows) {
  Case c;
  c.in.b_listeners = {Listener("0.0.0.0", 2, 1)};
  c.WithProbe(v1::ProbeResult::OUTCOME_TIMED_OUT);
  c.b1 = Counters({{"TcpExt.ListenOverflows", 4}, {"TcpExt.ListenDrops", 4}});
  v1::DiagnoseResult r = c.Run();
  EXPECT_EQ(r.verdict(), kAcceptQueueFull);
  EXPECT_TRUE(HasEvidence(r, "B", "ListenOverflows"));
  EXPECT_TRUE(HasEvidence(r, "A", "probe"));

  // At its backlog for a moment, but the attempt got in and nothing overflowed.
  Case d;
  d.in.b_listeners = {Listener("0.0.0.0", 1, 1)};
  d.WithProbe(v1::ProbeResult::OUTCOME_CONNECTED);
  EXPECT_EQ(d.Run().verdict(), kReachable);
}

TEST(DiagnoseTest, ResetSeenSaysWhoSentIt) {
  Case c;
  c.in.b_listeners = {Listener("0.0.0.0")};
  c.WithProbe(v1::ProbeResult::OUTCOME_REFUSED);
  v1::DiagnoseResult by_firewall = c.Run();
  EXPECT_EQ(by_firewall.verdict(), kResetSeen);
  EXPECT_NE(by_firewall.summary().find("sent no reset"), std::string::npos);

  c.b1 = Counters({{"Tcp.OutRsts", 2}});
  v1::DiagnoseResult by_b = c.Run();
  EXPECT_EQ(by_b.verdict(), kResetSeen);
  EXPECT_NE(by_b.summary().find("B's TCP sent resets"), std::string::npos);
  EXPECT_FALSE(by_b.limits().empty()) << "OutRsts counts resets to anyone";

  // Without B's counters it cannot say, and says so.
  Case d;
  d.in.b_listeners = {Listener("0.0.0.0")};
  d.WithProbe(v1::ProbeResult::OUTCOME_REFUSED);
  d.in.b_before = d.in.b_after = nullptr;
  v1::DiagnoseResult unknown = d.Run();
  EXPECT_EQ(unknown.verdict(), kResetSeen);
  ASSERT_FALSE(unknown.limits().empty());
  EXPECT_NE(unknown.limits(0).find("cannot be told"), std::string::npos);
}

TEST(DiagnoseTest, TimedOutProbeIsForwardOrReturnPath) {
  Case c;
  c.in.b_listeners = {Listener("0.0.0.0")};
  c.WithProbe(v1::ProbeResult::OUTCOME_TIMED_OUT);
  v1::DiagnoseResult forward = c.Run();
  EXPECT_EQ(forward.verdict(), kSynUnanswered);
  EXPECT_TRUE(HasEvidence(forward, "B", "SYN-RECV"));
  EXPECT_FALSE(forward.limits().empty()) << "a path drop and B's own input firewall look the same";

  v1::Connection half;
  half.set_state(v1::TCP_STATE_SYN_RECV);
  half.mutable_local()->set_address("198.51.100.2");
  half.mutable_local()->set_port(kPort);
  half.mutable_remote()->set_address("198.51.100.1");
  half.mutable_remote()->set_port(40001);
  half.mutable_timer()->set_retransmits(2);
  c.in.b_syn_recv = {half};
  v1::DiagnoseResult ret = c.Run();
  EXPECT_EQ(ret.verdict(), kHandshakeIncomplete);
  EXPECT_TRUE(HasEvidence(ret, "B", "state"));
  EXPECT_TRUE(HasEvidence(ret, "B", "timer.retransmits"));

  // Another client's half-open handshake is not this probe's.
  c.in.b_syn_recv[0].mutable_remote()->set_port(40002);
  EXPECT_EQ(c.Run().verdict(), kSynUnanswered);
}

v1::ConnectionPair Pair(uint64_t a_retrans, uint64_t b_received, uint32_t b_rcv_mss) {
  v1::ConnectionPair p;
  v1::Connection* a = p.mutable_a();
  a->set_state(v1::TCP_STATE_ESTABLISHED);
  a->set_cookie(1);
  a->set_send_q(900000);
  a->mutable_tcp_info()->set_total_retrans(static_cast<uint32_t>(a_retrans));
  a->mutable_tcp_info()->set_snd_mss(1448);
  a->mutable_tcp_info()->set_pmtu(1500);
  v1::Connection* b = p.mutable_b();
  b->set_state(v1::TCP_STATE_ESTABLISHED);
  b->set_cookie(2);
  b->mutable_tcp_info()->set_bytes_received(b_received);
  b->mutable_tcp_info()->set_rcv_mss(b_rcv_mss);
  return p;
}

TEST(DiagnoseTest, MtuBlackholeWhenOnlyLargeSegmentsVanish) {
  Case c;
  c.in.b_listeners = {Listener("0.0.0.0")};
  *c.before.add_pairs() = Pair(3, 200, 536);
  *c.after.add_pairs() = Pair(5, 200, 536);
  v1::DiagnoseResult r = c.Run();
  EXPECT_EQ(r.verdict(), kMtuBlackhole);
  EXPECT_TRUE(HasEvidence(r, "A", "snd_mss"));
  EXPECT_TRUE(HasEvidence(r, "B", "bytes_received"));
  EXPECT_FALSE(r.limits().empty()) << "a size filter looks the same";

  // The receiver takes data in: slow, not a black hole.
  Case d;
  d.in.b_listeners = {Listener("0.0.0.0")};
  *d.before.add_pairs() = Pair(3, 200, 536);
  *d.after.add_pairs() = Pair(5, 90000, 536);
  EXPECT_EQ(d.Run().verdict(), kReachable);
  // Full-size segments have arrived before (rcv_mss as large as snd_mss):
  // everything is lost now, not only large segments.
  Case e;
  e.in.b_listeners = {Listener("0.0.0.0")};
  *e.before.add_pairs() = Pair(3, 200, 1448);
  *e.after.add_pairs() = Pair(5, 200, 1448);
  EXPECT_NE(e.Run().verdict(), kMtuBlackhole);
}

TEST(DiagnoseTest, CorrelationFindingsInOrder) {
  auto finding = [](const char* code) {
    v1::Finding f;
    f.set_code(code);
    f.set_meaning(code);
    v1::Evidence* e = f.add_evidence();
    e->set_host("A");
    e = f.add_evidence();
    e->set_host("B");
    return f;
  };
  Case c;
  c.in.b_listeners = {Listener("0.0.0.0")};
  *c.after.add_pairs()->add_findings() = finding(kCloseNotCalled);
  EXPECT_EQ(c.Run().verdict(), kCloseNotCalled);
  *c.after.add_pairs()->add_findings() = finding(kReceiverNotReading);
  EXPECT_EQ(c.Run().verdict(), kReceiverNotReading);
  *c.after.add_only_a()->add_findings() = finding(kHalfOpen);
  v1::DiagnoseResult r = c.Run();
  EXPECT_EQ(r.verdict(), kHalfOpen);
  EXPECT_EQ(r.findings_size(), 3) << "every finding is reported beside the verdict";
}

TEST(DiagnoseTest, ReachableWithoutEvidenceSaysSo) {
  Case c;
  c.in.b_listeners = {Listener("0.0.0.0")};
  v1::DiagnoseResult r = c.Run();
  EXPECT_EQ(r.verdict(), kReachable);
  ASSERT_FALSE(r.limits().empty());
  EXPECT_NE(r.limits(0).find("--probe"), std::string::npos);
}

TEST(DiagnoseTest, CounterDeltaWithMissingReads) {
  const v1::Counters a = Counters({{"Tcp.OutRsts", 5}}), b = Counters({{"Tcp.OutRsts", 9}});
  EXPECT_EQ(CounterDelta(&a, &b, "Tcp", "OutRsts"), 4);
  EXPECT_EQ(CounterDelta(nullptr, &b, "Tcp", "OutRsts"), 0);
  EXPECT_EQ(CounterDelta(&a, &b, "Tcp", "Nonexistent"), 0);
}

}  // namespace
}  // namespace tcbscope
