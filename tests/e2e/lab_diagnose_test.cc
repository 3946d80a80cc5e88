// `tcbscope diagnose` in the lab, one test per verdict, each made with a real
// fault: no listener, SYNs dropped on B, SYN-ACKs dropped leaving B, a
// listener with backlog 1 that never accepts, a reset from B's firewall,
// segments over 1,000 bytes dropped while A sends 1 MB, a receiver that stops
// reading, a half-open connection, a close never called, and the healthy
// case. Each asserts the verdict and evidence from both hosts.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tcbscope/v1/results.pb.h"
#include "testing/lab.h"
#include "testing/sockets.h"

namespace tcbscope {
namespace {

using testing::InNetns;
using testing::Lab;
using testing::SocketSet;

class LabDiagnoseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = Lab::Unavailable();
    if (!why.empty()) GTEST_SKIP() << "lab tests skipped: " << why;
    lab_ = std::make_unique<Lab>(2);
    ASSERT_TRUE(lab_->ok()) << lab_->error();
    ASSERT_TRUE(lab_->StartAgent(1, {"--allow-probe", "--probe-allow", "198.51.100.0/24"})) << lab_->error();
    ASSERT_TRUE(lab_->StartAgent(2)) << lab_->error();
  }
  void TearDown() override {
    stop_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    sockets_.reset();
    lab_.reset();
  }

  // A listener on host 2; with `accept`, a thread accepts (and holds) what comes.
  int Listen(int backlog, bool accept) {
    int port = 0;
    EXPECT_TRUE(InNetns(lab_->Netns(2), [&] { port = sockets_->Listen(Lab::V4(2), backlog, &lfd_); }));
    if (accept) {
      fcntl(lfd_, F_SETFL, fcntl(lfd_, F_GETFL) | O_NONBLOCK);
      acceptor_ = std::thread([this] {
        while (!stop_) {
          const int fd = accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
          if (fd >= 0) {
            accepted_.push_back(fd);
          } else {
            usleep(20000);
          }
        }
        for (int fd : accepted_) close(fd);
      });
    }
    return port;
  }
  // A connection from host 1 to the listener; returns A's fd (B's is accepted
  // here unless the acceptor thread runs).
  int Connect(int port, int* b = nullptr) {
    int a = -1;
    EXPECT_TRUE(InNetns(lab_->Netns(1), [&] { a = sockets_->Connect(Lab::V4(2), port); }));
    if (b != nullptr) *b = sockets_->Accept(lfd_);
    return a;
  }
  // Writes up to `max` bytes without blocking; returns how many went.
  static size_t Fill(int fd, size_t max) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    std::string chunk(65536, 'x');
    size_t sent = 0;
    for (int idle = 0; idle < 5 && sent < max;) {
      const ssize_t n = write(fd, chunk.data(), std::min(chunk.size(), max - sent));
      if (n > 0) {
        sent += static_cast<size_t>(n);
        idle = 0;
        continue;
      }
      ++idle;
      usleep(100000);
    }
    return sent;
  }

  v1::DiagnoseResult Diagnose(int port, bool probe, int* rc) {
    std::vector<std::string> args = {"diagnose", Lab::V4(1), absl::StrCat(Lab::V4(2), ":", port), "-o", "json"};
    if (probe) args.push_back("--probe");
    testing::CommandResult r = lab_->Cli(1, args, 60000);
    *rc = r.exit_code;
    v1::DiagnoseResult out;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &out).ok()) << r.out << r.err;
    return out;
  }

  static void ExpectVerdict(const v1::DiagnoseResult& d, const std::string& verdict) {
    EXPECT_EQ(d.verdict(), verdict) << d.ShortDebugString();
    bool a = false, b = false;
    for (const auto& e : d.evidence()) {
      a |= e.host() == "A";
      b |= e.host() == "B";
    }
    EXPECT_TRUE(a) << "no evidence from A: " << d.ShortDebugString();
    EXPECT_TRUE(b) << "no evidence from B: " << d.ShortDebugString();
    EXPECT_FALSE(d.summary().empty());
    EXPECT_FALSE(d.next_step().empty());
  }

  std::unique_ptr<Lab> lab_;
  std::unique_ptr<SocketSet> sockets_ = std::make_unique<SocketSet>();
  int lfd_ = -1;
  std::thread acceptor_;
  std::atomic<bool> stop_{false};
  std::vector<int> accepted_;
  std::vector<int> flood_;
};

TEST_F(LabDiagnoseTest, Reachable) {
  const int port = Listen(16, /*accept=*/true);
  Connect(port);
  int rc = 0;
  v1::DiagnoseResult d = Diagnose(port, true, &rc);
  ExpectVerdict(d, "REACHABLE");
  EXPECT_EQ(d.probe().outcome(), v1::ProbeResult::OUTCOME_CONNECTED);
  EXPECT_EQ(rc, 0);
}

TEST_F(LabDiagnoseTest, NoListener) {
  // Something listens on the port, but only on loopback: not where A connects.
  int other = -1, port = 0;
  ASSERT_TRUE(InNetns(lab_->Netns(2), [&] { port = sockets_->Listen("127.0.0.1", 4, &other); }));
  int rc = 0;
  v1::DiagnoseResult d = Diagnose(port, true, &rc);
  ExpectVerdict(d, "NO_LISTENER");
  EXPECT_NE(d.summary().find("127.0.0.1"), std::string::npos) << d.summary();
  EXPECT_EQ(d.probe().outcome(), v1::ProbeResult::OUTCOME_REFUSED);
  EXPECT_EQ(rc, 1);
}

TEST_F(LabDiagnoseTest, SynUnanswered) {
  const int port = Listen(16, true);
  ASSERT_EQ(lab_->Script({"fault", "h2", "drop-syn"}).exit_code, 0);
  int rc = 0;
  v1::DiagnoseResult d = Diagnose(port, true, &rc);
  ExpectVerdict(d, "SYN_UNANSWERED");
  EXPECT_EQ(d.probe().outcome(), v1::ProbeResult::OUTCOME_TIMED_OUT);
  EXPECT_FALSE(d.limits().empty()) << "it cannot tell a path drop from B's own firewall";
  EXPECT_EQ(rc, 1);
}

TEST_F(LabDiagnoseTest, HandshakeIncomplete) {
  const int port = Listen(16, true);
  ASSERT_EQ(lab_->Script({"fault", "h2", "drop-synack"}).exit_code, 0);
  int rc = 0;
  v1::DiagnoseResult d = Diagnose(port, true, &rc);
  ExpectVerdict(d, "HANDSHAKE_INCOMPLETE");
  EXPECT_EQ(rc, 1);
}

TEST_F(LabDiagnoseTest, AcceptQueueFull) {
  const int port = Listen(1, /*accept=*/false);
  // Flood it: the queue fills, then the kernel drops further SYNs.
  ASSERT_TRUE(InNetns(lab_->Netns(1), [&] {
    for (int i = 0; i < 10; ++i) {
      const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(static_cast<uint16_t>(port));
      sa.sin_addr.s_addr = htonl(0xc6336402);  // 198.51.100.2
      connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
      flood_.push_back(fd);
    }
  }));
  usleep(500000);
  int rc = 0;
  v1::DiagnoseResult d = Diagnose(port, true, &rc);
  ExpectVerdict(d, "ACCEPT_QUEUE_FULL");
  for (int fd : flood_) close(fd);
  EXPECT_EQ(rc, 1);
}

TEST_F(LabDiagnoseTest, ResetSeenFromAFirewall) {
  const int port = Listen(16, true);
  ASSERT_EQ(lab_->Script({"fault", "h2", "reject-rst"}).exit_code, 0);
  int rc = 0;
  v1::DiagnoseResult d = Diagnose(port, true, &rc);
  ExpectVerdict(d, "RESET_SEEN");
  EXPECT_NE(d.summary().find("sent no reset"), std::string::npos) << d.summary();
  EXPECT_EQ(rc, 1);
}

TEST_F(LabDiagnoseTest, MtuBlackhole) {
  const int port = Listen(16, true);
  const int a = Connect(port);
  sockets_->WriteBytes(a, 200);  // small segments pass
  usleep(200000);
  ASSERT_EQ(lab_->Script({"fault", "h2", "drop-larger-than", "1000"}).exit_code, 0);
  Fill(a, 1 << 20);  // 1 MB: its full-size segments vanish
  usleep(1000000);
  int rc = 0;
  v1::DiagnoseResult d = Diagnose(port, false, &rc);
  ExpectVerdict(d, "MTU_BLACKHOLE");
  EXPECT_EQ(rc, 1);
}

TEST_F(LabDiagnoseTest, ReceiverNotReading) {
  const int port = Listen(16, false);
  int b = -1;
  const int a = Connect(port, &b);  // B accepts and never reads
  Fill(a, 64 << 20);
  usleep(500000);
  int rc = 0;
  v1::DiagnoseResult d = Diagnose(port, false, &rc);
  ExpectVerdict(d, "RECEIVER_NOT_READING");
  EXPECT_EQ(rc, 1);
}

TEST_F(LabDiagnoseTest, HalfOpen) {
  const int port = Listen(16, false);
  int b = -1;
  const int a = Connect(port, &b);
  ASSERT_EQ(lab_->Script({"fault", "h2", "drop-all"}).exit_code, 0);
  testing::CommandResult k =
      lab_->RunIn(2, {"ss", "-K", "dport", "=", absl::StrCat(":", SocketSet::LocalPort(a))});
  ASSERT_EQ(k.exit_code, 0) << k.err;
  int rc = 0;
  v1::DiagnoseResult d = Diagnose(port, false, &rc);
  ExpectVerdict(d, "HALF_OPEN");
  EXPECT_EQ(rc, 1);
}

TEST_F(LabDiagnoseTest, CloseNotCalled) {
  const int port = Listen(16, false);
  int b = -1;
  const int a = Connect(port, &b);
  sockets_->Close(a);  // A closes; B's application never does
  usleep(300000);
  int rc = 0;
  v1::DiagnoseResult d = Diagnose(port, false, &rc);
  ExpectVerdict(d, "CLOSE_NOT_CALLED");
  EXPECT_EQ(rc, 1);
}

TEST_F(LabDiagnoseTest, ProbeIsOffUnlessAllowed) {
  // Host 2's agent runs without --allow-probe: asking it is refused, clearly.
  testing::CommandResult r =
      lab_->Cli(1, {"diagnose", Lab::V4(2), absl::StrCat(Lab::V4(1), ":7411"), "--probe"}, 30000);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("--allow-probe"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tcbscope
