// The netlink parser on recorded dumps (tests/data/*.dump, made by
// tests/data/make_recordings.py with the real ss -D), plus hand-altered
// copies for the cases a healthy kernel rarely produces.
#include "agent/kernel/inet_diag_parser.h"

#include <linux/inet_diag.h>
#include <linux/sock_diag.h>

#include <cstring>
#include <string>
#include <vector>

#include "agent/kernel/replay_source.h"
#include "agent/kernel/tcp_info_wire.h"
#include "gtest/gtest.h"
#include "tests/agent/test_data.h"

namespace tcbscope::kernel {
namespace {

std::string ReadData(const std::string& name) { return tcbscope::testing::ReadTestData(name); }

std::vector<v1::Connection> ParseAll(const std::string& bytes, DiagStreamSummary* summary = nullptr) {
  std::vector<v1::Connection> out;
  absl::StatusOr<DiagStreamSummary> s = WalkDiagStream(bytes, [&](const nlmsghdr* m) {
    v1::Connection c;
    absl::Status st = ParseInetDiagMessage(m, 42, &c);
    EXPECT_TRUE(st.ok()) << st;
    out.push_back(std::move(c));
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s.status();
  if (summary != nullptr && s.ok()) *summary = *s;
  return out;
}

const v1::Connection* Find(const std::vector<v1::Connection>& cs, v1::TcpState state, uint32_t lport,
                           const std::string& laddr) {
  for (const auto& c : cs) {
    if (c.state() == state && c.local().port() == lport && c.local().address() == laddr) return &c;
  }
  return nullptr;
}

TEST(InetDiagParserTest, RecordedDumpWithTcpInfo) {
  const std::string bytes = ReadData("ss_tani.dump");
  ASSERT_FALSE(bytes.empty());
  DiagStreamSummary summary;
  std::vector<v1::Connection> cs = ParseAll(bytes, &summary);
  EXPECT_EQ(summary.done_messages, 2u);  // ss -D: one DONE per family
  EXPECT_FALSE(summary.interrupted);

  // The receiver of 12345 unread bytes.
  const v1::Connection* rx = Find(cs, v1::TCP_STATE_ESTABLISHED, 45002, "127.0.0.1");
  ASSERT_NE(rx, nullptr);
  EXPECT_EQ(rx->family(), v1::FAMILY_INET);
  EXPECT_EQ(rx->recv_q(), 12345u);
  EXPECT_EQ(rx->netns(), 42u);
  EXPECT_NE(rx->inode(), 0u);
  EXPECT_NE(rx->cookie(), 0u);
  ASSERT_TRUE(rx->has_tcp_info());
  EXPECT_EQ(rx->tcp_info().bytes_received(), 12345u);
  EXPECT_EQ(rx->tcp_info().state(), v1::TCP_STATE_ESTABLISHED);
  EXPECT_GE(rx->tcp_info().kernel_bytes(), 104u);
  EXPECT_GT(rx->tcp_info().rtt_us(), 0u);
  EXPECT_FALSE(rx->congestion().empty());
  EXPECT_TRUE(rx->has_memory());
  EXPECT_GE(rx->memory().rmem_alloc_bytes(), 12345u);

  // Listener with three un-accepted connections: accept queue 3, backlog 8.
  const v1::Connection* l = Find(cs, v1::TCP_STATE_LISTEN, 45001, "127.0.0.1");
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->recv_q(), 3u);
  EXPECT_EQ(l->send_q(), 8u);
  EXPECT_EQ(l->remote().address(), "0.0.0.0");

  // IPv6: 100 bytes unread on [::1]:45003.
  const v1::Connection* rx6 = Find(cs, v1::TCP_STATE_ESTABLISHED, 45003, "::1");
  ASSERT_NE(rx6, nullptr);
  EXPECT_EQ(rx6->family(), v1::FAMILY_INET6);
  EXPECT_EQ(rx6->recv_q(), 100u);
  EXPECT_EQ(rx6->tcp_info().bytes_received(), 100u);
}

TEST(InetDiagParserTest, RecordedDumpWithoutTcpInfo) {
  std::vector<v1::Connection> cs = ParseAll(ReadData("ss_tan.dump"));
  const v1::Connection* rx = Find(cs, v1::TCP_STATE_ESTABLISHED, 45002, "127.0.0.1");
  ASSERT_NE(rx, nullptr);
  EXPECT_EQ(rx->recv_q(), 12345u);
  EXPECT_FALSE(rx->has_tcp_info());
}

// Rebuilds the first message carrying INET_DIAG_INFO with its tcp_info cut to
// `keep` bytes, as an older kernel would send it.
std::string ShortTcpInfoMessage(const std::string& stream, size_t keep) {
  size_t off = 0;
  while (off + sizeof(nlmsghdr) <= stream.size()) {
    nlmsghdr h;
    std::memcpy(&h, stream.data() + off, sizeof(h));
    if (h.nlmsg_type == SOCK_DIAG_BY_FAMILY) {
      size_t a = off + NLMSG_LENGTH(sizeof(inet_diag_msg));
      while (a + sizeof(nlattr) <= off + h.nlmsg_len) {
        nlattr na;
        std::memcpy(&na, stream.data() + a, sizeof(na));
        if (na.nla_type == INET_DIAG_INFO && na.nla_len > keep) {
          std::string msg = stream.substr(off, NLMSG_LENGTH(sizeof(inet_diag_msg)));
          nlattr info{static_cast<uint16_t>(sizeof(nlattr) + keep), INET_DIAG_INFO};
          msg.append(reinterpret_cast<const char*>(&info), sizeof(info));
          msg.append(stream.substr(a + sizeof(nlattr), keep));
          msg.resize(NLMSG_ALIGN(msg.size()), '\0');
          nlmsghdr nh = h;
          nh.nlmsg_len = static_cast<uint32_t>(msg.size());
          std::memcpy(msg.data(), &nh, sizeof(nh));
          return msg;
        }
        a += NLA_ALIGN(na.nla_len);
      }
    }
    off += NLMSG_ALIGN(h.nlmsg_len);
  }
  return "";
}

TEST(InetDiagParserTest, ShortTcpInfoIsZeroFilledAndMarked) {
  const std::string full = ReadData("ss_tani.dump");
  const std::string msg = ShortTcpInfoMessage(full, 104);  // Linux 2.6-era struct
  ASSERT_FALSE(msg.empty());
  v1::Connection c;
  ASSERT_TRUE(ParseInetDiagMessage(reinterpret_cast<const nlmsghdr*>(msg.data()), 0, &c).ok());
  ASSERT_TRUE(c.has_tcp_info());
  EXPECT_TRUE(c.tcp_info().truncated());
  EXPECT_EQ(c.tcp_info().kernel_bytes(), 104u);
  EXPECT_GT(c.tcp_info().snd_cwnd(), 0u);  // inside the 104 bytes: kept
  EXPECT_EQ(c.tcp_info().bytes_received(), 0u);
  EXPECT_EQ(c.tcp_info().snd_wnd(), 0u);
  const auto& absent = c.tcp_info().absent();
  EXPECT_NE(std::find(absent.begin(), absent.end(), "bytes_acked"), absent.end());
  EXPECT_NE(std::find(absent.begin(), absent.end(), "snd_wnd"), absent.end());
  EXPECT_EQ(std::find(absent.begin(), absent.end(), "rtt"), absent.end());

  // A full-length struct is not marked.
  const std::string whole = ShortTcpInfoMessage(full, sizeof(TcpInfoWire) - 1);
  v1::Connection d;
  ASSERT_TRUE(ParseInetDiagMessage(reinterpret_cast<const nlmsghdr*>(whole.data()), 0, &d).ok());
  EXPECT_TRUE(d.tcp_info().truncated());
  ASSERT_EQ(d.tcp_info().absent_size(), 1);
  EXPECT_EQ(d.tcp_info().absent(0), "ecn_bits");
}

TEST(InetDiagParserTest, ShortTcpInfoNamesOnlyTheAbsentFieldsAsked) {
  const std::string full = ReadData("ss_tani.dump");
  const std::string msg = ShortTcpInfoMessage(full, 104);
  ASSERT_FALSE(msg.empty());
  google::protobuf::FieldMask mask;
  mask.add_paths("tcp_info.snd_wnd");
  mask.add_paths("tcp_info.snd_cwnd");  // in the 104-byte core: never absent
  absl::StatusOr<ConnectionFields> fields = ConnectionFields::FromMask(mask);
  ASSERT_TRUE(fields.ok()) << fields.status();
  v1::Connection c;
  ASSERT_TRUE(ParseInetDiagMessage(reinterpret_cast<const nlmsghdr*>(msg.data()), 0, &c, *fields).ok());
  EXPECT_TRUE(c.tcp_info().truncated());
  EXPECT_EQ(c.tcp_info().kernel_bytes(), 104u);
  EXPECT_GT(c.tcp_info().snd_cwnd(), 0u);
  EXPECT_EQ(c.tcp_info().rtt_us(), 0u) << "not asked for";
  ASSERT_EQ(c.tcp_info().absent_size(), 1) << c.tcp_info().ShortDebugString();
  EXPECT_EQ(c.tcp_info().absent(0), "snd_wnd");

  // ecn_bits fills four proto fields: any of them names it.
  const std::string whole = ShortTcpInfoMessage(full, sizeof(TcpInfoWire) - 1);
  google::protobuf::FieldMask ecn;
  ecn.add_paths("tcp_info.accecn_fail_mode");
  absl::StatusOr<ConnectionFields> ecn_fields = ConnectionFields::FromMask(ecn);
  ASSERT_TRUE(ecn_fields.ok());
  v1::Connection d;
  ASSERT_TRUE(ParseInetDiagMessage(reinterpret_cast<const nlmsghdr*>(whole.data()), 0, &d, *ecn_fields).ok());
  ASSERT_EQ(d.tcp_info().absent_size(), 1);
  EXPECT_EQ(d.tcp_info().absent(0), "ecn_bits");
}

TEST(InetDiagParserTest, DumpInterruptedIsReported) {
  std::string bytes = ReadData("ss_tan.dump");
  nlmsghdr h;
  std::memcpy(&h, bytes.data(), sizeof(h));
  h.nlmsg_flags |= NLM_F_DUMP_INTR;
  std::memcpy(bytes.data(), &h, sizeof(h));
  DiagStreamSummary summary;
  ParseAll(bytes, &summary);
  EXPECT_TRUE(summary.interrupted);

  absl::StatusOr<std::unique_ptr<ReplaySource>> replay = ReplaySource::FromBytes(bytes, "intr");
  ASSERT_TRUE(replay.ok()) << replay.status();
  absl::StatusOr<DumpResult> r = (*replay)->Dump(DumpRequest{}, [](const nlmsghdr*) { return absl::OkStatus(); });
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->interrupted);
  EXPECT_GT(r->sockets, 0u);
}

TEST(InetDiagParserTest, ReplayAppliesTheStateMask) {
  absl::StatusOr<std::unique_ptr<ReplaySource>> replay = ReplaySource::FromBytes(ReadData("ss_tan.dump"), "x");
  ASSERT_TRUE(replay.ok());
  DumpRequest listen_only;
  listen_only.states = StateBit(v1::TCP_STATE_LISTEN);
  int listeners = 0;
  absl::StatusOr<DumpResult> r = (*replay)->Dump(listen_only, [&](const nlmsghdr* m) {
    EXPECT_EQ(InetDiagMessageState(m), v1::TCP_STATE_LISTEN);
    ++listeners;
    return absl::OkStatus();
  });
  ASSERT_TRUE(r.ok());
  EXPECT_GE(listeners, 3);  // 45001, 45002, [::1]:45003
}

TEST(InetDiagParserTest, GarbageIsRefusedWithAnOffset) {
  struct Case {
    std::string bytes;
    const char* expect;
  };
  std::string good = ReadData("ss_tan.dump");
  nlmsghdr tiny{};
  tiny.nlmsg_len = 4;
  nlmsghdr huge{};
  huge.nlmsg_len = 1 << 20;
  huge.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  nlmsghdr odd{};
  odd.nlmsg_len = sizeof(nlmsghdr);
  odd.nlmsg_type = 0x99;
  std::vector<Case> cases = {
      {"hello, world, this is not netlink", "left"},
      {good.substr(0, 10), "truncated netlink header"},
      {std::string(reinterpret_cast<const char*>(&tiny), sizeof(tiny)), "below the header size"},
      {std::string(reinterpret_cast<const char*>(&huge), sizeof(huge)), "only 16 left"},
      {std::string(reinterpret_cast<const char*>(&odd), sizeof(odd)), "unexpected netlink message type"},
      {good.substr(0, good.size() - 50), "left"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::unique_ptr<ReplaySource>> r = ReplaySource::FromBytes(c.bytes, "bad.dump");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.expect), absl::string_view::npos) << r.status();
    EXPECT_NE(r.status().message().find("bad.dump"), absl::string_view::npos) << r.status();
    EXPECT_EQ(r.status().message().find('\n'), absl::string_view::npos);
  }
  EXPECT_FALSE(ReplaySource::FromBytes("", "empty").ok());
}

TEST(InetDiagParserTest, AttributeOverrunIsAnError) {
  std::string msg = ShortTcpInfoMessage(ReadData("ss_tani.dump"), 104);
  ASSERT_FALSE(msg.empty());
  // Claim the attribute is longer than the message.
  nlattr na;
  const size_t a = NLMSG_LENGTH(sizeof(inet_diag_msg));
  std::memcpy(&na, msg.data() + a, sizeof(na));
  na.nla_len = 2000;
  std::memcpy(msg.data() + a, &na, sizeof(na));
  v1::Connection c;
  absl::Status s = ParseInetDiagMessage(reinterpret_cast<const nlmsghdr*>(msg.data()), 0, &c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("overruns"), absl::string_view::npos);
}

}  // namespace
}  // namespace tcbscope::kernel
