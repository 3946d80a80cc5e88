// Correlation and comparison on hand-built snapshots: every finding code, a
// healthy pair with no finding, v4-mapped pairing, skew handling.
#include "common/compare.h"
#include "common/correlate.h"

#include <string>

#include "gtest/gtest.h"

namespace tcbscope {
namespace {

constexpr char kA[] = "198.51.100.1";
constexpr char kB[] = "198.51.100.2";

v1::Connection Conn(v1::TcpState st, const std::string& la, int lp, const std::string& ra, int rp) {
  v1::Connection c;
  c.set_family(la.find(':') == std::string::npos ? v1::FAMILY_INET : v1::FAMILY_INET6);
  c.set_state(st);
  c.mutable_local()->set_address(la);
  c.mutable_local()->set_port(lp);
  c.mutable_remote()->set_address(ra);
  c.mutable_remote()->set_port(rp);
  return c;
}

// A healthy, idle established pair A:40000 → B:80 with `ab` bytes A→B and
// `ba` bytes B→A, all acknowledged and read.
std::pair<v1::Connection, v1::Connection> HealthyPair(uint64_t ab, uint64_t ba) {
  v1::Connection a = Conn(v1::TCP_STATE_ESTABLISHED, kA, 40000, kB, 80);
  v1::Connection b = Conn(v1::TCP_STATE_ESTABLISHED, kB, 80, kA, 40000);
  for (v1::TcpInfo* t : {a.mutable_tcp_info(), b.mutable_tcp_info()}) {
    t->set_opt_wscale(true);
    t->set_opt_sack(true);
    t->set_opt_timestamps(true);
    t->set_snd_wscale(7);
    t->set_rcv_wscale(7);
    t->set_snd_mss(1448);
    t->set_advmss(1460);
    t->set_snd_wnd(65536);
    t->set_rcv_wnd(65536);
    t->set_last_data_sent_ms(5000);
    t->set_last_data_recv_ms(5000);
    t->set_last_ack_recv_ms(5000);
  }
  a.mutable_tcp_info()->set_bytes_sent(ab);
  a.mutable_tcp_info()->set_bytes_acked(ab + 1);
  a.mutable_tcp_info()->set_bytes_received(ba);
  b.mutable_tcp_info()->set_bytes_sent(ba);
  b.mutable_tcp_info()->set_bytes_acked(ba + 1);
  b.mutable_tcp_info()->set_bytes_received(ab);
  return {a, b};
}

v1::HostInfo Info(const std::string& addr, const std::string& boot) {
  v1::HostInfo h;
  h.set_hostname(addr);
  h.set_boot_id(boot);
  h.add_addresses()->set_address(addr);
  h.add_addresses()->set_address("127.0.0.1");
  return h;
}

struct Fixture {
  v1::HostInfo ia = Info(kA, "boot-a"), ib = Info(kB, "boot-b");
  google::protobuf::RepeatedPtrField<v1::Connection> ca, cb;
  absl::Time ta = absl::FromUnixSeconds(1000), tb = absl::FromUnixSeconds(1000);

  v1::CorrelateResult Run() {
    v1::CorrelateResult r;
    Correlate(HostSnapshot{"a", &ia, &ca, ta}, HostSnapshot{"b", &ib, &cb, tb}, &r);
    CompareContext ctx;
    ctx.skew_ms = r.skew_ms();
    CompareAll(ctx, &r);
    return r;
  }
};

std::vector<std::string> Codes(const google::protobuf::RepeatedPtrField<v1::Finding>& fs) {
  std::vector<std::string> out;
  for (const auto& f : fs) out.push_back(f.code());
  return out;
}

bool HasEvidence(const v1::Finding& f, const std::string& host, const std::string& field) {
  for (const auto& e : f.evidence()) {
    if (e.host() == host && e.field() == field) return true;
  }
  return false;
}

TEST(CorrelateTest, HealthyPairHasNoFinding) {
  Fixture f;
  auto [a, b] = HealthyPair(1'000'000, 5'000);
  *f.ca.Add() = a;
  *f.cb.Add() = b;
  v1::CorrelateResult r = f.Run();
  ASSERT_EQ(r.pairs_size(), 1);
  EXPECT_EQ(r.pairs(0).matched_by(), "addresses");
  EXPECT_TRUE(r.pairs(0).findings().empty()) << r.pairs(0).ShortDebugString();
  EXPECT_EQ(r.only_a_size() + r.only_b_size(), 0);
  EXPECT_EQ(r.findings_error() + r.findings_warning(), 0u);
  ASSERT_EQ(r.pairs(0).directions_size(), 2);
  EXPECT_EQ(r.pairs(0).directions(0).direction(), "A->B");
  EXPECT_EQ(r.pairs(0).directions(0).sender_bytes_acked(), 1'000'000u);
  EXPECT_EQ(r.pairs(0).directions(0).receiver_bytes_received(), 1'000'000u);
  EXPECT_EQ(r.pairs(0).directions(0).data_in_flight_bytes(), 0);
  EXPECT_EQ(r.pairs(0).directions(1).sender_bytes_acked(), 5'000u);
}

TEST(CorrelateTest, V4MappedPairsWithV4) {
  Fixture f;
  *f.ca.Add() = Conn(v1::TCP_STATE_ESTABLISHED, "::ffff:198.51.100.1", 40000, "::ffff:198.51.100.2", 80);
  *f.cb.Add() = Conn(v1::TCP_STATE_ESTABLISHED, kB, 80, kA, 40000);
  v1::CorrelateResult r = f.Run();
  EXPECT_EQ(r.pairs_size(), 1);
  EXPECT_EQ(r.only_a_size(), 0);
}

TEST(CorrelateTest, UnrelatedAndLoopbackConnectionsAreNotUnpaired) {
  Fixture f;
  *f.ca.Add() = Conn(v1::TCP_STATE_ESTABLISHED, kA, 40000, "198.51.100.77", 80);  // a third host
  *f.ca.Add() = Conn(v1::TCP_STATE_ESTABLISHED, "127.0.0.1", 5000, "127.0.0.1", 6000);  // A's own loopback
  *f.ca.Add() = Conn(v1::TCP_STATE_LISTEN, kA, 22, "0.0.0.0", 0);
  *f.ca.Add() = Conn(v1::TCP_STATE_TIME_WAIT, kA, 40001, kB, 80);  // TCP working as designed
  v1::CorrelateResult r = f.Run();
  EXPECT_EQ(r.pairs_size(), 0);
  EXPECT_EQ(r.only_a_size(), 0) << r.ShortDebugString();
}

TEST(CorrelateTest, SkewIsBMinusA) {
  Fixture f;
  f.tb = f.ta + absl::Milliseconds(37);
  EXPECT_EQ(f.Run().skew_ms(), 37);
}

TEST(CompareTest, HalfOpen) {
  Fixture f;
  v1::Connection a = Conn(v1::TCP_STATE_ESTABLISHED, kA, 40000, kB, 80);
  a.set_send_q(100);
  *f.ca.Add() = a;
  v1::CorrelateResult r = f.Run();
  ASSERT_EQ(r.only_a_size(), 1);
  ASSERT_EQ(Codes(r.only_a(0).findings()), std::vector<std::string>{kHalfOpen});
  const v1::Finding& fd = r.only_a(0).findings(0);
  EXPECT_EQ(fd.severity(), v1::SEVERITY_ERROR);
  EXPECT_TRUE(HasEvidence(fd, "A", "state"));
  EXPECT_TRUE(HasEvidence(fd, "B", "tcb"));
  EXPECT_EQ(r.findings_error(), 1u);
}

TEST(CompareTest, HalfOpenSeenFromB) {
  Fixture f;
  *f.cb.Add() = Conn(v1::TCP_STATE_ESTABLISHED, kB, 80, kA, 40000);
  v1::CorrelateResult r = f.Run();
  ASSERT_EQ(r.only_b_size(), 1);
  EXPECT_EQ(Codes(r.only_b(0).findings()), std::vector<std::string>{kHalfOpen});
  EXPECT_TRUE(HasEvidence(r.only_b(0).findings(0), "A", "tcb"));
}

TEST(CompareTest, SynUnanswered) {
  Fixture f;
  v1::Connection a = Conn(v1::TCP_STATE_SYN_SENT, kA, 40000, kB, 80);
  a.mutable_timer()->set_kind(v1::Timer::KIND_RETRANSMIT);
  a.mutable_timer()->set_retransmits(3);
  *f.ca.Add() = a;
  v1::CorrelateResult r = f.Run();
  ASSERT_EQ(r.only_a_size(), 1);
  EXPECT_EQ(Codes(r.only_a(0).findings()), std::vector<std::string>{kSynUnanswered});
  EXPECT_TRUE(HasEvidence(r.only_a(0).findings(0), "A", "timer.retransmits"));
  EXPECT_TRUE(HasEvidence(r.only_a(0).findings(0), "B", "tcb"));
}

TEST(CompareTest, HandshakeIncomplete) {
  Fixture f;
  *f.ca.Add() = Conn(v1::TCP_STATE_SYN_SENT, kA, 40000, kB, 80);
  *f.cb.Add() = Conn(v1::TCP_STATE_SYN_RECV, kB, 80, kA, 40000);
  v1::CorrelateResult r = f.Run();
  ASSERT_EQ(r.pairs_size(), 1);
  EXPECT_EQ(Codes(r.pairs(0).findings()), std::vector<std::string>{kHandshakeIncomplete});
  EXPECT_TRUE(HasEvidence(r.pairs(0).findings(0), "A", "state"));
  EXPECT_TRUE(HasEvidence(r.pairs(0).findings(0), "B", "state"));
}

TEST(CompareTest, CloseNotCalled) {
  Fixture f;
  auto [a, b] = HealthyPair(10, 10);
  a.set_state(v1::TCP_STATE_FIN_WAIT2);
  a.mutable_tcp_info()->set_bytes_acked(10 + 2);  // SYN and FIN
  b.set_state(v1::TCP_STATE_CLOSE_WAIT);
  b.mutable_tcp_info()->set_bytes_received(10 + 1);  // FIN
  *f.ca.Add() = a;
  *f.cb.Add() = b;
  v1::CorrelateResult r = f.Run();
  ASSERT_EQ(r.pairs_size(), 1);
  EXPECT_EQ(Codes(r.pairs(0).findings()), std::vector<std::string>{kCloseNotCalled});
  EXPECT_TRUE(HasEvidence(r.pairs(0).findings(0), "B", "state"));
  EXPECT_EQ(r.pairs(0).findings(0).severity(), v1::SEVERITY_WARNING);
}

TEST(CompareTest, ReceiverNotReadingAndZeroWindow) {
  Fixture f;
  auto [a, b] = HealthyPair(3'000'000, 0);
  a.set_send_q(1'000'000);
  a.mutable_tcp_info()->set_bytes_acked(2'000'001);
  a.mutable_tcp_info()->set_snd_wnd(0);
  a.mutable_timer()->set_kind(v1::Timer::KIND_ZERO_WINDOW_PROBE);
  b.set_recv_q(2'000'000);
  b.mutable_tcp_info()->set_bytes_received(2'000'000);
  b.mutable_tcp_info()->set_rcv_wnd(0);
  *f.ca.Add() = a;
  *f.cb.Add() = b;
  v1::CorrelateResult r = f.Run();
  ASSERT_EQ(r.pairs_size(), 1);
  EXPECT_EQ(Codes(r.pairs(0).findings()), (std::vector<std::string>{kReceiverNotReading, kZeroWindow}));
  const v1::Finding& rnr = r.pairs(0).findings(0);
  EXPECT_EQ(rnr.severity(), v1::SEVERITY_ERROR);
  EXPECT_TRUE(HasEvidence(rnr, "B", "recv_q"));
  EXPECT_TRUE(HasEvidence(rnr, "A", "send_q"));
  EXPECT_TRUE(HasEvidence(r.pairs(0).findings(1), "A", "tcp_info.snd_wnd"));
}

TEST(CompareTest, AnOlderKernelsMissingWindowIsNotAZeroWindow) {
  Fixture f;
  auto [a, b] = HealthyPair(3000, 0);
  for (v1::Connection* c : {&a, &b}) {
    c->mutable_tcp_info()->set_snd_wnd(0);  // Linux < 6.2 does not report it
    c->mutable_tcp_info()->set_rcv_wnd(0);
    c->mutable_tcp_info()->add_absent("snd_wnd");
    c->mutable_tcp_info()->add_absent("rcv_wnd");
  }
  *f.ca.Add() = a;
  *f.cb.Add() = b;
  EXPECT_TRUE(f.Run().pairs(0).findings().empty());
}

TEST(CompareTest, QueuedDataWithOpenWindowIsOnlyAWarning) {
  Fixture f;
  auto [a, b] = HealthyPair(3000, 0);
  a.set_send_q(1000);
  b.set_recv_q(2000);
  *f.ca.Add() = a;
  *f.cb.Add() = b;
  v1::CorrelateResult r = f.Run();
  ASSERT_EQ(Codes(r.pairs(0).findings()), std::vector<std::string>{kReceiverNotReading});
  EXPECT_EQ(r.pairs(0).findings(0).severity(), v1::SEVERITY_WARNING);
}

TEST(CompareTest, SeqDesyncOnByteCounters) {
  Fixture f;
  auto [a, b] = HealthyPair(10'000, 0);
  b.mutable_tcp_info()->set_bytes_received(4'000);  // B has less than A saw acked
  *f.ca.Add() = a;
  *f.cb.Add() = b;
  v1::CorrelateResult r = f.Run();
  ASSERT_EQ(Codes(r.pairs(0).findings()), std::vector<std::string>{kSeqDesync});
  EXPECT_TRUE(HasEvidence(r.pairs(0).findings(0), "A", "tcp_info.bytes_acked"));
  EXPECT_TRUE(HasEvidence(r.pairs(0).findings(0), "B", "tcp_info.bytes_received"));

  // B claims more than A ever sent.
  Fixture g;
  auto [a2, b2] = HealthyPair(10'000, 0);
  b2.mutable_tcp_info()->set_bytes_received(20'000);
  *g.ca.Add() = a2;
  *g.cb.Add() = b2;
  EXPECT_EQ(Codes(g.Run().pairs(0).findings()), std::vector<std::string>{kSeqDesync});
}

TEST(CompareTest, SkewExcusesAMovingByteCount) {
  // The same disagreement on a busy direction, captured 300 ms apart: the
  // counts are not final, so no SEQ_DESYNC.
  Fixture f;
  f.tb = f.ta + absl::Milliseconds(300);
  auto [a, b] = HealthyPair(10'000, 0);
  b.mutable_tcp_info()->set_bytes_received(4'000);
  a.mutable_tcp_info()->set_last_data_sent_ms(10);
  b.mutable_tcp_info()->set_last_data_recv_ms(10);
  *f.ca.Add() = a;
  *f.cb.Add() = b;
  v1::CorrelateResult r = f.Run();
  EXPECT_TRUE(r.pairs(0).findings().empty()) << r.ShortDebugString();
  // Quiet for less than the skew plus margin: still not final.
  a.mutable_tcp_info()->set_last_data_sent_ms(400);
  b.mutable_tcp_info()->set_last_data_recv_ms(400);
  f.ca.Clear();  // Run consumed the pair
  f.cb.Clear();
  *f.ca.Add() = a;
  *f.cb.Add() = b;
  EXPECT_TRUE(f.Run().pairs(0).findings().empty());
}

TEST(CompareTest, WscaleMismatch) {
  Fixture f;
  auto [a, b] = HealthyPair(10, 10);
  b.mutable_tcp_info()->set_rcv_wscale(2);  // A thinks B scales by 7
  *f.ca.Add() = a;
  *f.cb.Add() = b;
  v1::CorrelateResult r = f.Run();
  EXPECT_EQ(Codes(r.pairs(0).findings()), std::vector<std::string>{kWscaleMismatch});
}

TEST(CompareTest, OptionMismatch) {
  Fixture f;
  auto [a, b] = HealthyPair(10, 10);
  b.mutable_tcp_info()->set_opt_sack(false);
  *f.ca.Add() = a;
  *f.cb.Add() = b;
  EXPECT_EQ(Codes(f.Run().pairs(0).findings()), std::vector<std::string>{kOptionMismatch});

  Fixture g;
  auto [a2, b2] = HealthyPair(10, 10);
  a2.mutable_tcp_info()->set_snd_mss(1460);
  b2.mutable_tcp_info()->set_advmss(1200);  // A sends more than B allowed
  *g.ca.Add() = a2;
  *g.cb.Add() = b2;
  v1::CorrelateResult r = g.Run();
  ASSERT_EQ(Codes(r.pairs(0).findings()), std::vector<std::string>{kOptionMismatch});
  EXPECT_TRUE(HasEvidence(r.pairs(0).findings(0), "B", "tcp_info.advmss"));
}

TEST(CompareTest, DirectionsAreLeftOutWhenNotAskedForButFindingsAreNot) {
  for (bool directions : {true, false}) {
    Fixture f;
    auto [a, b] = HealthyPair(10, 10);
    b.mutable_tcp_info()->set_rcv_wscale(2);
    *f.ca.Add() = a;
    *f.cb.Add() = b;
    v1::CorrelateResult r;
    Correlate(HostSnapshot{"a", &f.ia, &f.ca, f.ta}, HostSnapshot{"b", &f.ib, &f.cb, f.tb}, &r);
    CompareContext ctx;
    ctx.directions = directions;
    CompareAll(ctx, &r);
    ASSERT_EQ(r.pairs_size(), 1);
    EXPECT_EQ(r.pairs(0).directions_size(), directions ? 2 : 0);
    EXPECT_EQ(Codes(r.pairs(0).findings()), std::vector<std::string>{kWscaleMismatch});
  }
}

TEST(CorrelateTest, OneHostPairsEachLoopbackConnectionOnceClientFirst) {
  Fixture f;
  f.ib = f.ia;  // same boot id: the same host twice
  *f.ca.Add() = Conn(v1::TCP_STATE_LISTEN, "127.0.0.1", 8080, "0.0.0.0", 0);
  *f.ca.Add() = Conn(v1::TCP_STATE_ESTABLISHED, "127.0.0.1", 8080, "127.0.0.1", 9000);  // server end
  *f.ca.Add() = Conn(v1::TCP_STATE_ESTABLISHED, "127.0.0.1", 9000, "127.0.0.1", 8080);  // client end
  *f.ca.Add() = Conn(v1::TCP_STATE_SYN_SENT, "127.0.0.1", 9001, "127.0.0.1", 8081);    // alone
  f.cb = f.ca;
  v1::CorrelateResult r = f.Run();
  ASSERT_EQ(r.pairs_size(), 1);
  EXPECT_EQ(r.pairs(0).a().local().port(), 9000u);
  EXPECT_EQ(r.pairs(0).b().local().port(), 8080u);
  ASSERT_EQ(r.only_a_size(), 1);
  EXPECT_EQ(r.only_a(0).connection().local().port(), 9001u);
  EXPECT_EQ(r.only_b_size(), 0);
}

// One list given for both sides (the same agent asked once) is one host,
// whatever the infos say (here none, as from an agent whose boot id could not
// be read): each connection pairs once, and no socket with itself, by address
// or by sequence numbers (a self-connected socket's ISS is its IRS).
TEST(CorrelateTest, OneListGivenTwiceIsOneHostWhateverItsInfo) {
  TcbList list;
  list.Add(TcbOf(Conn(v1::TCP_STATE_ESTABLISHED, "127.0.0.1", 8080, "127.0.0.1", 9000)));
  list.Add(TcbOf(Conn(v1::TCP_STATE_ESTABLISHED, "127.0.0.1", 9000, "127.0.0.1", 8080)));
  v1::Connection self = Conn(v1::TCP_STATE_ESTABLISHED, "127.0.0.1", 7000, "127.0.0.1", 7000);
  self.mutable_seq()->set_snd_una(101);
  self.mutable_seq()->set_bytes_acked(1);
  self.mutable_seq()->set_rcv_nxt(101);  // irs 100 = iss: its own peer in sequence space
  list.Add(TcbOf(self));
  const Matching m = Match(TcbSnapshot{nullptr, &list}, TcbSnapshot{nullptr, &list});
  EXPECT_TRUE(m.one_list);
  ASSERT_EQ(m.pairs.size(), 1u);
  EXPECT_EQ(list[static_cast<size_t>(m.pairs[0].a)].local.port, 9000) << "the client end first";
  EXPECT_EQ(list[static_cast<size_t>(m.pairs[0].b)].local.port, 8080);
}

// Two agents on one host (same boot id and namespace) give two snapshots of
// the same sockets, taken at different moments: A's alone is read, whatever
// B's holds, and B's is left as it was.
TEST(CorrelateTest, OneHostSeenThroughTwoAgentsReadsOnlyAsSnapshot) {
  Fixture f;
  f.ib = f.ia;
  *f.ca.Add() = Conn(v1::TCP_STATE_ESTABLISHED, "127.0.0.1", 8080, "127.0.0.1", 9000);
  *f.ca.Add() = Conn(v1::TCP_STATE_ESTABLISHED, "127.0.0.1", 9000, "127.0.0.1", 8080);
  for (int port = 10000; port < 10010; ++port) {  // B's is longer and different
    *f.cb.Add() = Conn(v1::TCP_STATE_ESTABLISHED, "127.0.0.1", port, "127.0.0.1", port + 100);
    *f.cb.Add() = Conn(v1::TCP_STATE_ESTABLISHED, "127.0.0.1", port + 100, "127.0.0.1", port);
  }
  const google::protobuf::RepeatedPtrField<v1::Connection> b_before = f.cb;
  v1::CorrelateResult r = f.Run();
  ASSERT_EQ(r.pairs_size(), 1) << r.ShortDebugString();
  EXPECT_EQ(r.pairs(0).a().local().port(), 9000u);
  EXPECT_EQ(r.pairs(0).b().local().port(), 8080u);
  EXPECT_EQ(r.only_a_size() + r.only_b_size(), 0);
  ASSERT_EQ(f.cb.size(), b_before.size());
  for (int i = 0; i < f.cb.size(); ++i) EXPECT_EQ(f.cb[i].local().port(), b_before[i].local().port());
}

TEST(CorrelateTest, TheToolsOwnCallsAreLeftOut) {
  Fixture f;
  *f.ca.Add() = Conn(v1::TCP_STATE_ESTABLISHED, kA, 50000, kB, 7411);
  v1::CorrelateResult r;
  Correlate(HostSnapshot{"a", &f.ia, &f.ca, f.ta, 7411}, HostSnapshot{"b", &f.ib, &f.cb, f.tb, 7411}, &r);
  EXPECT_EQ(r.only_a_size(), 0);
}


// Where the inputs and the result live decides how connections move: as
// pointers when they share an arena (or the heap), by swapping contents
// otherwise. Either way the result is the same.
enum class Memory { kHeap, kOneArena, kResultElsewhere };

class CorrelateMemoryTest : public testing::TestWithParam<Memory> {};

TEST_P(CorrelateMemoryTest, ReportedConnectionsMoveIntoTheResult) {
  google::protobuf::Arena arena, other;
  google::protobuf::Arena* lists = GetParam() == Memory::kHeap ? nullptr : &arena;
  google::protobuf::Arena* results = GetParam() == Memory::kHeap ? nullptr
                                     : GetParam() == Memory::kOneArena ? &arena
                                                                       : &other;
  // On the heap, these locals own everything; on an arena, the arena does.
  v1::HostConnections heap_a, heap_b;
  v1::CorrelateResult heap_result;
  auto* ca = (lists ? google::protobuf::Arena::CreateMessage<v1::HostConnections>(lists) : &heap_a)
                 ->mutable_connections();
  auto* cb = (lists ? google::protobuf::Arena::CreateMessage<v1::HostConnections>(lists) : &heap_b)
                 ->mutable_connections();
  v1::CorrelateResult* r = results ? google::protobuf::Arena::CreateMessage<v1::CorrelateResult>(results) : &heap_result;
  *ca->Add() = Conn(v1::TCP_STATE_LISTEN, kA, 22, "0.0.0.0", 0);
  *ca->Add() = Conn(v1::TCP_STATE_ESTABLISHED, kA, 40001, kB, 80);
  *ca->Add() = Conn(v1::TCP_STATE_ESTABLISHED, kA, 40002, "203.0.113.9", 443);  // to a third host
  *ca->Add() = Conn(v1::TCP_STATE_ESTABLISHED, kA, 40003, kB, 80);
  *ca->Add() = Conn(v1::TCP_STATE_SYN_SENT, kA, 40004, kB, 81);  // B never saw it
  *cb->Add() = Conn(v1::TCP_STATE_ESTABLISHED, kB, 80, kA, 40003);
  *cb->Add() = Conn(v1::TCP_STATE_LISTEN, kB, 80, "0.0.0.0", 0);
  *cb->Add() = Conn(v1::TCP_STATE_ESTABLISHED, kB, 80, kA, 40001);
  v1::HostInfo ia = Info(kA, "boot-a"), ib = Info(kB, "boot-b");
  Correlate(HostSnapshot{"a", &ia, ca, absl::UnixEpoch()}, HostSnapshot{"b", &ib, cb, absl::UnixEpoch()}, r);

  ASSERT_EQ(r->pairs_size(), 2);
  EXPECT_EQ(r->pairs(0).a().local().port(), 40001u);
  EXPECT_EQ(r->pairs(0).b().remote().port(), 40001u);
  EXPECT_EQ(r->pairs(1).a().local().port(), 40003u);
  EXPECT_EQ(r->pairs(1).b().remote().port(), 40003u);
  EXPECT_EQ(r->pairs(0).passive_side(), "B");
  ASSERT_EQ(r->only_a_size(), 1);
  EXPECT_EQ(r->only_a(0).connection().local().port(), 40004u);
  EXPECT_EQ(r->only_b_size(), 0);
  auto ports = [](const google::protobuf::RepeatedPtrField<v1::Connection>& l) {
    std::vector<uint32_t> v;
    for (const v1::Connection& c : l) v.push_back(c.local().port());
    return v;
  };
  if (GetParam() == Memory::kResultElsewhere) {
    // Swapped out: the lists keep their length, reported elements empty.
    EXPECT_EQ(ports(*ca), (std::vector<uint32_t>{22, 0, 40002, 0, 0}));
    EXPECT_EQ(ports(*cb), (std::vector<uint32_t>{0, 80, 0}));
  } else {
    EXPECT_EQ(ports(*ca), (std::vector<uint32_t>{22, 40002}));
    EXPECT_EQ(ports(*cb), (std::vector<uint32_t>{80}));
    EXPECT_EQ(cb->Get(0).state(), v1::TCP_STATE_LISTEN);
  }
}

INSTANTIATE_TEST_SUITE_P(Memory, CorrelateMemoryTest,
                         testing::Values(Memory::kHeap, Memory::kOneArena, Memory::kResultElsewhere),
                         [](const testing::TestParamInfo<Memory>& i) {
                           return i.param == Memory::kHeap       ? std::string("Heap")
                                  : i.param == Memory::kOneArena ? std::string("OneArena")
                                                                 : std::string("ResultElsewhere");
                         });

}  // namespace
}  // namespace tcbscope
