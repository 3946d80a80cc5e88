// Sequence numbers from BPF iter/tcp, end to end on loopback: the agent's
// snd_una/snd_nxt/rcv_nxt agree with the bytes this test wrote and read; a
// busy healthy connection raises no SEQ_DESYNC over 100 samples; a stopped
// receiver's unread region equals its recv_q; the SVG draws the numbers to
// scale. Runs `tcbscope compare` as a user would.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/seq_space.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tcbscope/v1/results.pb.h"
#include "testing/sockets.h"
#include "testing/subprocess.h"

namespace tcbscope {
namespace {

using testing::AgentProcess;
using testing::SocketSet;

class SeqE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    agent_ = std::make_unique<AgentProcess>(std::vector<std::string>{"--seq", "bpf"});
    if (!agent_->ok()) {
      if (geteuid() != 0) GTEST_SKIP() << "BPF iter/tcp needs root (or CAP_BPF and CAP_PERFMON)";
      if (agent_->Log().find("not built") != std::string::npos) GTEST_SKIP() << "agent built without BPF programs";
    }
    ASSERT_TRUE(agent_->ok()) << agent_->error() << agent_->Log();
  }

  // `tcbscope compare` of the agent with itself, as JSON.
  v1::CompareResult Compare(int port, std::vector<std::string> extra, int* exit_code = nullptr) {
    std::vector<std::string> argv = {testing::CliBinary(), "compare", agent_->address(), agent_->address(),
                                     "-o",  "json", "dport", "=", absl::StrCat(":", port)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    testing::CommandResult r = testing::RunCommand(argv, 60000);
    if (exit_code != nullptr) *exit_code = r.exit_code;
    v1::CompareResult out;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &out).ok()) << r.out << r.err;
    return out;
  }

  std::unique_ptr<AgentProcess> agent_;
  SocketSet sockets_;
};

void ReadExactly(int fd, size_t n) {
  std::vector<char> buf(65536);
  size_t got = 0;
  while (got < n) {
    const ssize_t r = read(fd, buf.data(), std::min(buf.size(), n - got));
    ASSERT_GT(r, 0);
    got += static_cast<size_t>(r);
  }
}

TEST_F(SeqE2eTest, NumbersAgreeWithTheTestsOwnTraffic) {
  int lfd = -1;
  const int port = sockets_.Listen("127.0.0.1", 4, &lfd);
  const int c = sockets_.Connect("127.0.0.1", port);
  const int s = sockets_.Accept(lfd);
  sockets_.WriteBytes(c, 100000);
  ReadExactly(s, 30000);
  sockets_.WriteBytes(s, 500);
  usleep(300000);  // everything acknowledged, the connection quiet
  v1::CompareResult r = Compare(port, {});
  ASSERT_EQ(r.pairs_size(), 1) << r.ShortDebugString();
  const v1::ConnectionPair& p = r.pairs(0).samples(0);
  ASSERT_TRUE(p.a().has_seq() && p.b().has_seq()) << p.ShortDebugString();
  const v1::SequenceSpace& a = p.a().seq();  // the client, active opener
  const v1::SequenceSpace& b = p.b().seq();
  EXPECT_EQ(p.a().local().port(), static_cast<uint32_t>(SocketSet::LocalPort(c)));
  // A -> B: 100,000 bytes sent and acknowledged, 30,000 read.
  EXPECT_EQ(a.snd_una(), a.snd_nxt());
  EXPECT_EQ(a.snd_nxt(), a.write_seq());
  EXPECT_EQ(b.rcv_nxt(), a.snd_nxt());
  EXPECT_EQ(SeqDiff(b.rcv_nxt(), b.copied_seq()), 70000);
  EXPECT_EQ(p.b().recv_q(), 70000u);
  EXPECT_EQ(a.bytes_acked(), 100001u) << "the data and the SYN";
  EXPECT_EQ(b.bytes_received(), 100000u);
  // B -> A: 500 bytes sent, none read.
  EXPECT_EQ(a.rcv_nxt(), b.snd_nxt());
  EXPECT_EQ(SeqDiff(a.rcv_nxt(), a.copied_seq()), 500);
  // The handshake, from both ends.
  std::optional<InitialSequence> ia = InitialSequenceOf(p.a()), ib = InitialSequenceOf(p.b());
  ASSERT_TRUE(ia && ib);
  EXPECT_EQ(ia->iss_if_active, ib->irs);
  EXPECT_EQ(ib->iss_if_passive, ia->irs);
  ASSERT_EQ(p.directions_size(), 2);
  EXPECT_TRUE(p.directions(0).exact());
  EXPECT_EQ(p.directions(0).seq_unread(), 70000);
  EXPECT_EQ(p.directions(0).seq_in_flight(), 0);
  EXPECT_TRUE(p.findings().empty() || p.findings(0).code() == "RECEIVER_NOT_READING") << p.ShortDebugString();
}

TEST_F(SeqE2eTest, BusyHealthyConnectionHasNoSeqDesyncOver100Samples) {
  int lfd = -1;
  const int port = sockets_.Listen("127.0.0.1", 4, &lfd);
  const int c = sockets_.Connect("127.0.0.1", port);
  const int s = sockets_.Accept(lfd);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::vector<char> buf(16384, 'x');
    while (!stop) {
      if (write(c, buf.data(), buf.size()) < 0) break;
      usleep(200);
    }
  });
  std::thread reader([&] {
    std::vector<char> buf(65536);
    while (!stop) {
      if (read(s, buf.data(), buf.size()) <= 0) break;
    }
  });
  v1::CompareResult r = Compare(port, {"--samples", "100", "--interval", "10ms"});
  stop = true;
  shutdown(c, SHUT_RDWR);
  shutdown(s, SHUT_RDWR);
  writer.join();
  reader.join();
  ASSERT_EQ(r.pairs_size(), 1);
  ASSERT_EQ(r.pairs(0).samples_size(), 100);
  uint32_t moved = 0, first = r.pairs(0).samples(0).a().seq().snd_nxt();
  for (const v1::ConnectionPair& p : r.pairs(0).samples()) {
    ASSERT_TRUE(p.a().has_seq() && p.b().has_seq());
    for (const v1::Finding& f : p.findings()) EXPECT_NE(f.code(), "SEQ_DESYNC") << p.ShortDebugString();
    moved = static_cast<uint32_t>(SeqDiff(p.a().seq().snd_nxt(), first));
  }
  EXPECT_GT(moved, 1000000u) << "the connection was meant to be busy";
  for (const v1::Finding& f : r.pairs(0).findings()) EXPECT_NE(f.code(), "PATH_LOSS");
}

// The width each region's rect gets per byte, for the first lane's four
// regions (A -> B) that are wide enough to measure.
std::vector<std::pair<std::string, double>> PixelsPerByte(const std::string& svg) {
  std::vector<std::pair<std::string, double>> out;
  int seen = 0;
  std::regex rect(R"re(data-region="([a-z-]+)" data-bytes="(\d+)" x="[0-9.]+" y="[0-9.]+" width="([0-9.]+)")re");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), rect); it != std::sregex_iterator(); ++it) {
    if (seen++ >= 4) break;
    const double bytes = std::stod((*it)[2]), width = std::stod((*it)[3]);
    if (width >= 5) out.emplace_back((*it)[1], width / bytes);  // wide enough for 4 decimals to be exact
  }
  return out;
}

TEST_F(SeqE2eTest, StoppedReceiverUnreadEqualsRecvQAndTheSvgIsToScale) {
  int lfd = -1;
  const int port = sockets_.Listen("127.0.0.1", 4, &lfd);
  const int c = sockets_.Connect("127.0.0.1", port);
  sockets_.Accept(lfd);  // never read
  fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
  std::vector<char> buf(65536, 'x');
  size_t written = 0;
  for (int i = 0; i < 100000; ++i) {
    const ssize_t n = write(c, buf.data(), buf.size());
    if (n < 0 && errno == EAGAIN) break;
    ASSERT_GT(n, 0);
    written += static_cast<size_t>(n);
  }
  usleep(500000);
  char dir[] = "/tmp/tcbscope-svg-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string svg_path = std::string(dir) + "/seq.svg";
  int rc = 0;
  v1::CompareResult r = Compare(port, {"--svg", svg_path}, &rc);
  ASSERT_EQ(r.pairs_size(), 1);
  const v1::ConnectionPair& p = r.pairs(0).samples(0);
  const v1::SequenceSpace& a = p.a().seq();
  const v1::SequenceSpace& b = p.b().seq();
  EXPECT_EQ(SeqDiff(b.rcv_nxt(), b.copied_seq()), static_cast<int64_t>(p.b().recv_q()));
  EXPECT_GT(p.b().recv_q(), 0u);
  // The sender has filled what the receiver offers, and no more.
  EXPECT_TRUE(SeqAtOrBefore(a.snd_nxt(), b.rcv_wup() + b.rcv_wnd())) << p.ShortDebugString();
  // Every byte written is accounted for: acknowledged (bytes_acked, less the
  // SYN) or still in A's send queue.
  EXPECT_EQ(SeqDiff(a.write_seq(), a.snd_una()) + static_cast<int64_t>(a.bytes_acked()) - 1,
            static_cast<int64_t>(written));
  bool not_reading = false;
  for (const auto& f : p.findings()) not_reading |= f.code() == "RECEIVER_NOT_READING";
  EXPECT_TRUE(not_reading) << p.ShortDebugString();
  EXPECT_EQ(rc, 1);

  testing::CommandResult lint = testing::RunCommand({"xmllint", "--noout", svg_path});
  EXPECT_EQ(lint.exit_code, 0) << lint.err;
  std::ifstream in(svg_path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string svg = ss.str();
  EXPECT_NE(svg.find(agent_->address()), std::string::npos);
  EXPECT_NE(svg.find("RECEIVER_NOT_READING"), std::string::npos);
  // The A -> B lane comes first: its regions (those wide enough to measure)
  // share one scale, and the receiver's unread rect says the recv_q.
  const auto scales = PixelsPerByte(svg);
  ASSERT_GE(scales.size(), 2u) << svg;
  EXPECT_NE(svg.find(absl::StrCat("data-region=\"receiver-unread\" data-bytes=\"", p.b().recv_q(), "\"")),
            std::string::npos);
  const double unit = scales[0].second;
  for (const auto& [region, ppb] : scales) EXPECT_NEAR(ppb / unit, 1.0, 1e-3) << region;
  if (!HasFailure()) unlink(svg_path.c_str());
  if (!HasFailure()) rmdir(dir);
}

}  // namespace
}  // namespace tcbscope
