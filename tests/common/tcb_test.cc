// Tcb, the compact form of a TCB that pairing reads, and TcbList.
#include "common/tcb.h"

#include "common/connection_fields.h"
#include "gtest/gtest.h"
#include "tests/common/every_field.h"
#include "tests/common/tcb_difference.h"

namespace tcbscope {
namespace {

TEST(TcbTest, TakesWhatPairingReads) {
  v1::Connection c;
  c.set_family(v1::FAMILY_INET6);
  c.set_v6only(true);
  c.set_state(v1::TCP_STATE_CLOSE_WAIT);
  c.mutable_local()->set_address("::ffff:198.51.100.1");
  c.mutable_local()->set_port(40000);
  c.mutable_remote()->set_address("2001:db8::2");
  c.mutable_remote()->set_port(80);
  c.set_send_q(7);
  c.set_recv_q(9);
  c.mutable_timer()->set_kind(v1::Timer::KIND_ZERO_WINDOW_PROBE);
  c.mutable_timer()->set_retransmits(3);
  v1::TcpInfo& i = *c.mutable_tcp_info();
  i.set_bytes_acked(5000000000);
  i.set_bytes_sent(6000000000);
  i.set_snd_wnd(65536);
  i.set_opt_wscale(true);
  i.set_snd_wscale(7);
  i.set_rcv_wscale(9);
  i.set_advmss(1460);
  i.set_last_ack_recv_ms(1234);
  c.mutable_seq()->set_snd_una(4000000000u);
  c.mutable_seq()->set_rcv_wup(17);
  c.mutable_seq()->set_bytes_received(5);

  const Tcb t = TcbOf(c);
  EXPECT_EQ(t.local.address.ToString(), "::ffff:198.51.100.1") << "kept as the kernel has it, not folded";
  EXPECT_EQ(t.local.port, 40000);
  EXPECT_EQ(t.remote.ToString(), "[2001:db8::2]:80");
  EXPECT_EQ(t.family, v1::FAMILY_INET6);
  EXPECT_TRUE(t.v6only);
  EXPECT_EQ(t.state, v1::TCP_STATE_CLOSE_WAIT);
  EXPECT_EQ(t.send_q, 7u);
  EXPECT_EQ(t.recv_q, 9u);
  EXPECT_TRUE(t.has_timer);
  EXPECT_EQ(t.timer_kind, v1::Timer::KIND_ZERO_WINDOW_PROBE);
  EXPECT_EQ(t.timer_retransmits, 3u);
  ASSERT_TRUE(t.has_tcp_info);
  EXPECT_EQ(t.info.bytes_acked, 5000000000u);
  EXPECT_EQ(t.info.bytes_sent, 6000000000u);
  EXPECT_EQ(t.info.snd_wnd, 65536u);
  EXPECT_TRUE(t.info.opt_wscale);
  EXPECT_FALSE(t.info.opt_sack);
  EXPECT_EQ(t.info.snd_wscale, 7u);
  EXPECT_EQ(t.info.rcv_wscale, 9u);
  EXPECT_EQ(t.info.advmss, 1460u);
  EXPECT_EQ(t.info.last_ack_recv_ms, 1234u);
  EXPECT_TRUE(t.info.has_windows);
  ASSERT_TRUE(t.has_seq);
  EXPECT_EQ(t.seq.snd_una, 4000000000u);
  EXPECT_EQ(t.seq.rcv_wup, 17u);
  EXPECT_EQ(t.seq.bytes_received, 5u);
}

TEST(TcbTest, AbsentPartsStayAbsent) {
  v1::Connection c;
  c.set_state(v1::TCP_STATE_ESTABLISHED);
  c.mutable_local()->set_address("not an address");
  c.mutable_tcp_info()->add_absent("rcv_wnd");
  const Tcb t = TcbOf(c);
  EXPECT_TRUE(t.local.address.IsUnspecified());
  EXPECT_FALSE(t.has_timer);
  EXPECT_FALSE(t.has_seq);
  ASSERT_TRUE(t.has_tcp_info);
  EXPECT_FALSE(t.info.has_windows) << "an older kernel's zero window means unknown";
}

void ExpectSameTcb(const Tcb& a, const Tcb& b) { EXPECT_EQ(testing::TcbDifference(a, b), ""); }

TEST(TcbTest, EachRowGetsItsOwnAddressesWhateverTheRowBefore) {
  // TcbOf remembers the last address text of each side: a row that repeats
  // it, changes it, or carries one that does not parse must still come out
  // as if parsed alone.
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"198.51.100.1", "198.51.100.2"}, {"198.51.100.1", "198.51.100.2"}, {"198.51.100.1", "2001:db8::2"},
      {"not an address", "2001:db8::2"}, {"198.51.100.1", ""},           {"198.51.100.9", "198.51.100.1"},
      {"", "198.51.100.1"}};
  for (const auto& [local, remote] : rows) {
    v1::Connection c;
    c.mutable_local()->set_address(local);
    c.mutable_remote()->set_address(remote);
    const Tcb t = TcbOf(c);
    for (const auto& [got, text] : {std::pair<const Endpoint*, std::string>{&t.local, local}, {&t.remote, remote}}) {
      absl::StatusOr<IpAddress> alone = IpAddress::Parse(text);
      EXPECT_EQ(got->address, alone.ok() ? *alone : IpAddress()) << "'" << text << "' after the rows before it";
    }
  }
}

TEST(TcbTest, TcbFieldPathsAreAllTcbOfReads) {
  // A connection with every field set, and the same as an agent sends it to
  // a request with TcbFieldPaths(): what the mask leaves out, TcbOf must not
  // need.
  for (bool absent_windows : {false, true}) {
    v1::Connection full;
    testing::FillEveryField(&full);
    full.mutable_local()->set_address("198.51.100.1");
    full.mutable_remote()->set_address("2001:db8::2");
    full.mutable_tcp_info()->clear_absent();
    if (absent_windows) full.mutable_tcp_info()->add_absent("snd_wnd");
    google::protobuf::FieldMask mask;
    for (const std::string& p : TcbFieldPaths()) mask.add_paths(p);
    absl::StatusOr<ConnectionFields> fields = ConnectionFields::FromMask(mask);
    ASSERT_TRUE(fields.ok()) << fields.status();
    v1::Connection sent = full;
    fields->Trim(&sent);
    // tcp_info's fields as the agent's parser fills them (all but the
    // metadata, which always comes).
    const google::protobuf::Descriptor* d = v1::TcpInfo::descriptor();
    for (int k = 0; k < d->field_count(); ++k) {
      const google::protobuf::FieldDescriptor* f = d->field(k);
      if (f->number() <= v1::TcpInfo::kAbsentFieldNumber) continue;
      if (!fields->HasTcpInfo(f->number())) sent.mutable_tcp_info()->GetReflection()->ClearField(sent.mutable_tcp_info(), f);
    }
    ASSERT_LT(sent.ByteSizeLong(), full.ByteSizeLong() * 2 / 3) << "the mask should leave much out";
    ExpectSameTcb(TcbOf(full), TcbOf(sent));
  }
}

// The same on the heap and on an arena (whose blocks the list never frees).
void ExpectKeepsEveryTcbAcrossBlocks(TcbList list) {
  EXPECT_EQ(list.size(), 0u);
  constexpr size_t kCount = 2500;  // more than two blocks
  for (size_t i = 0; i < kCount; ++i) {
    Tcb t;
    t.send_q = static_cast<uint32_t>(i);
    t.local.port = static_cast<uint16_t>(i);
    list.Add(t);
  }
  ASSERT_EQ(list.size(), kCount);
  const Tcb* first = &list[0];
  for (size_t i = 0; i < kCount; ++i) {
    EXPECT_EQ(list[i].send_q, i);
    EXPECT_EQ(list[i].local.port, i);
  }
  Tcb t;
  t.send_q = 99999;
  list.Add(t);
  EXPECT_EQ(&list[0], first) << "growing moved what was there";
  EXPECT_EQ(list[kCount].send_q, 99999u);
  TcbList moved = std::move(list);
  EXPECT_EQ(&moved[0], first) << "a move copies no Tcb";
  EXPECT_EQ(moved.size(), kCount + 1);
  EXPECT_EQ(list.size(), 0u) << "a moved-from list is empty";  // NOLINT(bugprone-use-after-move)
  list.Add(t);
  EXPECT_EQ(list.size(), 1u);
}

TEST(TcbListTest, KeepsEveryTcbAcrossBlocksOnTheHeap) { ExpectKeepsEveryTcbAcrossBlocks(TcbList()); }

TEST(TcbListTest, KeepsEveryTcbAcrossBlocksOnAnArena) {
  google::protobuf::Arena arena;
  ExpectKeepsEveryTcbAcrossBlocks(TcbList(&arena));
  EXPECT_GT(arena.SpaceUsed(), 2500 * sizeof(Tcb)) << "the blocks came from the arena";
}

}  // namespace
}  // namespace tcbscope
