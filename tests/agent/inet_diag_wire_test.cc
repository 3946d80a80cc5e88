// The wire encoder against its contract: for every message, the bytes it
// appends are those of the Connection the parser builds, serialized, and it
// refuses what the parser refuses. On the recordings (real ss -D dumps) and on
// hand-made messages for what a healthy kernel rarely sends.
#include "agent/kernel/inet_diag_wire.h"

#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/kernel/inet_diag_parser.h"
#include "agent/kernel/tcp_info_wire.h"
#include "google/protobuf/field_mask.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "gtest/gtest.h"
#include "tests/agent/test_data.h"

namespace tcbscope::kernel {
namespace {

ConnectionFields Fields(const std::vector<std::string>& paths) {
  google::protobuf::FieldMask mask;
  for (const std::string& p : paths) mask.add_paths(p);
  absl::StatusOr<ConnectionFields> f = ConnectionFields::FromMask(mask);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *f : ConnectionFields();
}

// A record for some cookies (every third has none), marked by its cookie.
const tcb_seq_record* RecordFor(uint64_t cookie, int family, int state, tcb_seq_record* scratch) {
  if (cookie % 3 == 0) return nullptr;
  *scratch = tcb_seq_record{};
  scratch->cookie = cookie;
  scratch->family = static_cast<uint16_t>(family);
  scratch->state = static_cast<uint8_t>(state);
  scratch->snd_una = static_cast<uint32_t>(cookie * 2654435761u);
  scratch->rcv_wup = 7;
  scratch->bytes_received = cookie << 20;
  return scratch;
}

// What the contract says the encoder must append: the parser's Connection,
// given the same name, record and trim, serialized as ConnectionBatch field 1.
// Empty when the parser refuses the message.
std::string ViaMessage(const nlmsghdr* m, uint64_t netns, const std::string& name, const ConnectionFields& fields,
                       bool with_seq) {
  v1::Connection c;
  if (!ParseInetDiagMessage(m, netns, &c, fields).ok()) return "";
  if (!name.empty()) c.set_netns_name(name);
  tcb_seq_record scratch;
  if (with_seq && !IsTimeWaitRow(c.state(), c.timer().kind() == v1::Timer::KIND_TIME_WAIT)) {
    const int family = c.family() == v1::FAMILY_INET ? AF_INET : AF_INET6;
    if (const tcb_seq_record* r = RecordFor(c.cookie(), family, c.state(), &scratch)) {
      FillSequenceSpace(*r, c.mutable_seq());
    }
  }
  if (!fields.all()) fields.Trim(&c);
  v1::ConnectionBatch b;
  *b.add_connections() = c;
  return b.SerializeAsString();
}

struct Written {
  WireOutcome outcome;
  std::string bytes;
};

Written ViaWire(const nlmsghdr* m, uint64_t netns, const std::string& name, const ConnectionFields& fields,
                bool with_seq, const std::string& already = "") {
  WireBuffer out;
  // Whatever the buffer held stays as it was.
  if (!already.empty()) {
    uint8_t* p = out.Reserve(already.size());
    std::memcpy(p, already.data(), already.size());
    out.Commit(p + already.size());
  }
  tcb_seq_record scratch;
  auto lookup = [&](uint64_t cookie, int family, int state) -> const tcb_seq_record* {
    return with_seq ? RecordFor(cookie, family, state, &scratch) : nullptr;
  };
  Written w{AppendConnectionWire(m, netns, name, fields, lookup, &out), ""};
  std::string all(out.view());
  EXPECT_EQ(all.substr(0, already.size()), already);
  w.bytes = all.substr(already.size());
  return w;
}

// Compares the two for one message; a failure shows both as text.
void ExpectSame(const nlmsghdr* m, uint64_t netns, const std::string& name, const ConnectionFields& fields,
                bool with_seq) {
  const std::string want = ViaMessage(m, netns, name, fields, with_seq);
  const Written got = ViaWire(m, netns, name, fields, with_seq, "earlier bytes");
  if (want.empty()) {
    EXPECT_EQ(got.outcome, WireOutcome::kMalformed);
    EXPECT_EQ(got.bytes, "");
    return;
  }
  ASSERT_EQ(got.outcome, WireOutcome::kEncoded);
  if (got.bytes == want) return;
  v1::ConnectionBatch a, b;
  a.ParseFromString(got.bytes);
  b.ParseFromString(want);
  ADD_FAILURE() << "written " << a.ShortDebugString() << "\n built   " << b.ShortDebugString();
}

std::vector<std::string> Messages(const std::string& recording) {
  std::vector<std::string> out;
  const std::string bytes = testing::ReadTestData(recording);
  EXPECT_FALSE(bytes.empty()) << recording;
  absl::StatusOr<DiagStreamSummary> s = WalkDiagStream(bytes, [&](const nlmsghdr* m) {
    out.emplace_back(reinterpret_cast<const char*>(m), m->nlmsg_len);
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s.status();
  return out;
}

// A message kept 4-byte aligned, as netlink's are.
class Message {
 public:
  explicit Message(const std::string& bytes) : words_((bytes.size() + 3) / 4 + 1) {
    std::memcpy(words_.data(), bytes.data(), bytes.size());
  }
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(words_.data()); }
  inet_diag_msg* diag() { return reinterpret_cast<inet_diag_msg*>(NLMSG_DATA(header())); }
  // Drops the attributes.
  void Bare() { header()->nlmsg_len = NLMSG_LENGTH(sizeof(inet_diag_msg)); }
  void Add(uint16_t type, const std::string& payload) {
    const size_t at = NLMSG_ALIGN(header()->nlmsg_len);
    const size_t len = NLA_HDRLEN + payload.size();
    words_.resize((at + NLA_ALIGN(len)) / 4 + 1);
    auto* bytes = reinterpret_cast<uint8_t*>(words_.data());
    nlattr a{static_cast<uint16_t>(len), type};
    std::memcpy(bytes + at, &a, sizeof(a));
    std::memcpy(bytes + at + NLA_HDRLEN, payload.data(), payload.size());
    header()->nlmsg_len = static_cast<uint32_t>(at + len);
  }

 private:
  std::vector<uint32_t> words_;
};

std::string TcpInfoBytes(size_t len, uint8_t fill) {
  std::string s(len, '\0');
  for (size_t i = 0; i < len; ++i) s[i] = static_cast<char>(fill + i);
  return s;
}

const std::vector<std::vector<std::string>>& Masks() {
  static const auto* masks = new std::vector<std::vector<std::string>>{
      {},
      {"local", "remote", "tcp_info.rtt_us", "tcp_info.pacing_rate_bytes_per_s", "tcp_info.options2"},
      {"family", "state", "seq", "netns_name"},
      {"tcp_info"},
      {"cookie", "timer", "memory", "congestion", "shutdown", "v6only", "mark", "tos"},
  };
  return *masks;
}

TEST(InetDiagWireTest, EveryRecordedMessageIsWhatTheParserBuilds) {
  size_t checked = 0;
  for (const char* recording : {"ss_tan.dump", "ss_tani.dump"}) {
    for (const std::string& m : Messages(recording)) {
      Message msg(m);
      for (const auto& mask : Masks()) {
        const ConnectionFields fields = Fields(mask);
        for (bool with_seq : {false, true}) {
          for (const char* name : {"", "lab-h1"}) {
            SCOPED_TRACE(absl::StrCat(recording, " mask ", mask.size(), " seq ", with_seq, " name '", name, "'"));
            ExpectSame(msg.header(), 4026531840u, name, fields, with_seq);
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 200u);
}

// The recorded dump with tcp_info, one IPv4 and one IPv6 socket with every
// attribute the kernel sent.
std::vector<Message> Sockets() {
  std::vector<Message> out;
  bool v4 = false, v6 = false;
  for (const std::string& m : Messages("ss_tani.dump")) {
    Message msg(m);
    const bool is_v4 = msg.diag()->idiag_family == AF_INET;
    if (msg.diag()->idiag_state != TCP_ESTABLISHED || (is_v4 ? v4 : v6)) continue;
    (is_v4 ? v4 : v6) = true;
    out.push_back(msg);
  }
  EXPECT_EQ(out.size(), 2u);
  return out;
}

TEST(InetDiagWireTest, OlderKernelsShorterTcpInfo) {
  for (Message base : Sockets()) {
    // The 2.6-era core, a 4.x-sized struct, one byte short of ours, a longer
    // one from a newer kernel.
    for (size_t len : {size_t{104}, size_t{169}, size_t{200}, sizeof(TcpInfoWire) - 1, sizeof(TcpInfoWire) + 24}) {
      Message m = base;
      m.Bare();
      m.Add(diag_attr::kInfo, TcpInfoBytes(len, static_cast<uint8_t>(len)));
      for (const auto& mask : Masks()) {
        SCOPED_TRACE(absl::StrCat("tcp_info of ", len, " bytes, mask of ", mask.size()));
        ExpectSame(m.header(), 1, "", Fields(mask), false);
      }
    }
  }
}

TEST(InetDiagWireTest, RepeatedAttributesKeepTheLastAsTheParserDoes) {
  for (Message m : Sockets()) {
    m.Add(diag_attr::kCong, std::string("bbr\0", 4));
    m.Add(diag_attr::kTos, "\x10");
    m.Add(diag_attr::kTclass, "\x20");
    m.Add(diag_attr::kTos, "");  // too short to count
    m.Add(diag_attr::kShutdown, "\x03");
    m.Add(diag_attr::kMark, std::string("\x01\x02\x03\x04", 4));
    m.Add(diag_attr::kMark, "\x09");  // too short
    m.Add(diag_attr::kV6Only, std::string("\0", 1));
    m.Add(diag_attr::kSkMemInfo, std::string(12, '\x05'));  // short: zero-filled
    m.Add(diag_attr::kMemInfo, std::string(16, '\x06'));
    m.Add(200, "an attribute from a newer kernel");
    for (const auto& mask : Masks()) {
      SCOPED_TRACE(absl::StrCat("mask of ", mask.size()));
      ExpectSame(m.header(), 1, "ns", Fields(mask), true);
    }
    // Bytes that are not printable ASCII become '?': the field must be UTF-8.
    m.Add(diag_attr::kCong, std::string("c\xff\x01\xc3\xa9\0x", 7));
    ExpectSame(m.header(), 1, "", ConnectionFields(), false);
    {
      v1::Connection c;
      ASSERT_TRUE(ParseInetDiagMessage(m.header(), 1, &c).ok());
      EXPECT_EQ(c.congestion(), "c????");
    }
    // An empty congestion name last clears it, as set_congestion("") does.
    m.Add(diag_attr::kCong, std::string("\0cubic", 6));
    ExpectSame(m.header(), 1, "", ConnectionFields(), false);
  }
}

TEST(InetDiagWireTest, RepeatedTcpInfoIsLeftToTheParser) {
  for (Message m : Sockets()) {
    m.Add(diag_attr::kInfo, TcpInfoBytes(104, 1));
    const Written w = ViaWire(m.header(), 1, "", ConnectionFields(), false, "kept");
    EXPECT_EQ(w.outcome, WireOutcome::kNeedsMessage);
    EXPECT_EQ(w.bytes, "") << "nothing appended";
    // Without tcp_info in the mask the repeat does not matter.
    ExpectSame(m.header(), 1, "", Fields({"local", "memory"}), false);
  }
}

TEST(InetDiagWireTest, LengthsPastTwoBytesMoveTheBody) {
  // A congestion name of 20,000 bytes makes the connection's length a
  // three-byte varint; a masked tcp_info of a few bytes a one-byte one.
  for (Message m : Sockets()) {
    m.Add(diag_attr::kCong, std::string(20000, 'x'));
    ExpectSame(m.header(), 1, std::string(300, 'n'), ConnectionFields(), true);
    ExpectSame(m.header(), 1, "", Fields({"tcp_info.state", "congestion"}), false);
  }
}

TEST(InetDiagWireTest, HeaderOddities) {
  for (Message m : Sockets()) {
    m.diag()->id.idiag_cookie[0] = 1;  // RecordFor has a record for it
    m.diag()->id.idiag_cookie[1] = 0;
    {
      v1::ConnectionBatch b;
      ASSERT_TRUE(b.ParseFromString(ViaMessage(m.header(), 1, "", ConnectionFields(), true)));
      ASSERT_TRUE(b.connections(0).has_seq()) << "the socket has a record";
    }
    m.diag()->idiag_timer = 3;  // time-wait: no sequence record
    {
      v1::ConnectionBatch b;
      ASSERT_TRUE(b.ParseFromString(ViaMessage(m.header(), 1, "", ConnectionFields(), true)));
      EXPECT_FALSE(b.connections(0).has_seq());
    }
    ExpectSame(m.header(), 1, "", ConnectionFields(), true);
    m.diag()->idiag_timer = 9;  // a timer kind we do not know
    m.diag()->idiag_state = 0;  // and no state
    ExpectSame(m.header(), 0, "", ConnectionFields(), true);
    m.diag()->idiag_state = 250;  // a state from the future
    m.diag()->id.idiag_sport = 0;
    ExpectSame(m.header(), 0, "", ConnectionFields(), true);
  }
}

TEST(InetDiagWireTest, RefusesWhatTheParserRefusesAndAppendsNothing) {
  for (Message m : Sockets()) {
    Message overrun = m;
    overrun.Add(diag_attr::kMark, "abcd");
    reinterpret_cast<uint8_t*>(overrun.header())[overrun.header()->nlmsg_len - 8] = 200;  // nla_len past the end
    ExpectSame(overrun.header(), 1, "", ConnectionFields(), false);
    EXPECT_EQ(ViaWire(overrun.header(), 1, "", ConnectionFields(), false, "kept").outcome, WireOutcome::kMalformed);

    Message family = m;
    family.diag()->idiag_family = AF_UNIX;
    ExpectSame(family.header(), 1, "", ConnectionFields(), false);
    EXPECT_EQ(ViaWire(family.header(), 1, "", ConnectionFields(), false).outcome, WireOutcome::kMalformed);

    Message shorter = m;
    shorter.header()->nlmsg_len = NLMSG_LENGTH(sizeof(inet_diag_msg)) - 1;
    EXPECT_EQ(ViaWire(shorter.header(), 1, "", ConnectionFields(), false).outcome, WireOutcome::kMalformed);

    Message trailing = m;  // fewer than an attribute header's bytes left: ignored
    trailing.header()->nlmsg_len += 2;
    ExpectSame(trailing.header(), 1, "", ConnectionFields(), false);
  }
}

TEST(InetDiagWireTest, BufferReleasesItsBytesAndKeepsItsRoom) {
  WireBuffer b;
  EXPECT_EQ(b.Release(), nullptr);
  uint8_t* p = b.Reserve(100000);
  std::memset(p, 'a', 100000);
  b.Commit(p + 100000);
  p = b.Reserve(10);  // may move the bytes
  std::memcpy(p, "0123456789", 10);
  b.Commit(p + 10);
  ASSERT_EQ(b.size(), 100010u);
  EXPECT_EQ(b.view().substr(99998), "aa0123456789");
  const size_t room = b.capacity();
  const size_t size = b.size();
  uint8_t* taken = b.Release();
  ASSERT_NE(taken, nullptr);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(taken), size), std::string(100000, 'a') + "0123456789");
  std::free(taken);
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.capacity(), 0u);
  // The next batch starts with the room the last one needed.
  b.Reserve(1);
  EXPECT_EQ(b.capacity(), room);
  p = b.Reserve(3);
  std::memcpy(p, "xyz", 3);
  b.Commit(p + 3);
  WireBuffer moved = std::move(b);
  EXPECT_EQ(moved.view(), "xyz");
  EXPECT_EQ(b.size(), 0u);  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(b.Release(), nullptr);
  moved.Truncate(1);
  EXPECT_EQ(moved.view(), "x");
}

}  // namespace
}  // namespace tcbscope::kernel
