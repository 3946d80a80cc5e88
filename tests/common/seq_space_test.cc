// Sequence space: serial arithmetic across the 2^32 wrap, ISS/IRS derivation,
// the exact per-direction checks, PATH_LOSS over samples, and pairing through
// NAT by initial sequence numbers. Hand-built TCBs only.
#include "common/seq_space.h"

#include <string>
#include <vector>

#include "common/compare.h"
#include "common/correlate.h"
#include "gtest/gtest.h"

namespace tcbscope {
namespace {

TEST(SeqSpaceTest, SerialArithmeticAcrossTheWrap) {
  EXPECT_EQ(SeqDiff(5, 0xFFFFFFFBu), 10);
  EXPECT_EQ(SeqDiff(0xFFFFFFFBu, 5), -10);
  EXPECT_TRUE(SeqBefore(0xFFFFFFF0u, 0x10));
  EXPECT_FALSE(SeqBefore(0x10, 0xFFFFFFF0u));
  EXPECT_TRUE(SeqAtOrBefore(7, 7));
  EXPECT_TRUE(SeqBetween(0xFFFFFFF0u, 0, 0x10));
  EXPECT_FALSE(SeqBetween(0xFFFFFFF0u, 0x11, 0x10));
  EXPECT_FALSE(SeqBetween(0xFFFFFFF0u, 0xFFFFFFEFu, 0x10));
  EXPECT_EQ(SeqDiff(0x80000000u + 5, 5), -2147483648LL) << "2^31 apart is the edge";
}

// An idle established connection A (active opener, ISS ia) -> B (passive,
// ISS ib) with `ab` bytes A->B and `ba` bytes B->A, all acknowledged and read.
struct SeqPair {
  v1::Connection a, b;
};

v1::Connection Tcb(const std::string& la, int lp, const std::string& ra, int rp) {
  v1::Connection c;
  c.set_family(v1::FAMILY_INET);
  c.set_state(v1::TCP_STATE_ESTABLISHED);
  c.mutable_local()->set_address(la);
  c.mutable_local()->set_port(lp);
  c.mutable_remote()->set_address(ra);
  c.mutable_remote()->set_port(rp);
  v1::TcpInfo* t = c.mutable_tcp_info();
  t->set_last_data_sent_ms(5000);
  t->set_last_data_recv_ms(5000);
  t->set_last_ack_recv_ms(5000);
  t->set_snd_wnd(65536);
  t->set_rcv_wnd(65536);
  return c;
}

SeqPair Healthy(uint32_t ia, uint32_t ib, uint32_t ab, uint32_t ba) {
  SeqPair p{Tcb("198.51.100.1", 40000, "198.51.100.2", 80), Tcb("198.51.100.2", 80, "198.51.100.1", 40000)};
  v1::SequenceSpace* x = p.a.mutable_seq();
  x->set_snd_una(ia + 1 + ab);
  x->set_snd_nxt(ia + 1 + ab);
  x->set_write_seq(ia + 1 + ab);
  x->set_rcv_nxt(ib + 1 + ba);
  x->set_copied_seq(ib + 1 + ba);
  x->set_rcv_wup(ib + 1 + ba);
  x->set_rcv_wnd(65536);
  x->set_snd_wnd(65536);
  x->set_bytes_acked(ab + 1ull);  // the active opener counts its SYN
  x->set_bytes_received(ba);
  v1::SequenceSpace* y = p.b.mutable_seq();
  y->set_snd_una(ib + 1 + ba);
  y->set_snd_nxt(ib + 1 + ba);
  y->set_write_seq(ib + 1 + ba);
  y->set_rcv_nxt(ia + 1 + ab);
  y->set_copied_seq(ia + 1 + ab);
  y->set_rcv_wup(ia + 1 + ab);
  y->set_rcv_wnd(65536);
  y->set_snd_wnd(65536);
  y->set_bytes_acked(ba);
  y->set_bytes_received(ab);
  p.a.mutable_tcp_info()->set_bytes_acked(ab + 1ull);
  p.a.mutable_tcp_info()->set_bytes_sent(ab);
  p.a.mutable_tcp_info()->set_bytes_received(ba);
  p.b.mutable_tcp_info()->set_bytes_acked(ba);
  p.b.mutable_tcp_info()->set_bytes_sent(ba);
  p.b.mutable_tcp_info()->set_bytes_received(ab);
  return p;
}

TEST(SeqSpaceTest, InitialSequenceNumbersOfBothOpeners) {
  const SeqPair p = Healthy(0xFFFFFF00u, 12345, 1000, 77);  // A's stream wraps
  std::optional<InitialSequence> a = InitialSequenceOf(p.a), b = InitialSequenceOf(p.b);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->irs, 12345u);
  EXPECT_EQ(b->irs, 0xFFFFFF00u);
  EXPECT_EQ(a->iss_if_active, 0xFFFFFF00u);
  EXPECT_EQ(b->iss_if_passive, 12345u);
  EXPECT_TRUE(a->IssMatches(b->irs));
  EXPECT_TRUE(b->IssMatches(a->irs));
  v1::Connection syn = p.a;
  syn.set_state(v1::TCP_STATE_SYN_SENT);
  EXPECT_FALSE(InitialSequenceOf(syn).has_value()) << "no IRS before the SYN-ACK";
  v1::Connection plain = p.a;
  plain.clear_seq();
  EXPECT_FALSE(InitialSequenceOf(plain).has_value());
}

v1::ConnectionPair Compared(const SeqPair& p, double skew_ms = 0) {
  v1::ConnectionPair pair;
  *pair.mutable_a() = p.a;
  *pair.mutable_b() = p.b;
  pair.set_passive_side("B");
  CompareContext ctx;
  ctx.skew_ms = skew_ms;
  ComparePair(ctx, &pair);
  return pair;
}

std::vector<std::string> Codes(const google::protobuf::RepeatedPtrField<v1::Finding>& fs) {
  std::vector<std::string> out;
  for (const auto& f : fs) out.push_back(f.code());
  return out;
}

TEST(SeqSpaceTest, HealthyPairAcrossTheWrapHasExactFiguresAndNoFinding) {
  SeqPair p = Healthy(0xFFFFFFF0u, 7, 100, 0);
  // 300 bytes written by A: 200 sent (60 of them not yet arrived), 100 unsent;
  // B has read only 40 of what arrived.
  v1::SequenceSpace* x = p.a.mutable_seq();
  const uint32_t una = x->snd_una();
  x->set_snd_nxt(una + 200);
  x->set_write_seq(una + 300);
  v1::SequenceSpace* y = p.b.mutable_seq();
  y->set_rcv_nxt(una + 140);
  y->set_copied_seq(una + 40);
  y->set_rcv_wup(una + 140);
  y->set_rcv_wnd(1000);
  const v1::ConnectionPair pair = Compared(p);
  EXPECT_TRUE(pair.findings().empty()) << pair.ShortDebugString();
  const v1::DirectionView& d = pair.directions(0);
  ASSERT_TRUE(d.exact());
  EXPECT_EQ(d.seq_in_flight(), 60);
  EXPECT_EQ(d.seq_acks_in_flight(), 140);
  EXPECT_EQ(d.seq_unread(), 100);
  EXPECT_EQ(d.seq_unsent(), 100);
  EXPECT_EQ(d.seq_window_left(), 940);
}

TEST(SeqSpaceTest, SeqDesyncWhenTheReceiverIsOutsideTheSendersWindow) {
  for (int64_t offset : {-500, +500}) {
    SeqPair p = Healthy(1000, 2000, 5000, 5000);
    v1::SequenceSpace* y = p.b.mutable_seq();
    y->set_rcv_nxt(static_cast<uint32_t>(y->rcv_nxt() + offset));
    const v1::ConnectionPair pair = Compared(p);
    ASSERT_EQ(Codes(pair.findings()), std::vector<std::string>{kSeqDesync}) << offset;
    bool snd = false, rcv = false;
    for (const auto& e : pair.findings(0).evidence()) {
      snd |= e.host() == "A" && e.field() == "seq.snd_una";
      rcv |= e.host() == "B" && e.field() == "seq.rcv_nxt";
    }
    EXPECT_TRUE(snd && rcv);
  }
}

TEST(SeqSpaceTest, ABusyDirectionIsNotJudgedOnOneSample) {
  SeqPair p = Healthy(1000, 2000, 5000, 5000);
  p.b.mutable_seq()->set_rcv_nxt(p.b.seq().rcv_nxt() + 500);  // as if B was captured later
  p.a.mutable_tcp_info()->set_last_data_sent_ms(3);
  p.b.mutable_tcp_info()->set_last_data_recv_ms(3);
  EXPECT_TRUE(Compared(p, 40).findings().empty());
}

v1::ConnectionPair Sample(uint32_t a_snd_nxt, uint32_t b_rcv_nxt, uint32_t retrans) {
  SeqPair p = Healthy(1000, 2000, 0, 0);
  p.a.mutable_seq()->set_snd_nxt(a_snd_nxt);
  p.a.mutable_tcp_info()->set_total_retrans(retrans);
  p.b.mutable_seq()->set_rcv_nxt(b_rcv_nxt);
  return Compared(p);
}

TEST(SeqSpaceTest, PathLossWhenTheReceiverNeverMoves) {
  const uint32_t start = 1001;
  std::vector<v1::ConnectionPair> s = {Sample(start + 1448, start, 0), Sample(start + 2896, start, 1),
                                       Sample(start + 2896, start, 3)};
  google::protobuf::RepeatedPtrField<v1::Finding> out;
  CompareSamples(CompareContext{}, {&s[0], &s[1], &s[2]}, &out);
  ASSERT_EQ(Codes(out), std::vector<std::string>{kPathLoss});
  bool rcv = false;
  for (const auto& e : out[0].evidence()) rcv |= e.host() == "B" && e.field() == "seq.rcv_nxt";
  EXPECT_TRUE(rcv);

  // The receiver moves: data arrives, slowly. Not loss.
  std::vector<v1::ConnectionPair> t = {Sample(start + 1448, start, 0), Sample(start + 2896, start + 1448, 1),
                                       Sample(start + 4344, start + 2896, 1)};
  out.Clear();
  CompareSamples(CompareContext{}, {&t[0], &t[1], &t[2]}, &out);
  EXPECT_TRUE(out.empty());
  // Two samples are not enough to say.
  out.Clear();
  CompareSamples(CompareContext{}, {&s[0], &s[1]}, &out);
  EXPECT_TRUE(out.empty());
}

// Host A at 198.51.100.1 and host B at .2, two kernels.
void TwoHosts(v1::HostInfo* a, v1::HostInfo* b) {
  a->set_boot_id("a");
  a->add_addresses()->set_address("198.51.100.1");
  b->set_boot_id("b");
  b->add_addresses()->set_address("198.51.100.2");
}

TEST(SeqSpaceTest, NatPairsByInitialSequenceNumbers) {
  SeqPair p = Healthy(0xFFFFFF00u, 424242, 1000, 300);
  // A connected to 198.51.100.80:80, which a NAT sent to B at .2:8080; B sees
  // A's address as the NAT's .99.
  p.a.mutable_remote()->set_address("198.51.100.80");
  p.b.mutable_local()->set_port(8080);
  p.b.mutable_remote()->set_address("198.51.100.99");
  // A decoy on B with the right IRS but the wrong ISS must not pair.
  SeqPair decoy = Healthy(0xFFFFFF00u, 5, 1000, 300);
  decoy.b.mutable_local()->set_port(9090);
  v1::HostInfo ia, ib;
  TwoHosts(&ia, &ib);
  google::protobuf::RepeatedPtrField<v1::Connection> ca, cb;
  *ca.Add() = p.a;
  *cb.Add() = decoy.b;
  *cb.Add() = p.b;
  v1::CorrelateResult r;
  Correlate(HostSnapshot{"a", &ia, &ca, absl::UnixEpoch()}, HostSnapshot{"b", &ib, &cb, absl::UnixEpoch()}, &r);
  ASSERT_EQ(r.pairs_size(), 1);
  EXPECT_EQ(r.pairs(0).matched_by(), "isn");
  EXPECT_TRUE(r.pairs(0).addresses_translated());
  EXPECT_EQ(r.pairs(0).b().local().port(), 8080u);
  EXPECT_EQ(r.pairs(0).passive_side(), "B");
}

TEST(SeqSpaceTest, NatPairsWhereverEachEndSitsInItsList) {
  // Each end at each position of its host's list, among other connections:
  // the same position in both lists is two sockets, not one (it once kept
  // them apart, when a dump's order put both ends at the same index).
  for (int pos_a = 0; pos_a < 3; ++pos_a) {
    for (int pos_b = 0; pos_b < 3; ++pos_b) {
      SeqPair p = Healthy(1000, 2000, 30, 40);
      p.a.mutable_remote()->set_address("198.51.100.80");  // through a NAT
      p.b.mutable_local()->set_port(8080);
      v1::HostInfo ia, ib;
      TwoHosts(&ia, &ib);
      google::protobuf::RepeatedPtrField<v1::Connection> ca, cb;
      for (int k = 0; k < 3; ++k) {
        SeqPair other = Healthy(50000u + static_cast<uint32_t>(k), 60000, 1, 1);
        other.a.mutable_local()->set_port(41000 + static_cast<uint32_t>(k));
        // Not each other's ends by address; by sequence numbers they are (a
        // filler at the same position on both sides pairs too).
        other.b.mutable_remote()->set_port(42000 + static_cast<uint32_t>(k));
        *ca.Add() = k == pos_a ? p.a : other.a;
        *cb.Add() = k == pos_b ? p.b : other.b;
      }
      v1::CorrelateResult r;
      Correlate(HostSnapshot{"a", &ia, &ca, absl::UnixEpoch()}, HostSnapshot{"b", &ib, &cb, absl::UnixEpoch()}, &r);
      int by_isn = 0;
      for (const auto& pair : r.pairs()) by_isn += pair.matched_by() == "isn" && pair.b().local().port() == 8080u;
      EXPECT_EQ(by_isn, 1) << "A's end at " << pos_a << ", B's at " << pos_b << ": " << r.ShortDebugString();
    }
  }
}

TEST(SeqSpaceTest, OneHostPairsByIsnOnceActiveFirst) {
  SeqPair p = Healthy(77, 99, 10, 10);
  p.a.mutable_remote()->set_port(8080);  // a DNAT on output: A believes it talks to :8080
  v1::HostInfo info;
  info.set_boot_id("same");
  google::protobuf::RepeatedPtrField<v1::Connection> all;
  *all.Add() = p.b;
  *all.Add() = p.a;
  v1::CorrelateResult r;
  Correlate(HostSnapshot{"h", &info, &all, absl::UnixEpoch()}, HostSnapshot{"h", &info, &all, absl::UnixEpoch()}, &r);
  ASSERT_EQ(r.pairs_size(), 1);
  EXPECT_EQ(r.pairs(0).a().local().port(), 40000u) << "the active opener is A";
  EXPECT_EQ(r.pairs(0).matched_by(), "isn");
}

}  // namespace
}  // namespace tcbscope
