// End to end across two "hosts": network namespaces made by the lab script,
// a real agent in each, real TCP between them with real faults (nft), and
// `tcbscope correlate` run inside host 1 — asserting the finding codes and
// their evidence from each host.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "absl/strings/str_split.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tcbscope/v1/inspector.pb.h"
#include "tcbscope/v1/results.pb.h"
#include "testing/lab.h"
#include "testing/sockets.h"

namespace tcbscope {
namespace {

using testing::InNetns;
using testing::Lab;
using testing::SocketSet;

class LabCorrelateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = Lab::Unavailable();
    if (!why.empty()) GTEST_SKIP() << "lab tests skipped: " << why;
    lab_ = std::make_unique<Lab>(2);
    ASSERT_TRUE(lab_->ok()) << lab_->error();
    ASSERT_TRUE(lab_->StartAgent(1)) << lab_->error();
    ASSERT_TRUE(lab_->StartAgent(2)) << lab_->error();
  }
  void TearDown() override {
    sockets_.reset();
    if (lab_) {
      const std::string prefix = lab_->prefix();
      lab_.reset();  // down, also after a failed assertion
      testing::CommandResult ns = testing::RunCommand({"ip", "netns", "list"});
      EXPECT_EQ(ns.out.find(prefix + "-"), std::string::npos) << "lab left namespaces behind:\n" << ns.out;
    }
  }

  // `tcbscope correlate` from host 1, as JSON. Sets *exit_code. The agents
  // listen on the hosts' IPv4 addresses; the connections compared may be of
  // either family.
  v1::CorrelateResult Correlate(bool /*v6*/, int* exit_code, const std::string& filter = "") {
    std::vector<std::string> args = {"correlate", Lab::V4(1), Lab::V4(2), "-o", "json"};
    if (!filter.empty()) args.push_back(filter);
    testing::CommandResult r = lab_->Cli(1, args);
    *exit_code = r.exit_code;
    v1::CorrelateResult out;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &out).ok()) << r.out << r.err;
    return out;
  }

  // The table (made from compact TCBs, not the messages JSON shows) says
  // what `r` says: the same pairs and unpaired ends with the same finding
  // codes, and the same counts. Call only when nothing is changing: the two
  // are separate snapshots.
  void ExpectTableAgrees(const v1::CorrelateResult& r, const std::string& filter = "") {
    std::vector<std::string> args = {"correlate", Lab::V4(1), Lab::V4(2)};
    if (!filter.empty()) args.push_back(filter);
    testing::CommandResult t = lab_->Cli(1, args);
    EXPECT_EQ(t.exit_code, r.findings_error() > 0 ? 1 : 0) << t.err;
    const std::vector<std::string> lines = absl::StrSplit(t.out, '\n');
    auto endpoint = [](const v1::Endpoint& e) {
      return e.address().find(':') == std::string::npos ? absl::StrCat(e.address(), ":", e.port())
                                                        : absl::StrCat("[", e.address(), "]:", e.port());
    };
    auto codes = [](const google::protobuf::RepeatedPtrField<v1::Finding>& fs) {
      std::string c;
      for (const auto& f : fs) absl::StrAppend(&c, c.empty() ? "" : ",", f.code());
      return c.empty() ? std::string("-") : c;
    };
    // The row that starts with `start` ends with `last` (its Findings column).
    auto row_ends_with = [&](const std::string& start, const std::string& last) {
      for (const std::string& l : lines) {
        if (absl::StartsWith(l, start) && absl::EndsWith(absl::StripTrailingAsciiWhitespace(l), " " + last)) return true;
      }
      return false;
    };
    for (const auto& p : r.pairs()) {
      EXPECT_TRUE(row_ends_with(endpoint(p.a().local()) + " ", codes(p.findings())))
          << p.ShortDebugString() << "\n" << t.out;
    }
    for (const auto& [list, side] : {std::pair{&r.only_a(), "only_a"}, std::pair{&r.only_b(), "only_b"}}) {
      for (const auto& u : *list) {
        bool found = false;
        for (const std::string& l : lines) {
          found |= absl::StartsWith(l, side) && absl::StrContains(l, " " + endpoint(u.connection().local()) + " ") &&
                   absl::EndsWith(absl::StripTrailingAsciiWhitespace(l), " " + codes(u.findings()));
        }
        EXPECT_TRUE(found) << u.ShortDebugString() << "\n" << t.out;
      }
    }
    EXPECT_NE(t.out.find(absl::StrFormat("\n%d pairs, %d only_a, %d only_b; findings: %d error, %d warning, %d info;",
                                         r.pairs_size(), r.only_a_size(), r.only_b_size(), r.findings_error(),
                                         r.findings_warning(), r.findings_info())),
              std::string::npos)
        << r.ShortDebugString() << "\n" << t.out;
  }

  // A listener in host 2 and a connection to it from host 1.
  struct Conn {
    int a = -1, b = -1;  // host 1's and host 2's fds
    int a_port = 0, b_port = 0;
  };
  Conn Connect(bool v6) {
    Conn c;
    int lfd = -1;
    EXPECT_TRUE(InNetns(lab_->Netns(2), [&] { c.b_port = sockets_->Listen(v6 ? Lab::V6(2) : Lab::V4(2), 8, &lfd); }));
    EXPECT_TRUE(InNetns(lab_->Netns(1), [&] { c.a = sockets_->Connect(v6 ? Lab::V6(2) : Lab::V4(2), c.b_port); }));
    c.b = sockets_->Accept(lfd);
    c.a_port = SocketSet::LocalPort(c.a);
    return c;
  }

  static const v1::ConnectionPair* FindPair(const v1::CorrelateResult& r, int a_port) {
    for (const auto& p : r.pairs()) {
      if (static_cast<int>(p.a().local().port()) == a_port) return &p;
    }
    return nullptr;
  }
  static bool Has(const google::protobuf::RepeatedPtrField<v1::Finding>& fs, const std::string& code,
                  const v1::Finding** out = nullptr) {
    for (const auto& f : fs) {
      if (f.code() == code) {
        if (out) *out = &f;
        return true;
      }
    }
    return false;
  }
  static bool EvidenceFrom(const v1::Finding& f, const std::string& host) {
    for (const auto& e : f.evidence()) {
      if (e.host() == host) return true;
    }
    return false;
  }

  void Healthy(bool v6) {
    Conn c = Connect(v6);
    sockets_->WriteBytes(c.a, 100000);
    std::string buf(200000, '\0');
    size_t got = 0;
    while (got < 100000) got += static_cast<size_t>(read(c.b, buf.data(), buf.size()));
    sockets_->WriteBytes(c.b, 5000);
    got = 0;
    while (got < 5000) got += static_cast<size_t>(read(c.a, buf.data(), buf.size()));
    usleep(400000);  // quiet for longer than skew + margin: byte counts are final
    int rc = 0;
    v1::CorrelateResult r = Correlate(v6, &rc);
    const v1::ConnectionPair* p = FindPair(r, c.a_port);
    ASSERT_NE(p, nullptr) << r.ShortDebugString();
    EXPECT_EQ(static_cast<int>(p->b().local().port()), c.b_port);
    EXPECT_TRUE(p->findings().empty()) << p->ShortDebugString();
    ASSERT_EQ(p->directions_size(), 2);
    EXPECT_EQ(p->directions(0).sender_bytes_acked(), 100000u);
    EXPECT_EQ(p->directions(0).receiver_bytes_received(), 100000u);
    EXPECT_EQ(p->directions(1).sender_bytes_acked(), 5000u);
    EXPECT_EQ(p->directions(1).receiver_bytes_received(), 5000u);
    EXPECT_EQ(r.findings_error(), 0u);
    EXPECT_EQ(rc, 0);
    ExpectTableAgrees(r);
  }

  void HalfOpen(bool v6) {
    Conn c = Connect(v6);
    ASSERT_EQ(lab_->Script({"fault", "h2", "drop-all"}).exit_code, 0);
    // Abort B's end inside host 2; its reset is dropped, so A never learns.
    testing::CommandResult k = lab_->RunIn(2, {"ss", "-K", "dport", "=", absl::StrCat(":", c.a_port)});
    ASSERT_EQ(k.exit_code, 0) << k.err;
    int rc = 0;
    v1::CorrelateResult r = Correlate(v6, &rc);
    EXPECT_EQ(FindPair(r, c.a_port), nullptr);
    const v1::UnpairedConnection* u = nullptr;
    for (const auto& x : r.only_a()) {
      if (static_cast<int>(x.connection().local().port()) == c.a_port) u = &x;
    }
    ASSERT_NE(u, nullptr) << r.ShortDebugString();
    EXPECT_EQ(u->connection().state(), v1::TCP_STATE_ESTABLISHED);
    const v1::Finding* f = nullptr;
    ASSERT_TRUE(Has(u->findings(), "HALF_OPEN", &f)) << u->ShortDebugString();
    EXPECT_TRUE(EvidenceFrom(*f, "A"));
    EXPECT_TRUE(EvidenceFrom(*f, "B"));
    EXPECT_EQ(rc, 1);
    ExpectTableAgrees(r);
  }

  std::unique_ptr<Lab> lab_;
  std::unique_ptr<SocketSet> sockets_ = std::make_unique<SocketSet>();
};

TEST_F(LabCorrelateTest, HealthyIPv4) { Healthy(false); }
TEST_F(LabCorrelateTest, HealthyIPv6) { Healthy(true); }
TEST_F(LabCorrelateTest, HalfOpenIPv4) { HalfOpen(false); }
TEST_F(LabCorrelateTest, HalfOpenIPv6) { HalfOpen(true); }

TEST_F(LabCorrelateTest, ReceiverNotReading) {
  Conn c = Connect(false);
  fcntl(c.a, F_SETFL, fcntl(c.a, F_GETFL) | O_NONBLOCK);
  std::string chunk(65536, 'x');
  // Write until the send buffer stays full: B never reads.
  for (int idle = 0; idle < 5;) {
    const ssize_t n = write(c.a, chunk.data(), chunk.size());
    if (n > 0) {
      idle = 0;
      continue;
    }
    ++idle;
    usleep(100000);
  }
  int rc = 0;
  v1::CorrelateResult r;
  const v1::ConnectionPair* p = nullptr;
  // The zero window shows once B's buffer is full and A starts probing.
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        r = Correlate(false, &rc);
        p = FindPair(r, c.a_port);
        return p != nullptr && Has(p->findings(), "ZERO_WINDOW");
      },
      10000))
      << r.ShortDebugString();
  const v1::Finding* f = nullptr;
  ASSERT_TRUE(Has(p->findings(), "RECEIVER_NOT_READING", &f));
  EXPECT_EQ(f->severity(), v1::SEVERITY_ERROR);
  bool b_recv_q = false, a_send_q = false;
  for (const auto& e : f->evidence()) {
    b_recv_q |= e.host() == "B" && e.field() == "recv_q" && e.value() != "0";
    a_send_q |= e.host() == "A" && e.field() == "send_q" && e.value() != "0";
  }
  EXPECT_TRUE(b_recv_q && a_send_q) << f->ShortDebugString();
  EXPECT_GT(p->b().recv_q(), 0u);
  EXPECT_GT(p->a().send_q(), 0u);
  EXPECT_EQ(rc, 1);
  ExpectTableAgrees(r);
}

TEST_F(LabCorrelateTest, SynUnanswered) {
  int lfd = -1, port = 0;
  ASSERT_TRUE(InNetns(lab_->Netns(2), [&] { port = sockets_->Listen(Lab::V4(2), 8, &lfd); }));
  ASSERT_EQ(lab_->Script({"fault", "h2", "drop-syn"}).exit_code, 0);
  int fd = -1;
  ASSERT_TRUE(InNetns(lab_->Netns(1), [&] {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(0xc6336402);  // 198.51.100.2
    connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  }));
  usleep(300000);
  int rc = 0;
  v1::CorrelateResult r = Correlate(false, &rc);
  const v1::UnpairedConnection* u = nullptr;
  for (const auto& x : r.only_a()) {
    if (static_cast<int>(x.connection().remote().port()) == port) u = &x;
  }
  ASSERT_NE(u, nullptr) << r.ShortDebugString();
  EXPECT_EQ(u->connection().state(), v1::TCP_STATE_SYN_SENT);
  const v1::Finding* f = nullptr;
  ASSERT_TRUE(Has(u->findings(), "SYN_UNANSWERED", &f));
  EXPECT_TRUE(EvidenceFrom(*f, "A"));
  EXPECT_TRUE(EvidenceFrom(*f, "B"));
  EXPECT_EQ(rc, 1);
  close(fd);
}

// The live stream across the lab: a peer that drops everything makes host 1
// retransmit; a connect to a closed port on host 2 is answered with a reset
// that host 2 sends and host 1 receives. One watch follows both agents.
TEST_F(LabCorrelateTest, WatchShowsRetransmitsAndResets) {
  testing::CommandResult info = lab_->Cli(1, {"info", Lab::V4(1), "-o", "json"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  const bool bpf = info.out.find("EVENT_SOURCE_BPF") != std::string::npos;
  if (!bpf) {
    ASSERT_NE(info.out.find("not built"), std::string::npos)
        << "root and BPF built in, but the agent polls:\n" << info.out;
    GTEST_SKIP() << "resets are seen only with BPF events; this agent was built without them";
  }
  Conn c = Connect(false);
  testing::CommandResult out;
  std::thread watcher([&] {
    out = lab_->Cli(1, {"watch", Lab::V4(1), Lab::V4(2), "-a", "-o", "json", "--duration", "4s"});
  });
  usleep(1000000);
  ASSERT_EQ(lab_->Script({"fault", "h2", "drop-all", "--port", std::to_string(c.b_port)}).exit_code, 0);
  sockets_->WriteBytes(c.a, 5000);  // never acknowledged: retransmitted
  int refused = -1;
  ASSERT_TRUE(InNetns(lab_->Netns(1), [&] {
    refused = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(9);  // nothing listens there
    sa.sin_addr.s_addr = htonl(0xc6336402);  // 198.51.100.2
    connect(refused, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  }));
  watcher.join();
  close(refused);
  bool retransmit = false, reset_sent = false, reset_received = false;
  for (absl::string_view line : absl::StrSplit(out.out, '\n', absl::SkipEmpty())) {
    v1::WatchLine w;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(std::string(line), &w).ok()) << line;
    if (!w.event().has_segment()) continue;
    const v1::SegmentEvent& g = w.event().segment();
    const v1::Connection& conn = g.connection();
    const bool host1 = w.host().rfind(Lab::V4(1), 0) == 0;
    if (g.kind() == v1::SegmentEvent::RETRANSMIT && host1 && static_cast<int>(conn.local().port()) == c.a_port) {
      retransmit = true;
    }
    if (g.kind() == v1::SegmentEvent::RESET_SENT && !host1 && conn.local().port() == 9) {
      reset_sent = true;
      EXPECT_EQ(g.reason(), "NO_SOCKET") << line;
      EXPECT_EQ(conn.remote().address(), Lab::V4(1)) << line;
    }
    if (g.kind() == v1::SegmentEvent::RESET_RECEIVED && host1 && conn.remote().port() == 9) reset_received = true;
  }
  EXPECT_TRUE(retransmit) << out.out;
  EXPECT_TRUE(reset_sent) << out.out;
  EXPECT_TRUE(reset_received) << out.out;
}

// `tcbscope compare` from host 1 as JSON.
v1::CompareResult CompareIn(const Lab& lab, const std::vector<std::string>& extra, int* exit_code) {
  std::vector<std::string> args = {"compare", Lab::V4(1), Lab::V4(2), "-o", "json"};
  args.insert(args.end(), extra.begin(), extra.end());
  testing::CommandResult r = lab.Cli(1, args, 60000);
  *exit_code = r.exit_code;
  v1::CompareResult out;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &out).ok()) << r.out << r.err;
  return out;
}

bool SeqAvailable(const Lab& lab) {
  testing::CommandResult info = lab.Cli(1, {"info", Lab::V4(1), "-o", "json"});
  return info.out.find("SEQ_SOURCE_BPF") != std::string::npos;
}

// Everything host 2 receives on the connection's port is dropped while host
// 1 sends: over several samples A keeps retransmitting and B's rcv_nxt never
// moves.
TEST_F(LabCorrelateTest, CompareFindsPathLossAcrossSamples) {
  if (!SeqAvailable(*lab_)) GTEST_SKIP() << "the lab agents have no BPF sequence numbers";
  Conn c = Connect(false);
  ASSERT_EQ(lab_->Script({"fault", "h2", "drop-all", "--port", std::to_string(c.b_port)}).exit_code, 0);
  sockets_->WriteBytes(c.a, 20000);
  int rc = 0;
  v1::CompareResult r = CompareIn(*lab_, {absl::StrCat("dport = :", c.b_port), "--samples", "4", "--interval",
                                          "700ms"}, &rc);
  ASSERT_EQ(r.pairs_size(), 1) << r.ShortDebugString();
  const v1::PairSamples& ps = r.pairs(0);
  ASSERT_EQ(ps.samples_size(), 4);
  const v1::Finding* loss = nullptr;
  for (const auto& f : ps.findings()) {
    if (f.code() == "PATH_LOSS") loss = &f;
  }
  ASSERT_NE(loss, nullptr) << ps.ShortDebugString();
  EXPECT_TRUE(EvidenceFrom(*loss, "A"));
  EXPECT_TRUE(EvidenceFrom(*loss, "B"));
  EXPECT_EQ(rc, 1);
}

// A NAT on host 1's output path: A connects to 198.51.100.200:80, which is
// rewritten to host 2's listener. The addresses no longer mirror; the
// initial sequence numbers still do.
TEST_F(LabCorrelateTest, NatIsSeenThroughByInitialSequenceNumbers) {
  if (!SeqAvailable(*lab_)) GTEST_SKIP() << "the lab agents have no BPF sequence numbers";
  int lfd = -1, port = 0;
  ASSERT_TRUE(InNetns(lab_->Netns(2), [&] { port = sockets_->Listen(Lab::V4(2), 8, &lfd); }));
  const std::string rules = absl::StrCat(
      "table ip tcbscope_nat_test {\n chain out {\n  type nat hook output priority -100;\n"
      "  ip daddr 198.51.100.200 tcp dport 80 dnat to ", Lab::V4(2), ":", port, "\n }\n}\n");
  char path[] = "/tmp/tcbscope-nat-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, rules.data(), rules.size()), static_cast<ssize_t>(rules.size()));
  close(fd);
  testing::CommandResult nft = lab_->RunIn(1, {"nft", "-f", path});
  unlink(path);
  ASSERT_EQ(nft.exit_code, 0) << nft.err;
  int a = -1;
  ASSERT_TRUE(InNetns(lab_->Netns(1), [&] { a = sockets_->Connect("198.51.100.200", 80); }));
  const int b = sockets_->Accept(lfd);
  sockets_->WriteBytes(a, 3000);
  sockets_->WriteBytes(b, 700);
  usleep(300000);
  int rc = 0;
  v1::CorrelateResult cr = Correlate(false, &rc, absl::StrCat("dport = :80 or sport = :", port));
  const v1::ConnectionPair* pair = nullptr;
  for (const auto& p : cr.pairs()) {
    if (p.a().remote().address() == "198.51.100.200") pair = &p;
  }
  ASSERT_NE(pair, nullptr) << cr.ShortDebugString();
  EXPECT_EQ(pair->matched_by(), "isn");
  EXPECT_TRUE(pair->addresses_translated());
  // Both views: A believes it talks to .200:80; B has the real listener.
  EXPECT_EQ(pair->a().remote().port(), 80u);
  EXPECT_EQ(pair->b().local().address(), Lab::V4(2));
  EXPECT_EQ(static_cast<int>(pair->b().local().port()), port);
  EXPECT_TRUE(pair->findings().empty()) << pair->ShortDebugString();
  // The person-readable table says so too.
  testing::CommandResult table = lab_->Cli(1, {"correlate", Lab::V4(1), Lab::V4(2), absl::StrCat("sport = :", port)});
  EXPECT_NE(table.out.find("NAT (paired by initial sequence numbers)"), std::string::npos) << table.out;
}

TEST_F(LabCorrelateTest, CloseNotCalled) {
  Conn c = Connect(false);
  sockets_->Close(c.a);  // A closes; B's application never does
  int rc = 0;
  v1::CorrelateResult r;
  const v1::ConnectionPair* p = nullptr;
  ASSERT_TRUE(testing::WaitFor([&] {
    r = Correlate(false, &rc);
    p = FindPair(r, c.a_port);
    return p != nullptr && p->a().state() == v1::TCP_STATE_FIN_WAIT2;
  })) << r.ShortDebugString();
  EXPECT_EQ(p->b().state(), v1::TCP_STATE_CLOSE_WAIT);
  const v1::Finding* f = nullptr;
  ASSERT_TRUE(Has(p->findings(), "CLOSE_NOT_CALLED", &f)) << p->ShortDebugString();
  bool on_b = false;
  for (const auto& e : f->evidence()) on_b |= e.host() == "B" && e.field() == "state" && e.value() == "CLOSE-WAIT";
  EXPECT_TRUE(on_b) << f->ShortDebugString();
  EXPECT_TRUE(EvidenceFrom(*f, "A"));
  ExpectTableAgrees(r);
}

TEST_F(LabCorrelateTest, TableOutputForAPerson) {
  Conn c = Connect(false);
  testing::CommandResult t = lab_->Cli(1, {"correlate", Lab::V4(1), Lab::V4(2)});
  EXPECT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find(absl::StrCat(Lab::V4(1), ":", c.a_port)), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("1 pairs, 0 only_a, 0 only_b"), std::string::npos) << t.out;
}

}  // namespace
}  // namespace tcbscope
