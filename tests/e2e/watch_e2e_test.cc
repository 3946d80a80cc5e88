// WatchConnections end to end, with each change source (BPF tracepoints and
// polling): a real agent, real sockets, the real CLI; many watchers at once;
// a watcher that stops reading; both sources on one scenario; an agent
// restarted under a running watch.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tcbscope/v1/inspector.grpc.pb.h"
#include "common/tcp_state.h"
#include "tcbscope/v1/results.pb.h"
#include "testing/sockets.h"
#include "testing/subprocess.h"

namespace tcbscope {
namespace {

using testing::AgentProcess;
using testing::SocketSet;

// The states one socket went through, in event order, from a watch's lines.
struct Seen {
  std::vector<std::string> kinds;       // "added", "changed", "removed"
  std::vector<v1::TcpState> states;     // state after each event (before, for removed)
  // An event the kernel did not record (BPF programs do not nest on one CPU)
  // and the agent found by a dump: the states in between are not shown.
  bool found_by_dump = false;
};

// Starts an agent with `--events source`. For "bpf", a skip (with the
// reason) where BPF cannot run: not root, or an agent built without it. Root
// with BPF built in must load it, so CI cannot quietly fall back.
std::unique_ptr<AgentProcess> StartWithSource(const std::string& source, std::vector<std::string> args,
                                              std::string* skip) {
  args.insert(args.end(), {"--events", source});
  auto agent = std::make_unique<AgentProcess>(args);
  if (!agent->ok() && source == "bpf") {
    if (geteuid() != 0) *skip = "BPF events need root (or CAP_BPF and CAP_PERFMON)";
    if (agent->error().find("not built") != std::string::npos || agent->Log().find("not built") != std::string::npos) {
      *skip = "this agent was built without BPF programs";
    }
  }
  return agent;
}

class WatchE2eTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string skip;
    agent_ = StartWithSource(GetParam(), {"--poll-interval", "100ms", "--watch-queue", "200"}, &skip);
    if (!skip.empty()) GTEST_SKIP() << skip;
    ASSERT_TRUE(agent_->ok()) << agent_->error() << agent_->Log();
  }
  // Opens n connections to `port` (listening on lfd), holds them 0.4 s,
  // then resets the client ends (linger 0): gone at once, no TIME-WAIT to
  // wait out.
  void ConnectThenReset(int port, int lfd, int n) {
    std::vector<int> fds;
    for (int i = 0; i < n; ++i) {
      fds.push_back(sockets_.Connect("127.0.0.1", port));
      sockets_.Accept(lfd);
    }
    usleep(400000);
    for (int fd : fds) {
      linger l{1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
      sockets_.Close(fd);
    }
  }
  std::unique_ptr<AgentProcess> agent_;
  SocketSet sockets_;
};

INSTANTIATE_TEST_SUITE_P(Sources, WatchE2eTest, ::testing::Values("poll", "bpf"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

TEST_P(WatchE2eTest, ConnectSendCloseInOrderOnBothEnds) {
  int lfd = -1;
  const int port = sockets_.Listen("127.0.0.1", 4, &lfd);
  testing::CommandResult out;
  std::thread watcher([&] {
    out = testing::RunCommand({testing::CliBinary(), "watch", agent_->address(), "-a", "-o", "json", "--duration", "4s",
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
    who->found_by_dump |= e.found_by_dump();
    who->states.push_back(conn->state());
  }
  EXPECT_TRUE(snapshot);
  auto index = [](const Seen& s, v1::TcpState st) {
    return std::find(s.states.begin(), s.states.end(), st) - s.states.begin();
  };
  const long absent = 1 << 20;
  auto at = [&](const Seen& s, v1::TcpState st) { long i = index(s, st); return i < static_cast<long>(s.states.size()) ? i : absent; };
  // The server end: added (in SYN-RECV when BPF sees the child created,
  // already established when a poll finds it), established, told the peer
  // closed, gone.
  ASSERT_GE(server.kinds.size(), 3u) << out.out;
  EXPECT_EQ(server.kinds.front(), "added") << out.out;
  EXPECT_LT(at(server, v1::TCP_STATE_ESTABLISHED), at(server, v1::TCP_STATE_CLOSE_WAIT)) << out.out;
  EXPECT_NE(at(server, v1::TCP_STATE_CLOSE_WAIT), absent) << out.out;
  EXPECT_EQ(server.kinds.back(), "removed") << out.out;
  // The client end: added, established, then FIN-WAIT-2 and TIME-WAIT, in
  // that order. Where the kernel skipped the client's records (rare: an
  // interrupt's transition while the program ran on that CPU), the dump that
  // made up for them may have found it past FIN-WAIT-2 already; it must
  // still end in TIME-WAIT.
  ASSERT_GE(client.kinds.size(), 2u) << out.out;
  EXPECT_EQ(client.kinds.front(), "added") << out.out;
  EXPECT_NE(at(client, v1::TCP_STATE_ESTABLISHED), absent) << out.out;
  EXPECT_NE(at(client, v1::TCP_STATE_TIME_WAIT), absent) << out.out;
  if (!client.found_by_dump || at(client, v1::TCP_STATE_FIN_WAIT2) != absent) {
    EXPECT_LT(at(client, v1::TCP_STATE_ESTABLISHED), at(client, v1::TCP_STATE_FIN_WAIT2)) << out.out;
    EXPECT_LT(at(client, v1::TCP_STATE_FIN_WAIT2), at(client, v1::TCP_STATE_TIME_WAIT)) << out.out;
  } else {
    EXPECT_LT(at(client, v1::TCP_STATE_ESTABLISHED), at(client, v1::TCP_STATE_TIME_WAIT)) << out.out;
  }
  if (GetParam() == "bpf") {
    // BPF sees every transition, the short ones too, unless the kernel
    // skipped them (and then the stream says so).
    if (!client.found_by_dump) {
      EXPECT_EQ(client.states.front(), v1::TCP_STATE_SYN_SENT) << out.out;
      EXPECT_NE(at(client, v1::TCP_STATE_FIN_WAIT1), absent) << out.out;
    }
    if (!server.found_by_dump) {
      EXPECT_NE(at(server, v1::TCP_STATE_LAST_ACK), absent) << out.out;
    }
  } else {
    EXPECT_FALSE(client.found_by_dump || server.found_by_dump) << "only BPF can skip records";
  }
}

// A raw stream, as any gRPC client would open it.
struct Stream {
  explicit Stream(const std::string& address, const std::string& filter, bool packed = false)
      : stub(v1::Inspector::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))) {
    v1::WatchConnectionsRequest req;
    req.set_all(true);
    req.set_filter(filter);
    req.set_packed(packed);
    reader = stub->WatchConnections(&ctx, req);
  }
  std::unique_ptr<v1::Inspector::Stub> stub;
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReader<v1::WatchEvent>> reader;
};

TEST_P(WatchE2eTest, FiftyWatchersAllSeeEveryEvent) {
  int lfd = -1;
  const int port = sockets_.Listen("127.0.0.1", 64, &lfd);
  constexpr int kWatchers = 50;
  constexpr int kConnections = 10;
  const std::string filter = absl::StrCat("dport = :", port);
  std::vector<std::unique_ptr<Stream>> streams;
  for (int i = 0; i < kWatchers; ++i) streams.push_back(std::make_unique<Stream>(agent_->address(), filter));
  std::vector<int> added(kWatchers, 0), removed(kWatchers, 0), events(kWatchers, 0);
  std::vector<std::atomic<bool>> subscribed(kWatchers);
  // Why a stream ended before its snapshot was whole (its own status, or
  // CANCELLED when the test gave up on it); read after the readers joined.
  std::vector<std::string> ended_early(kWatchers);
  std::vector<std::thread> readers;
  for (int i = 0; i < kWatchers; ++i) {
    readers.emplace_back([&, i] {
      v1::WatchEvent e;
      bool read_all = false;
      while (streams[i]->reader->Read(&e)) {
        ++events[i];
        if (e.has_snapshot() && e.snapshot().last()) subscribed[i] = true;
        added[i] += e.has_added();
        removed[i] += e.has_removed();
        if (added[i] == kConnections && removed[i] == kConnections) {
          read_all = true;
          break;
        }
      }
      streams[i]->ctx.TryCancel();
      if (!read_all && !subscribed[i]) {
        const grpc::Status st = streams[i]->reader->Finish();
        ended_early[i] = absl::StrCat(st.error_code(), " ", st.error_message());
      }
    });
  }
  // Every stream has its snapshot: what follows is news to all of them.
  if (!testing::WaitFor(
          [&] { return std::all_of(subscribed.begin(), subscribed.end(), [](const auto& b) { return b.load(); }); },
          30000)) {
    for (auto& st : streams) st->ctx.TryCancel();
    for (auto& t : readers) t.join();
    // Which watchers, how far each got, how its stream ended, and what the
    // agent said: the failure has been seen once (under a loaded CI run)
    // and not reproduced since.
    std::string which;
    for (int i = 0; i < kWatchers; ++i) {
      if (subscribed[i]) continue;
      absl::StrAppend(&which, "  watcher ", i, ": ", events[i], " events, ended: ", ended_early[i], "\n");
    }
    FAIL() << "not every watcher got its snapshot within 30 s:\n" << which << "agent's log:\n" << agent_->Log();
  }
  ConnectThenReset(port, lfd, kConnections);
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

// A client that asks for packed messages reads the same changes, numbered
// the same way, as one that does not: packing changes only how many
// messages carry them.
TEST_P(WatchE2eTest, PackedAndUnpackedStreamsCarryTheSameChanges) {
  int lfd = -1;
  const int port = sockets_.Listen("127.0.0.1", 64, &lfd);
  constexpr int kConnections = 10;
  const std::string filter = absl::StrCat("dport = :", port);
  struct Read {
    std::unique_ptr<Stream> stream;
    std::vector<std::string> changes;  // kind, port, state
    std::vector<uint64_t> sequences;
    int messages = 0, packed_messages = 0;
    std::atomic<bool> subscribed{false};
    std::atomic<int> removed{0};
  };
  Read plain, packed;
  plain.stream = std::make_unique<Stream>(agent_->address(), filter, false);
  packed.stream = std::make_unique<Stream>(agent_->address(), filter, true);
  auto read = [](Read* r) {
    v1::WatchEvent m;
    while (r->removed < kConnections && r->stream->reader->Read(&m)) {
      ++r->messages;
      r->packed_messages += m.following_size() > 0;
      std::vector<const v1::WatchEvent*> events = {&m};
      for (const v1::WatchEvent& f : m.following()) events.push_back(&f);
      for (const v1::WatchEvent* e : events) {
        r->sequences.push_back(e->sequence());
        if (e->has_snapshot() && e->snapshot().last()) r->subscribed = true;
        if (e->has_added()) r->changes.push_back(absl::StrCat("added ", e->added().local().port(), " ", e->added().state()));
        if (e->has_changed()) {
          r->changes.push_back(
              absl::StrCat("changed ", e->changed().new_().local().port(), " ", e->changed().new_().state()));
        }
        if (e->has_removed()) {
          r->changes.push_back(absl::StrCat("removed ", e->removed().local().port()));
          ++r->removed;
        }
      }
    }
    r->stream->ctx.TryCancel();
  };
  std::thread plain_reader(read, &plain), packed_reader(read, &packed);
  auto cancel_and_join = [&] {
    plain.stream->ctx.TryCancel();
    packed.stream->ctx.TryCancel();
    plain_reader.join();
    packed_reader.join();
  };
  if (!testing::WaitFor([&] { return plain.subscribed && packed.subscribed; }, 30000)) {
    cancel_and_join();
    FAIL() << "the watchers did not get their snapshots within 30 s";
  }
  ConnectThenReset(port, lfd, kConnections);
  testing::WaitFor([&] { return plain.removed >= kConnections && packed.removed >= kConnections; }, 10000);
  cancel_and_join();
  EXPECT_EQ(packed.removed, kConnections);
  EXPECT_EQ(packed.changes, plain.changes);
  for (const Read* r : {&plain, &packed}) {
    for (size_t i = 0; i < r->sequences.size(); ++i) ASSERT_EQ(r->sequences[i], i + 1) << "numbered from 1, no gaps";
  }
  EXPECT_LE(packed.messages, plain.messages);
  // A poll finds the ten connects (and the ten resets) together: they share
  // messages. BPF hands over what each wakeup read, which may be one record.
  if (GetParam() == "poll") {
    EXPECT_GT(packed.packed_messages, 0);
  }
  EXPECT_EQ(plain.packed_messages, 0) << "a client that did not ask gets one change a message";
  std::cout << "packed: " << packed.messages << " messages (" << packed.packed_messages
            << " with more than one change); unpacked: " << plain.messages << "\n";
}

TEST_P(WatchE2eTest, StalledWatcherIsResyncedAndMemoryStaysBounded) {
  const int rss_before = testing::RssMiB(agent_->pid());
  Stream stalled(agent_->address(), "");
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
    peak = std::max(peak, testing::RssMiB(agent_->pid()));
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

// The agent's tracepoint links (one per attached tp_btf program), from its file
// descriptors' fdinfo: the kernel's own account, whichever tool made them.
int TracingLinks(pid_t pid) {
  int links = 0;
  std::error_code ec;
  for (const auto& fd : std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/fdinfo"), ec)) {
    std::ifstream in(fd.path());
    std::string line;
    while (std::getline(in, line)) {
      if (line == "link_type:\traw_tracepoint") ++links;
    }
  }
  return links;
}

// Waits up to 15 s for the agent to have `want` tracepoint links; returns
// how many it has then.
int LinksBecome(pid_t pid, int want) {
  const absl::Time end = absl::Now() + absl::Seconds(15);
  int now = TracingLinks(pid);
  while (now != want && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(20));
    now = TracingLinks(pid);
  }
  return now;
}

// The normalized story of one socket: the states it was seen in that last
// longer than a round trip (the ones a 100 ms poll can see in this script),
// consecutive repeats folded, and "gone" when removed.
using Story = std::vector<std::string>;

std::map<std::pair<int, int>, Story> Stories(const std::string& json_lines) {
  std::map<std::pair<int, int>, Story> by_port;
  auto tell = [&](const v1::Connection& conn, bool removed) {
    if (conn.state() == v1::TCP_STATE_LISTEN) return;
    Story& story = by_port[{static_cast<int>(conn.local().port()), static_cast<int>(conn.remote().port())}];
    std::string what = removed ? "gone" : StateFilterName(conn.state());
    const v1::TcpState st = conn.state();
    const bool transient = st == v1::TCP_STATE_SYN_SENT || st == v1::TCP_STATE_SYN_RECV ||
                           st == v1::TCP_STATE_FIN_WAIT1 || st == v1::TCP_STATE_LAST_ACK ||
                           st == v1::TCP_STATE_CLOSING;
    if (transient && !removed) return;
    if (story.empty() || story.back() != what) story.push_back(what);
  };
  for (absl::string_view line : absl::StrSplit(json_lines, '\n', absl::SkipEmpty())) {
    v1::WatchLine w;
    if (!google::protobuf::util::JsonStringToMessage(std::string(line), &w).ok()) continue;
    const v1::WatchEvent& e = w.event();
    // A watch that came up late has the first states in its snapshot.
    if (e.has_snapshot()) {
      for (const v1::Connection& c : e.snapshot().connections()) tell(c, false);
    } else if (e.has_added()) {
      tell(e.added(), false);
    } else if (e.has_changed()) {
      tell(e.changed().new_(), false);
    } else if (e.has_removed()) {
      tell(e.removed(), true);
    }
  }
  return by_port;
}

TEST(WatchSourcesTest, BothSourcesTellTheSameStory) {
  std::string skip;
  // Every record in the log: a failure then tells a record the kernel never
  // made from one the agent read and did not turn into an event.
  std::unique_ptr<AgentProcess> bpf = StartWithSource("bpf", {"--log-records"}, &skip);
  if (!skip.empty()) GTEST_SKIP() << skip;
  ASSERT_TRUE(bpf->ok()) << bpf->error() << bpf->Log();
  std::unique_ptr<AgentProcess> poll = StartWithSource("poll", {"--poll-interval", "100ms"}, &skip);
  ASSERT_TRUE(poll->ok()) << poll->error();
  SocketSet sockets;
  int lfd = -1;
  const int port = sockets.Listen("127.0.0.1", 4, &lfd);
  std::vector<std::string> filter = {"sport", "=", absl::StrCat(":", port), "or", "dport", "=", absl::StrCat(":", port)};
  testing::CommandResult out_bpf, out_poll;
  auto watch = [&](AgentProcess* a, testing::CommandResult* out) {
    std::vector<std::string> argv = {testing::CliBinary(), "watch", a->address(), "-a", "-o", "json", "--duration", "7s"};
    argv.insert(argv.end(), filter.begin(), filter.end());
    *out = testing::RunCommand(argv, 20000);
  };
  std::thread w1(watch, bpf.get(), &out_bpf), w2(watch, poll.get(), &out_poll);
  // The script (3.5 s of the 7 s watches) starts once the BPF watch has its
  // programs attached (a watch comes up in well under a second, but not
  // always: another agent loading its programs beside this test once held it
  // up for 1.5 s), and 0.5 s later for the poll watch. A watch that still came
  // up late has the first states in its snapshot, which the stories count.
  LinksBecome(bpf->pid(), 4);
  usleep(500000);
  // The script: every step holds for 500 ms, five poll intervals.
  const int c = sockets.Connect("127.0.0.1", port);
  const int s = sockets.Accept(lfd);
  const int client_port = SocketSet::LocalPort(c);
  usleep(500000);
  sockets.WriteBytes(c, 1000);
  char buf[2000];
  size_t got = 0;
  while (got < 1000) got += static_cast<size_t>(read(s, buf, sizeof(buf)));
  usleep(500000);
  sockets.Close(c);
  usleep(500000);
  sockets.Close(s);
  usleep(500000);
  // A second connection, reset by its client.
  const int c2 = sockets.Connect("127.0.0.1", port);
  const int s2 = sockets.Accept(lfd);
  const int client_port2 = SocketSet::LocalPort(c2);
  usleep(500000);
  linger l{1, 0};
  setsockopt(c2, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  sockets.Close(c2);
  usleep(500000);
  sockets.Close(s2);
  w1.join();
  w2.join();
  ASSERT_EQ(out_bpf.exit_code, 0) << out_bpf.err;
  ASSERT_EQ(out_poll.exit_code, 0) << out_poll.err;
  // Only this test's two connections: a time-wait socket left on the same
  // port by an earlier test matches the filter too, and may end during the
  // watch (each source reports that end in its own time).
  auto ours = [&](std::map<std::pair<int, int>, Story> stories) {
    for (auto it = stories.begin(); it != stories.end();) {
      const auto& [local, remote] = it->first;
      const bool mine = local == client_port || remote == client_port || local == client_port2 || remote == client_port2;
      it = mine ? std::next(it) : stories.erase(it);
    }
    return stories;
  };
  const std::map<std::pair<int, int>, Story> from_bpf = ours(Stories(out_bpf.out)), from_poll = ours(Stories(out_poll.out));
  ASSERT_EQ(from_bpf.size(), 4u) << out_bpf.out;  // two connections, two ends each
  // On a failure the BPF agent's log says which records it read, whether the
  // kernel skipped or lost any, and what a dump or a lookup then found. (The
  // kernel now and then reports no end to the client's close at all: see
  // design-notes, "A close the kernel does not finish reporting".)
  EXPECT_EQ(from_bpf, from_poll) << "bpf:\n" << out_bpf.out << "\npoll:\n" << out_poll.out << "\nbpf agent's log:\n"
                                 << bpf->Log();
  // And the story is the script's: the client of the first connection went
  // established -> fin-wait-2 -> time-wait.
  const Story expected_client = {"established", "fin-wait-2", "time-wait"};
  EXPECT_EQ(from_bpf.at({client_port, port}), expected_client);
  // --log-records did log them: the client's connect, by its port.
  EXPECT_NE(bpf->Log().find("BPF record: kind 1 cookie "), std::string::npos) << bpf->Log();
  EXPECT_NE(bpf->Log().find(absl::StrCat(" ports ", client_port, "->", port, " state 2->1 ")), std::string::npos)
      << bpf->Log();
}

// Idle, the agent's programs are detached: a host's TCP state changes run
// them only while someone watches.
TEST(WatchBpfTest, ProgramsAreAttachedOnlyWhileSomeoneWatches) {
  std::string skip;
  std::unique_ptr<AgentProcess> agent = StartWithSource("bpf", {}, &skip);
  if (!skip.empty()) GTEST_SKIP() << skip;
  ASSERT_TRUE(agent->ok()) << agent->error() << agent->Log();
  EXPECT_EQ(TracingLinks(agent->pid()), 0) << "programs attached with nobody watching";
  testing::CommandResult out;
  std::thread watcher([&] {
    out = testing::RunCommand({testing::CliBinary(), "watch", agent->address(), "--duration", "3s"}, 30000);
  });
  // on_state, on_retransmit, on_send_reset, on_receive_reset.
  EXPECT_EQ(LinksBecome(agent->pid(), 4), 4) << "a watch did not attach the programs";
  watcher.join();
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_EQ(LinksBecome(agent->pid(), 0), 0) << "the programs stayed attached after the watch ended";
}

TEST(WatchRestartTest, AgentRestartIsReportedAndTheWatchResumes) {
  auto first = std::make_unique<AgentProcess>(std::vector<std::string>{"--events", "poll", "--poll-interval", "100ms"});
  ASSERT_TRUE(first->ok()) << first->error();
  const std::string address = first->address();
  SocketSet sockets;
  int lfd = -1;
  const int port = sockets.Listen("127.0.0.1", 4, &lfd);
  testing::CommandResult out;
  std::thread watcher([&] {
    // Long enough for the first agent's graceful stop (up to 2 s of draining
    // streams), the CLI's backoff and the connection below on a busy machine.
    out = testing::RunCommand({testing::CliBinary(), "watch", address, "--duration", "12s", "dport", "=",
                               absl::StrCat(":", port)},
                              30000);
  });
  usleep(800000);
  first->Stop();
  usleep(300000);
  // The same port again: the agent came back.
  AgentProcess second({"--events", "poll", "--poll-interval", "100ms"}, address);
  ASSERT_TRUE(second.ok()) << second.error();
  usleep(2500000);  // the CLI's backoff, then its new snapshot
  const int c = sockets.Connect("127.0.0.1", port);
  sockets.Accept(lfd);
  watcher.join();
  EXPECT_NE(out.out.find("stream lost"), std::string::npos) << out.out;
  const size_t back = out.out.find("reconnected");
  ASSERT_NE(back, std::string::npos) << out.out;
  // The connection made after the restart is reported after the gap.
  const size_t added = out.out.find(absl::StrCat("127.0.0.1:", SocketSet::LocalPort(c)), back);
  EXPECT_NE(added, std::string::npos) << out.out;
  EXPECT_EQ(out.exit_code, 3) << "a watch with a gap exits 3";
}

TEST_P(WatchE2eTest, BadFilterIsRefused) {
  testing::CommandResult r = testing::RunCommand({testing::CliBinary(), "watch", agent_->address(), "sport", "=", "x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("column"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tcbscope
