// Prefaulted memory behaves as malloc'd memory would, small or large, and an
// arena built on it holds a large snapshot and moves messages by pointer.
#include "client/prefaulted.h"

#include <cstring>

#include "gtest/gtest.h"
#include "tcbscope/v1/results.pb.h"

namespace tcbscope {
namespace {

TEST(PrefaultedTest, SmallAndLargeBlocksAreUsable) {
  for (size_t size : {size_t{1}, size_t{4096}, kPrefaultedMinimum - 1, kPrefaultedMinimum, size_t{5} << 20}) {
    char* p = static_cast<char*>(AllocatePrefaulted(size));
    ASSERT_NE(p, nullptr) << size;
    memset(p, 0xab, size);
    EXPECT_EQ(static_cast<unsigned char>(p[size - 1]), 0xab);
    FreePrefaulted(p, size);
  }
  FreePrefaulted(nullptr, kPrefaultedMinimum);  // like free(nullptr)
}

TEST(PrefaultedTest, ArenaHoldsASnapshotAndSwapsWithinIt) {
  google::protobuf::Arena arena(PrefaultedArenaOptions());
  auto* conns = google::protobuf::Arena::CreateMessage<v1::HostConnections>(&arena);
  for (int i = 0; i < 20000; ++i) {  // several MiB: blocks past the mapped minimum
    v1::Connection* c = conns->add_connections();
    c->mutable_local()->set_address("2001:db8::1:2:3:4");  // longer than a short string
    c->mutable_local()->set_port(static_cast<uint32_t>(i));
    c->mutable_tcp_info()->set_rtt_us(static_cast<uint32_t>(i));
  }
  EXPECT_GT(arena.SpaceUsed(), kPrefaultedMinimum);
  auto* pair = google::protobuf::Arena::CreateMessage<v1::ConnectionPair>(&arena);
  const v1::Connection* before = &conns->connections(123);
  pair->mutable_a()->Swap(conns->mutable_connections(123));
  EXPECT_EQ(pair->a().local().port(), 123u);
  EXPECT_EQ(pair->a().tcp_info().rtt_us(), 123u);
  EXPECT_EQ(&conns->connections(123), before);  // swapped in place, not replaced
}

}  // namespace
}  // namespace tcbscope
