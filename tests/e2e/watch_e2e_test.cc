// WatchConnections with the polling source, end to end: a real agent, real
// sockets, the real CLI; many watchers at once; a watcher that stops reading.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tcbscope/v1/inspector.grpc.pb.h"
#include "tcbscope/v1/results.pb.h"
#include "testing/sockets.h"
#include "testing/subprocess.h"

namespace tcbscope {
namespace {

using testing::AgentProcess;
using testing::SocketSet;

int RssMiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipWhitespace());
      int kb = 0;
      if (f.size() >= 2 && absl::SimpleAtoi(f[1], &kb)) return kb / 1024;
    }
  }
  return -1;
}

// The states one socket went through, in event order, from a watch's lines.
struct Seen {
  std::vector<std::string> kinds;       // "added", "changed", "removed"
  std::vector<v1::TcpState> states;     // state after each event (before, for removed)
};

class WatchE2eTest : public ::testing::Test {
 protected:
  AgentProcess agent_{{"--poll-interval", "100ms", "--watch-queue", "200"}};
  SocketSet sockets_;
};

TEST_F(WatchE2eTest, ConnectSendCloseInOrderOnBothEnds) {
  ASSERT_TRUE(agent_.ok()) << agent_.error();
  int lfd = -1;
  const int port = sockets_.Listen("127.0.0.1", 4, &lfd);
  testing::CommandResult out;
  std::thread watcher([&] {
    out = testing::RunCommand({testing::CliBinary(), "watch", agent_.address(), "-a", "-o", "json", "--duration", "4s",
                               "sport", "=", absl::StrCat(":", port), "or", "dport", "=", absl::StrCat(":", port)},
                              20000);
  });
  usleep(800000);  // the watcher's snapshot first
  const int c = sockets_.Connect("127.0.0.1", port);
  const int s = sockets_.Accept(lfd);
  const int cport = SocketSet::LocalPort(c);
  usleep(400000);
  sockets_.WriteBytes(c, 1000);
  usleep(400000);
  // The server reads it all: closing with unread data would send a reset
  // instead of a FIN, and the client would never reach TIME-WAIT.
  char buf[2000];
  size_t got = 0;
  while (got < 1000) got += static_cast<size_t>(read(s, buf, sizeof(buf)));
  sockets_.Close(c);  // client: FIN-WAIT; server: CLOSE-WAIT
  usleep(400000);
  sockets_.Close(s);  // server: LAST-ACK, gone; client: TIME-WAIT
  watcher.join();
  ASSERT_EQ(out.exit_code, 0) << out.err;

  Seen client, server;
  uint64_t last_seq = 0;
  bool snapshot = false;
  for (absl::string_view line : absl::StrSplit(out.out, '\n', absl::SkipEmpty())) {
    v1::WatchLine w;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(std::string(line), &w).ok()) << line;
    const v1::WatchEvent& e = w.event();
    EXPECT_EQ(e.sequence(), last_seq + 1) << "gap in the stream at " << line;
    last_seq = e.sequence();
    if (e.has_snapshot()) snapshot = true;
    const v1::Connection* conn = e.has_added() ? &e.added() : e.has_removed() ? &e.removed()
                                 : e.has_changed() ? &e.changed().new_() : nullptr;
    if (conn == nullptr) continue;
    Seen* who = static_cast<int>(conn->local().port()) == cport ? &client
                : static_cast<int>(conn->local().port()) == port && conn->state() != v1::TCP_STATE_LISTEN ? &server
                                                                                                         : nullptr;
    if (who == nullptr) continue;
    who->kinds.push_back(e.has_added() ? "added" : e.has_removed() ? "removed" : "changed");
    who->states.push_back(conn->state());
  }
  EXPECT_TRUE(snapshot);
  // The server end: appears established, is told the peer closed, goes away.
  ASSERT_GE(server.kinds.size(), 3u) << out.out;
  EXPECT_EQ(server.kinds.front(), "added");
  EXPECT_EQ(server.states.front(), v1::TCP_STATE_ESTABLISHED);
  EXPECT_NE(std::find(server.states.begin(), server.states.end(), v1::TCP_STATE_CLOSE_WAIT), server.states.end());
  EXPECT_EQ(server.kinds.back(), "removed");
  // The client end: established, then FIN-WAIT-2 and TIME-WAIT, in that order.
  ASSERT_GE(client.kinds.size(), 2u) << out.out;
  EXPECT_EQ(client.kinds.front(), "added");
  EXPECT_EQ(client.states.front(), v1::TCP_STATE_ESTABLISHED);
  auto fw2 = std::find(client.states.begin(), client.states.end(), v1::TCP_STATE_FIN_WAIT2);
  auto tw = std::find(client.states.begin(), client.states.end(), v1::TCP_STATE_TIME_WAIT);
  ASSERT_NE(fw2, client.states.end()) << out.out;
  ASSERT_NE(tw, client.states.end()) << out.out;
  EXPECT_LT(fw2 - client.states.begin(), tw - client.states.begin());
}

// A raw stream, as any gRPC client would open it.
struct Stream {
  explicit Stream(const std::string& address, const std::string& filter)
      : stub(v1::Inspector::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))) {
    v1::WatchConnectionsRequest req;
    req.set_all(true);
    req.set_filter(filter);
    reader = stub->WatchConnections(&ctx, req);
  }
  std::unique_ptr<v1::Inspector::Stub> stub;
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReader<v1::WatchEvent>> reader;
};

TEST_F(WatchE2eTest, FiftyWatchersAllSeeEveryEvent) {
  ASSERT_TRUE(agent_.ok()) << agent_.error();
  int lfd = -1;
  const int port = sockets_.Listen("127.0.0.1", 64, &lfd);
  constexpr int kWatchers = 50;
  constexpr int kConnections = 10;
  const std::string filter = absl::StrCat("dport = :", port);
  std::vector<std::unique_ptr<Stream>> streams;
  for (int i = 0; i < kWatchers; ++i) streams.push_back(std::make_unique<Stream>(agent_.address(), filter));
  std::vector<int> added(kWatchers, 0), removed(kWatchers, 0);
  std::vector<std::thread> readers;
  for (int i = 0; i < kWatchers; ++i) {
    readers.emplace_back([&, i] {
      v1::WatchEvent e;
      while (streams[i]->reader->Read(&e)) {
        added[i] += e.has_added();
        removed[i] += e.has_removed();
        if (added[i] == kConnections && removed[i] == kConnections) break;
      }
      streams[i]->ctx.TryCancel();
    });
  }
  usleep(1000000);  // every stream subscribed
  std::vector<int> fds;
  for (int i = 0; i < kConnections; ++i) {
    fds.push_back(sockets_.Connect("127.0.0.1", port));
    sockets_.Accept(lfd);
  }
  usleep(400000);
  // Reset the client ends (linger 0): gone at once, no TIME-WAIT to wait out.
  for (int fd : fds) {
    linger l{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    sockets_.Close(fd);
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  for (auto& t : readers) {
    while (absl::Now() < deadline) {
      bool all = true;
      for (int i = 0; i < kWatchers; ++i) all &= added[i] == kConnections && removed[i] == kConnections;
      if (all) break;
      usleep(50000);
    }
    for (auto& s : streams) s->ctx.TryCancel();
    t.join();
  }
  for (int i = 0; i < kWatchers; ++i) {
    EXPECT_EQ(added[i], kConnections) << "watcher " << i;
    EXPECT_EQ(removed[i], kConnections) << "watcher " << i;
  }
}

TEST_F(WatchE2eTest, StalledWatcherIsResyncedAndMemoryStaysBounded) {
  ASSERT_TRUE(agent_.ok()) << agent_.error();
  const int rss_before = RssMiB(agent_.pid());
  Stream stalled(agent_.address(), "");
  v1::WatchEvent first;
  ASSERT_TRUE(stalled.reader->Read(&first));  // subscribed; now it stops reading
  int lfd = -1;
  const int port = sockets_.Listen("127.0.0.1", 512, &lfd);
  // 10,000 connections open and close (5,000 pairs) while it does not read.
  int peak = 0;
  for (int round = 0; round < 10; ++round) {
    std::vector<int> fds;
    for (int i = 0; i < 500; ++i) {
      fds.push_back(sockets_.Connect("127.0.0.1", port));
      fds.push_back(sockets_.Accept(lfd));
    }
    usleep(150000);
    for (int fd : fds) {
      linger l{1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
      sockets_.Close(fd);
    }
    usleep(150000);
    peak = std::max(peak, RssMiB(agent_.pid()));
  }
  EXPECT_LT(peak, rss_before + 100) << "agent RSS grew from " << rss_before << " MiB to " << peak << " MiB";
  // Reading again: a resync comes, with the sequence still gap-free.
  uint64_t seq = first.sequence();
  bool resync = false;
  v1::WatchEvent e;
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (!resync && absl::Now() < deadline && stalled.reader->Read(&e)) {
    EXPECT_EQ(e.sequence(), seq + 1);
    seq = e.sequence();
    resync = e.has_resync();
  }
  EXPECT_TRUE(resync);
  stalled.ctx.TryCancel();
}

TEST_F(WatchE2eTest, BadFilterIsRefused) {
  ASSERT_TRUE(agent_.ok()) << agent_.error();
  testing::CommandResult r = testing::RunCommand({testing::CliBinary(), "watch", agent_.address(), "sport", "=", "x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("column"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tcbscope
