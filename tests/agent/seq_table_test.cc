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

// Expects `cookie`'s own record from Find for a row in `state`.
void ExpectFound(SeqTable& table, uint64_t cookie, int family = AF_INET, int state = TCP_ESTABLISHED) {
  const tcb_seq_record* r = table.Find(cookie, family, state);
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
  ExpectFound(table, 1, AF_INET, TCP_LISTEN);
  for (uint64_t c = 10; c < 1000; ++c) {
    if (c % 3 != 0) ExpectFound(table, c, AF_INET);
  }
  ExpectFound(table, 2, AF_INET6, TCP_LISTEN);
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

TEST(SeqTableTest, RecordsWithoutRowsAreSteppedOver) {
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
  EXPECT_EQ(table.Find(5000, AF_INET, TCP_ESTABLISHED), nullptr);  // opened after the pass
  ExpectFound(table, 1);
}

TEST(SeqTableTest, TheWindowIsKLookaheadRecordsLong) {
  SeqTable table;
  for (uint64_t c = 0; c < 4 * SeqTable::kLookahead; ++c) table.Add(Record(c));
  ExpectFound(table, SeqTable::kLookahead - 1);  // the window's last
  EXPECT_EQ(table.index_lookups(), 0u);
  ExpectFound(table, 2 * SeqTable::kLookahead);  // one past it
  EXPECT_EQ(table.index_lookups(), 1u);
}

TEST(SeqTableTest, ARowNewerThanThePassCostsOneIndexAndTheRestStayInOrder) {
  SeqTable table;
  for (uint64_t c = 1; c <= 1000; ++c) table.Add(Record(c));
  for (uint64_t c = 1; c <= 1000; ++c) {
    if (c == 500) {
      EXPECT_EQ(table.Find(99999, AF_INET, TCP_ESTABLISHED), nullptr);
    }
    ExpectFound(table, c);
  }
  EXPECT_EQ(table.index_lookups(), 1u);
}

TEST(SeqTableTest, RequestSocketsLookOnlyAmongTheOpeningRecords) {
  SeqTable table;
  for (uint64_t c = 1; c <= 1000; ++c) table.Add(Record(c));
  table.Add(Record(2000, AF_INET, TCP_SYN_RECV));  // a Fast Open child
  table.Add(Record(2001, AF_INET, TCP_SYN_SENT));  // about to open simultaneously
  for (uint64_t c = 1; c <= 1000; ++c) {
    // Request sockets: no record, and no index built for them.
    EXPECT_EQ(table.Find(100000 + c, AF_INET, TCP_SYN_RECV), nullptr);
    ExpectFound(table, c);
  }
  ExpectFound(table, 2001, AF_INET, TCP_SYN_RECV);  // SYN_SENT at the pass, SYN_RECV now
  ExpectFound(table, 2000, AF_INET, TCP_SYN_RECV);  // behind the cursor by now
  EXPECT_EQ(table.index_lookups(), 0u);
  // An established row is never answered from the opening records alone.
  EXPECT_EQ(table.Find(100001, AF_INET, TCP_ESTABLISHED), nullptr);
  EXPECT_EQ(table.index_lookups(), 1u);
}

TEST(SeqTableTest, ARecordAddedAfterAFindIsFound) {
  SeqTable table;
  for (uint64_t c = 1; c <= 200; ++c) table.Add(Record(c));
  EXPECT_EQ(table.Find(500, AF_INET, TCP_ESTABLISHED), nullptr);  // builds the index
  table.Add(Record(500));
  ExpectFound(table, 500);
}

TEST(SeqTableTest, ARecordInAnotherListIsFoundAndLeavesThatListsCursor) {
  // No real walk gives this (a socket's family and listening do not change
  // between the passes), but the answer must still be the socket's own.
  SeqTable table;
  for (uint64_t c = 1; c <= 200; ++c) table.Add(Record(c, AF_INET6));
  table.Add(Record(1000, AF_INET));
  ExpectFound(table, 150, AF_INET);  // asked as IPv4: only the index has it
  EXPECT_EQ(table.Find(7, AF_UNIX, TCP_ESTABLISHED), nullptr);
  // The IPv6 list's cursor was not moved to 151 by that: its rows from the
  // start are still found in order.
  const uint64_t before = table.index_lookups();
  for (uint64_t c = 1; c <= 100; ++c) ExpectFound(table, c, AF_INET6);
  EXPECT_EQ(table.index_lookups(), before);
}

TEST(SeqTableTest, RecordsOfOtherFamiliesAreDropped) {
  SeqTable table;
  table.Add(Record(1, AF_UNIX));
  table.Add(Record(2));
  EXPECT_EQ(table.size(), 1u);
}

}  // namespace
}  // namespace tcbscope
