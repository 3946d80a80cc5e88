// Large blocks behave as malloc'd memory would, small or large, start on a
// huge page boundary when mapped, and an arena built on them holds a large
// snapshot and moves messages by pointer.
#include "client/large_blocks.h"

#include <cstdint>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "tcbscope/v1/results.pb.h"

namespace tcbscope {
namespace {

TEST(LargeBlocksTest, SmallAndLargeBlocksAreUsable) {
  for (size_t size : {size_t{1}, size_t{4096}, kLargeBlockMinimum - 1, kLargeBlockMinimum, (size_t{5} << 20) + 3}) {
    char* p = static_cast<char*>(AllocateLargeBlock(size));
    ASSERT_NE(p, nullptr) << size;
    if (size >= kLargeBlockMinimum) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kLargeBlockMinimum, 0u) << size;
    }
    memset(p, 0xab, size);
    EXPECT_EQ(static_cast<unsigned char>(p[size - 1]), 0xab);
    FreeLargeBlock(p, size);
  }
  FreeLargeBlock(nullptr, kLargeBlockMinimum);  // like free(nullptr)
}

TEST(LargeBlocksTest, BlocksDoNotOverlap) {
  // Each mapping is trimmed at both ends: neighbours must stay intact.
  std::vector<char*> blocks;
  for (int i = 0; i < 4; ++i) {
    char* p = static_cast<char*>(AllocateLargeBlock(kLargeBlockMinimum + 1));
    ASSERT_NE(p, nullptr);
    memset(p, i, kLargeBlockMinimum + 1);
    blocks.push_back(p);
  }
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(blocks[i][0], i);
    EXPECT_EQ(blocks[i][kLargeBlockMinimum], i);
    FreeLargeBlock(blocks[i], kLargeBlockMinimum + 1);
  }
}

TEST(LargeBlocksTest, AVectorGrowsOntoMappedBlocksAndKeepsItsValues) {
  std::vector<uint32_t, LargeBlockAllocator<uint32_t>> v;
  const uint32_t n = 3 << 20;  // 12 MiB: regrowths past the mapped minimum
  for (uint32_t i = 0; i < n; ++i) v.push_back(i * 2654435761u);
  EXPECT_GE(v.capacity() * sizeof(uint32_t), kLargeBlockMinimum);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % kLargeBlockMinimum, 0u) << "not a mapped block";
  for (uint32_t i = 0; i < n; i += 4099) ASSERT_EQ(v[i], i * 2654435761u) << i;
  std::vector<uint32_t, LargeBlockAllocator<uint32_t>> small(10, 7);  // from malloc
  EXPECT_EQ(small[9], 7u);
  v = small;
  EXPECT_EQ(v.size(), 10u);
  v.shrink_to_fit();
  EXPECT_EQ(v[0], 7u);
}

TEST(LargeBlocksTest, ArenaHoldsASnapshotAndSwapsWithinIt) {
  google::protobuf::Arena arena(LargeBlockArenaOptions());
  auto* conns = google::protobuf::Arena::CreateMessage<v1::HostConnections>(&arena);
  for (int i = 0; i < 20000; ++i) {  // several MiB: blocks past the mapped minimum
    v1::Connection* c = conns->add_connections();
    c->mutable_local()->set_address("2001:db8::1:2:3:4");  // longer than a short string
    c->mutable_local()->set_port(static_cast<uint32_t>(i));
    c->mutable_tcp_info()->set_rtt_us(static_cast<uint32_t>(i));
  }
  EXPECT_GT(arena.SpaceUsed(), kLargeBlockMinimum);
  auto* pair = google::protobuf::Arena::CreateMessage<v1::ConnectionPair>(&arena);
  const v1::Connection* before = &conns->connections(123);
  pair->mutable_a()->Swap(conns->mutable_connections(123));
  EXPECT_EQ(pair->a().local().port(), 123u);
  EXPECT_EQ(pair->a().tcp_info().rtt_us(), 123u);
  EXPECT_EQ(&conns->connections(123), before);  // swapped in place, not replaced
}

}  // namespace
}  // namespace tcbscope
