// Sequence records for a dump's rows: each row gets its own socket's record
// whatever the order, and rows in the iterator's order never take the index.
#include "agent/seq_table.h"

#include <netinet/tcp.h>
#include <sys/socket.h>

#include <vector>

#include "gtest/gtest.h"

namespace tcbscope {
namespace {

tcb_seq_record Record(uint64_t cookie, int family = AF_INET, int state = TCP_ESTABLISHED) {
  tcb_seq_record r{};
  r.cookie = cookie;
  r.family = static_cast<uint16_t>(family);
  r.state = static_cast<uint8_t>(state);
  r.snd_una = static_cast<uint32_t>(cookie * 7);  // tells the records apart
  return r;
}

// Expects `cookie`'s own record from Find.
void ExpectFound(SeqTable& table, uint64_t cookie, int family = AF_INET, bool listening = false) {
  const tcb_seq_record* r = table.Find(cookie, family, listening);
  ASSERT_NE(r, nullptr) << "cookie " << cookie;
  EXPECT_EQ(r->cookie, cookie);
  EXPECT_EQ(r->snd_una, static_cast<uint32_t>(cookie * 7));
}

TEST(SeqTableTest, RowsInTheIteratorsOrderNeverTakeTheIndex) {
  // The iterator's order: listeners, then both families mixed; the dump's:
  // the IPv4 rows, then the IPv6 rows, listeners first in each.
  SeqTable table;
  table.Add(Record(1, AF_INET, TCP_LISTEN));
  table.Add(Record(2, AF_INET6, TCP_LISTEN));
  for (uint64_t c = 10; c < 1000; ++c) table.Add(Record(c, c % 3 == 0 ? AF_INET6 : AF_INET));
  ExpectFound(table, 1, AF_INET, /*listening=*/true);
  for (uint64_t c = 10; c < 1000; ++c) {
    if (c % 3 != 0) ExpectFound(table, c, AF_INET);
  }
  ExpectFound(table, 2, AF_INET6, true);
  for (uint64_t c = 10; c < 1000; ++c) {
    if (c % 3 == 0) ExpectFound(table, c, AF_INET6);
  }
  EXPECT_EQ(table.index_lookups(), 0u);
}

TEST(SeqTableTest, ADumpWithoutListenersStartsAtTheFirstEstablished) {
  SeqTable table;
  for (uint64_t c = 1; c <= 2 * SeqTable::kLookahead; ++c) table.Add(Record(c, AF_INET, TCP_LISTEN));
  for (uint64_t c = 1000; c < 1100; ++c) table.Add(Record(c));
  for (uint64_t c = 1000; c < 1100; ++c) ExpectFound(table, c);
  EXPECT_EQ(table.index_lookups(), 0u);
}

TEST(SeqTableTest, RowsTheIteratorDidNotSeeAreSkipped) {
  // Sockets closed between the two passes have records but no rows: the
  // cursor moves past them within its lookahead.
  SeqTable table;
  for (uint64_t c = 1; c <= 100; ++c) table.Add(Record(c));
  for (uint64_t c = 1; c <= 100; c += 5) ExpectFound(table, c);
  EXPECT_EQ(table.index_lookups(), 0u);
}

TEST(SeqTableTest, ARecordFarAwayIsFoundByTheIndexAndTheCursorFollowsIt) {
  SeqTable table;
  for (uint64_t c = 1; c <= 1000; ++c) table.Add(Record(c));
  ExpectFound(table, 900);  // far past the lookahead
  EXPECT_EQ(table.index_lookups(), 1u);
  for (uint64_t c = 901; c <= 1000; ++c) ExpectFound(table, c);
  ExpectFound(table, 3);  // behind the cursor
  ExpectFound(table, 4);
  EXPECT_EQ(table.index_lookups(), 2u);
}

TEST(SeqTableTest, ASocketWithoutARecordGetsNone) {
  SeqTable table;
  for (uint64_t c = 1; c <= 10; ++c) table.Add(Record(c));
  EXPECT_EQ(table.Find(5000, AF_INET, false), nullptr);  // opened after the pass
  ExpectFound(table, 1);
}

TEST(SeqTableTest, AFamilysRowNeverGetsTheOtherFamilysRecordByPosition) {
  SeqTable table;
  table.Add(Record(1, AF_INET6));
  table.Add(Record(2, AF_INET));
  // Same cookie asked as the wrong family: only the index knows it, and the
  // record returned is still the socket's own.
  ExpectFound(table, 1, AF_INET);
  EXPECT_EQ(table.Find(3, AF_INET6, false), nullptr);
  EXPECT_EQ(table.Find(1, AF_UNIX, false), nullptr);
}

TEST(SeqTableTest, ListenerThatChangedStateSinceThePassIsStillFound) {
  SeqTable table;
  table.Add(Record(1, AF_INET, TCP_CLOSE));  // bound, then listen() after the pass
  ExpectFound(table, 1, AF_INET, /*listening=*/true);
}

TEST(SeqTableTest, RecordsOfOtherFamiliesAreDropped) {
  SeqTable table;
  table.Add(Record(1, AF_UNIX));
  table.Add(Record(2));
  EXPECT_EQ(table.size(), 1u);
}

}  // namespace
}  // namespace tcbscope
