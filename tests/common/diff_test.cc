#include "common/diff.h"

#include "gtest/gtest.h"

namespace tcbscope {
namespace {

v1::Connection Conn(uint64_t cookie, v1::TcpState st, int lport) {
  v1::Connection c;
  c.set_cookie(cookie);
  c.set_state(st);
  c.mutable_local()->set_address("198.51.100.1");
  c.mutable_local()->set_port(lport);
  c.mutable_remote()->set_address("198.51.100.2");
  c.mutable_remote()->set_port(80);
  return c;
}

TEST(DiffTest, AddedRemovedAndStateChanges) {
  google::protobuf::RepeatedPtrField<v1::Connection> before, after;
  *before.Add() = Conn(1, v1::TCP_STATE_ESTABLISHED, 1000);  // closes
  *before.Add() = Conn(2, v1::TCP_STATE_ESTABLISHED, 1001);  // goes away
  *before.Add() = Conn(3, v1::TCP_STATE_ESTABLISHED, 1002);  // unchanged
  *after.Add() = Conn(3, v1::TCP_STATE_ESTABLISHED, 1002);
  *after.Add() = Conn(1, v1::TCP_STATE_FIN_WAIT1, 1000);
  *after.Add() = Conn(4, v1::TCP_STATE_SYN_SENT, 1003);      // new
  SnapshotDiff d = DiffSnapshots(before, after);
  ASSERT_EQ(d.added.size(), 1u);
  EXPECT_EQ(d.added[0]->cookie(), 4u);
  ASSERT_EQ(d.removed.size(), 1u);
  EXPECT_EQ(d.removed[0]->cookie(), 2u);
  ASSERT_EQ(d.changed.size(), 1u);
  EXPECT_EQ(d.changed[0].before->state(), v1::TCP_STATE_ESTABLISHED);
  EXPECT_EQ(d.changed[0].after->state(), v1::TCP_STATE_FIN_WAIT1);
  EXPECT_EQ(d.changed[0].fields, std::vector<std::string>{"state"});
}

TEST(DiffTest, FieldsThatAlwaysMoveAreNotChanges) {
  v1::Connection a = Conn(7, v1::TCP_STATE_ESTABLISHED, 1000);
  a.mutable_tcp_info()->set_last_data_recv_ms(10);
  a.mutable_tcp_info()->set_rtt_us(100);
  a.mutable_timer()->set_kind(v1::Timer::KIND_KEEPALIVE);
  a.mutable_timer()->set_expires_ms(5000);
  v1::Connection b = a;
  b.mutable_tcp_info()->set_last_data_recv_ms(1010);
  b.mutable_tcp_info()->set_rtt_us(130);
  b.mutable_timer()->set_expires_ms(4000);
  EXPECT_TRUE(ChangedFields(a, b).empty());
  b.mutable_tcp_info()->set_bytes_received(500);
  b.set_recv_q(500);
  b.mutable_timer()->set_retransmits(1);
  EXPECT_EQ(ChangedFields(a, b),
            (std::vector<std::string>{"recv_q", "timer.retransmits", "tcp_info.bytes_received"}));
}

TEST(DiffTest, LosingTcpInfoIsNotAChangeOfItsFields) {
  v1::Connection a = Conn(9, v1::TCP_STATE_FIN_WAIT2, 1000);
  a.mutable_tcp_info()->set_bytes_acked(500);
  a.set_congestion("cubic");
  v1::Connection b = Conn(9, v1::TCP_STATE_TIME_WAIT, 1000);  // a mini-socket: no tcp_info
  EXPECT_EQ(ChangedFields(a, b), std::vector<std::string>{"state"});
}

TEST(DiffTest, SocketsWithoutCookieMatchByEndpointsAndState) {
  google::protobuf::RepeatedPtrField<v1::Connection> before, after;
  *before.Add() = Conn(0, v1::TCP_STATE_SYN_RECV, 1000);
  *after.Add() = Conn(0, v1::TCP_STATE_SYN_RECV, 1000);
  *after.Add() = Conn(0, v1::TCP_STATE_SYN_RECV, 1001);
  SnapshotDiff d = DiffSnapshots(before, after);
  EXPECT_EQ(d.added.size(), 1u);
  EXPECT_TRUE(d.removed.empty());
  EXPECT_TRUE(d.changed.empty());
}

TEST(DiffTest, IdenticalSnapshotsAreEmpty) {
  google::protobuf::RepeatedPtrField<v1::Connection> s;
  for (int i = 1; i <= 100; ++i) *s.Add() = Conn(i, v1::TCP_STATE_ESTABLISHED, 1000 + i);
  EXPECT_TRUE(DiffSnapshots(s, s).empty());
}

}  // namespace
}  // namespace tcbscope
