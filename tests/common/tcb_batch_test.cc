// TcbBatch: a ConnectionBatch's wire bytes read straight into Tcbs must give
// what protobuf's parser and TcbOf give, and refuse what is not well-formed.
#include "common/tcb_batch.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/common/every_field.h"
#include "tests/common/tcb_difference.h"

namespace tcbscope {
namespace {

using ::tcbscope::testing::TcbDifference;

std::string Varint(uint64_t v) {
  std::string s;
  while (v >= 0x80) {
    s.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  s.push_back(static_cast<char>(v));
  return s;
}
std::string Tag(int field, int wire_type) { return Varint(static_cast<uint64_t>(field) << 3 | wire_type); }
std::string Sized(int field, const std::string& bytes) { return Tag(field, 2) + Varint(bytes.size()) + bytes; }

// Decodes `wire` both ways. Returns whether protobuf accepted it; when it
// did, Decode must have too, with the same Tcbs and header.
bool ExpectAgreement(const std::string& wire, TcbBatch* batch) {
  const absl::Status ours = batch->Decode(wire);
  v1::ConnectionBatch parsed;
  if (!parsed.ParseFromString(wire)) return false;
  EXPECT_TRUE(ours.ok()) << "protobuf accepts what Decode refuses: " << ours;
  if (!ours.ok()) return true;
  EXPECT_EQ(batch->tcbs().size(), static_cast<size_t>(parsed.connections_size()));
  for (size_t i = 0; i < batch->tcbs().size() && i < static_cast<size_t>(parsed.connections_size()); ++i) {
    EXPECT_EQ(TcbDifference(batch->tcbs()[i], TcbOf(parsed.connections(static_cast<int>(i)))), "")
        << "connection " << i;
  }
  EXPECT_EQ(batch->captured_at().seconds(), parsed.captured_at().seconds());
  EXPECT_EQ(batch->captured_at().nanos(), parsed.captured_at().nanos());
  EXPECT_EQ(batch->dump_interrupted(), parsed.dump_interrupted());
  EXPECT_EQ(batch->last(), parsed.last());
  EXPECT_EQ(batch->total(), parsed.total());
  return true;
}

v1::Connection Full(int salt, const std::string& local, const std::string& remote) {
  v1::Connection c;
  testing::FillEveryField(&c, salt);
  c.mutable_local()->set_address(local);
  c.mutable_remote()->set_address(remote);
  c.mutable_tcp_info()->clear_absent();
  return c;
}

TEST(TcbBatchTest, GivesWhatProtobufAndTcbOfGive) {
  v1::ConnectionBatch b;
  *b.add_connections() = Full(1, "198.51.100.1", "198.51.100.2");
  *b.add_connections() = Full(2, "198.51.100.1", "198.51.100.3");  // the local address repeats
  *b.add_connections() = Full(3, "2001:db8::1", "::ffff:198.51.100.9");
  v1::Connection windows = Full(4, "2001:db8::1", "2001:db8::2");
  windows.mutable_tcp_info()->add_absent("delivered_ce");
  windows.mutable_tcp_info()->add_absent("rcv_wnd");
  *b.add_connections() = windows;
  v1::Connection bare;  // no timer, tcp_info or seq: each stays absent
  bare.set_state(v1::TCP_STATE_SYN_SENT);
  *b.add_connections() = bare;
  v1::Connection odd = Full(5, "not an address", "");
  odd.set_state(static_cast<v1::TcpState>(1000));  // proto3 enums keep unknown values
  odd.mutable_timer()->set_kind(static_cast<v1::Timer::Kind>(-3));
  *b.add_connections() = odd;
  v1::Connection max = Full(6, "198.51.100.1", "198.51.100.2");
  max.mutable_local()->set_port(std::numeric_limits<uint32_t>::max());  // a Tcb keeps 16 bits, as TcbOf
  max.mutable_tcp_info()->set_bytes_acked(std::numeric_limits<uint64_t>::max());
  max.mutable_tcp_info()->set_snd_wnd(std::numeric_limits<uint32_t>::max());
  max.mutable_seq()->set_snd_una(std::numeric_limits<uint32_t>::max());
  *b.add_connections() = max;
  b.mutable_captured_at()->set_seconds(1764650000);
  b.mutable_captured_at()->set_nanos(123456789);
  b.set_dump_interrupted(true);
  b.set_last(true);
  b.set_total(7);
  TcbBatch batch;
  ASSERT_TRUE(ExpectAgreement(b.SerializeAsString(), &batch));
  ASSERT_EQ(batch.tcbs().size(), 7u);
  EXPECT_EQ(batch.tcbs()[0].remote.ToString(), "198.51.100.2:" + std::to_string(2 + 1));
  EXPECT_FALSE(batch.tcbs()[3].info.has_windows);
  EXPECT_TRUE(batch.tcbs()[2].info.has_windows);
  EXPECT_FALSE(batch.tcbs()[4].has_tcp_info);
  EXPECT_EQ(batch.tcbs()[5].state, 1000);
  EXPECT_TRUE(batch.tcbs()[5].local.address == IpAddress()) << "an address that does not parse is unspecified";
  EXPECT_EQ(batch.tcbs()[6].info.bytes_acked, std::numeric_limits<uint64_t>::max());
  EXPECT_TRUE(batch.last());
}

TEST(TcbBatchTest, ReadsAFieldSentTwiceAsProtobufDoes) {
  // A message's encodings concatenated parse as the two merged: a scalar's
  // last value wins, a message field is merged, a repeated field appended.
  v1::Connection first = Full(1, "198.51.100.1", "198.51.100.2");
  first.mutable_tcp_info()->add_absent("snd_wnd");
  v1::Connection second;
  second.mutable_local()->set_port(7);  // the address stays the first one's
  second.set_state(v1::TCP_STATE_FIN_WAIT1);
  second.mutable_tcp_info()->set_rtt_us(99);
  second.mutable_seq()->set_rcv_nxt(5);
  second.mutable_timer()->set_retransmits(2);
  const std::string conn = first.SerializeAsString() + second.SerializeAsString();
  v1::ConnectionBatch header;
  header.mutable_captured_at()->set_seconds(10);
  v1::ConnectionBatch header2;
  header2.mutable_captured_at()->set_nanos(20);
  header2.set_total(3);
  const std::string wire = header.SerializeAsString() + Sized(1, conn) + header2.SerializeAsString();
  TcbBatch batch;
  ASSERT_TRUE(ExpectAgreement(wire, &batch));
  ASSERT_EQ(batch.tcbs().size(), 1u);
  const Tcb& t = batch.tcbs()[0];
  EXPECT_EQ(t.local.ToString(), "198.51.100.1:7");
  EXPECT_EQ(t.state, v1::TCP_STATE_FIN_WAIT1);
  EXPECT_EQ(t.info.rtt_us, 99u);
  EXPECT_FALSE(t.info.has_windows) << "the first tcp_info's absent list stays";
  EXPECT_EQ(batch.captured_at().seconds(), 10);
  EXPECT_EQ(batch.captured_at().nanos(), 20);
}

TEST(TcbBatchTest, SkipsUnknownFieldsOfEveryWireType) {
  const std::string unknown = Tag(900, 0) + Varint(1ull << 63) + Tag(901, 1) + std::string(8, 'x') +
                              Sized(902, "bytes") + Tag(903, 3) + Tag(1, 0) + Varint(5) + Tag(904, 3) + Tag(904, 4) +
                              Tag(903, 4) + Tag(905, 5) + std::string(4, 'y') +
                              // A known field with another wire type is unknown too.
                              Tag(v1::Connection::kStateFieldNumber, 5) + std::string(4, 'z');
  v1::Connection c = Full(1, "198.51.100.1", "198.51.100.2");
  v1::Endpoint e;
  e.set_port(9);
  const std::string conn = c.SerializeAsString() + unknown + Sized(2, e.SerializeAsString() + unknown) +
                           Sized(15, unknown) + Sized(16, unknown) + Sized(12, unknown);
  const std::string wire = unknown + Sized(1, conn) + unknown + Sized(2, unknown);
  TcbBatch batch;
  ASSERT_TRUE(ExpectAgreement(wire, &batch));
  ASSERT_EQ(batch.tcbs().size(), 1u);
  EXPECT_EQ(batch.tcbs()[0].local.port, 9);
}

TEST(TcbBatchTest, RefusesWhatIsNotWellFormed) {
  const std::string good = Sized(1, Full(1, "198.51.100.1", "198.51.100.2").SerializeAsString());
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"tag 0", good + Tag(0, 0) + Varint(1)},
      {"field 0", good + Tag(0, 2) + Varint(0)},
      {"an end-group outside a group", good + Tag(7, 4)},
      {"wire type 6", good + Tag(7, 6)},
      {"wire type 7", good + Tag(7, 7)},
      {"a varint of 11 bytes", good + Tag(7, 0) + std::string(10, '\x80') + std::string(1, '\x01')},
      {"a tag of 6 bytes", good + std::string(5, '\x88') + std::string(1, '\x01')},
      {"a length past the end", good + Tag(7, 2) + Varint(5) + "abc"},
      {"a length of 2 GiB", good + Tag(7, 2) + std::string(4, '\xff') + std::string(1, '\x0f')},
      {"a group without its end", good + Tag(7, 3) + Tag(1, 0) + Varint(1)},
      {"a group ended by another's end", good + Tag(7, 3) + Tag(8, 4)},
      {"a connection longer than its field", Tag(1, 2) + Varint(2) + Tag(4, 0) + std::string(1, '\x81') +
                                                 std::string(1, '\x01')},
      {"a tag 0 inside a connection", Sized(1, Tag(0, 0))},
      {"an end-group inside tcp_info", Sized(1, Sized(15, Tag(3, 4)))},
      {"a truncated fixed64", good + Tag(7, 1) + "1234567"},
  };
  for (const auto& [what, wire] : bad) {
    TcbBatch batch;
    EXPECT_FALSE(batch.Decode(wire).ok()) << what;
    v1::ConnectionBatch parsed;
    EXPECT_FALSE(parsed.ParseFromString(wire)) << what << ": protobuf accepts it, so Decode must";
  }
  // Every cut of a good batch: each is refused by both, or read alike.
  v1::ConnectionBatch b;
  *b.add_connections() = Full(1, "198.51.100.1", "198.51.100.2");
  *b.add_connections() = Full(2, "2001:db8::1", "2001:db8::2");
  b.set_last(true);
  const std::string wire = b.SerializeAsString();
  int accepted = 0;
  for (size_t n = 0; n <= wire.size(); ++n) {
    TcbBatch batch;
    const std::string cut = wire.substr(0, n);
    const bool protobuf_ok = ExpectAgreement(cut, &batch);
    EXPECT_EQ(batch.Decode(cut).ok(), protobuf_ok) << "cut at " << n;
    accepted += protobuf_ok;
  }
  EXPECT_EQ(accepted, 4) << "the empty batch, one connection, two, and the whole";
}

TEST(TcbBatchTest, NestingIsLimitedWhereProtobufLimitsIt) {
  // Groups inside a connection's tcp_info, around protobuf's limit of 100
  // levels (the batch, the connection and tcp_info take three).
  int accepted = 0;
  for (int groups = 90; groups <= 102; ++groups) {
    std::string nest;
    for (int i = 0; i < groups; ++i) nest = Tag(500, 3) + nest + Tag(500, 4);
    const std::string wire = Sized(1, Sized(15, nest));
    TcbBatch batch;
    const bool protobuf_ok = ExpectAgreement(wire, &batch);
    EXPECT_EQ(batch.Decode(wire).ok(), protobuf_ok) << groups << " groups";
    accepted += protobuf_ok;
  }
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, 13);
}

TEST(TcbBatchTest, EachDecodeReplacesTheLast) {
  v1::ConnectionBatch big;
  for (int i = 0; i < 3; ++i) *big.add_connections() = Full(i, "198.51.100.1", "198.51.100.2");
  big.set_last(true);
  big.set_total(3);
  big.mutable_captured_at()->set_seconds(5);
  big.set_dump_interrupted(true);
  v1::ConnectionBatch small;
  *small.add_connections() = Full(9, "198.51.100.7", "not an address");
  TcbBatch batch;
  ASSERT_TRUE(batch.Decode(big.SerializeAsString()).ok());
  ASSERT_TRUE(ExpectAgreement(small.SerializeAsString(), &batch));
  ASSERT_EQ(batch.tcbs().size(), 1u);
  EXPECT_FALSE(batch.last());
  EXPECT_FALSE(batch.dump_interrupted());
  EXPECT_EQ(batch.total(), 0u);
  EXPECT_FALSE(batch.captured_at().seconds());
  EXPECT_EQ(batch.tcbs()[0].local.address.ToString(), "198.51.100.7") << "the last batch's address is not reused";
  EXPECT_TRUE(batch.tcbs()[0].remote.address == IpAddress());
}

}  // namespace
}  // namespace tcbscope
