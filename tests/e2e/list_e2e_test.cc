// End to end: a real agent process, the real CLI binary, real loopback
// sockets in known states. Reads what the CLI prints, as a user would.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tcbscope/v1/results.pb.h"
#include "testing/sockets.h"
#include "testing/subprocess.h"

namespace tcbscope {
namespace {

using testing::AgentProcess;
using testing::CliBinary;
using testing::CommandResult;
using testing::RunCommand;
using testing::SocketSet;

class ListE2eTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(agent_.ok()) << agent_.error(); }

  CommandResult Cli(std::vector<std::string> args) {
    args.insert(args.begin(), CliBinary());
    return RunCommand(args);
  }

  // `tcbscope list AGENT -o json ARGS...`, parsed.
  v1::ListResult ListJson(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"list", agent_.address(), "-o", "json"};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = Cli(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    v1::ListResult result;
    auto s = google::protobuf::util::JsonStringToMessage(r.out, &result);
    EXPECT_TRUE(s.ok()) << s.ToString() << "\n" << r.out.substr(0, 500);
    return result;
  }

  // `tcbscope COMMAND HOST... ARGS...` with kManyHosts hosts at once: this
  // agent each time, but for host kDownHost, a port nobody listens on.
  static constexpr int kManyHosts = 40;
  static constexpr int kDownHost = 17;
  static constexpr char kDownAddress[] = "127.0.0.1:1";
  CommandResult CliOnManyHostsOneDown(const std::string& command, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {command};
    for (int i = 0; i < kManyHosts; ++i) argv.push_back(i == kDownHost ? kDownAddress : agent_.address());
    argv.insert(argv.end(), args.begin(), args.end());
    return Cli(argv);
  }

  static const v1::Connection* Find(const v1::ListResult& r, int local_port, int remote_port,
                                    v1::TcpState state = v1::TCP_STATE_UNSPECIFIED) {
    for (const auto& h : r.hosts()) {
      for (const auto& c : h.connections()) {
        if (static_cast<int>(c.local().port()) == local_port &&
            (remote_port < 0 || static_cast<int>(c.remote().port()) == remote_port) &&
            (state == v1::TCP_STATE_UNSPECIFIED || c.state() == state)) {
          return &c;
        }
      }
    }
    return nullptr;
  }

  AgentProcess agent_;
  SocketSet sockets_;
};

TEST_F(ListE2eTest, UnreadBytesShowInRecvQAndTcpInfo) {
  SocketSet::Pair p = sockets_.EstablishedPair("127.0.0.1");
  sockets_.WriteBytes(p.client, 12345);
  v1::ListResult r;
  ASSERT_TRUE(testing::WaitFor([&] {
    r = ListJson({"-i"});
    const v1::Connection* c = Find(r, p.server_port, p.client_port);
    return c != nullptr && c->recv_q() == 12345;
  }));
  const v1::Connection* rx = Find(r, p.server_port, p.client_port);
  ASSERT_NE(rx, nullptr);
  EXPECT_EQ(rx->state(), v1::TCP_STATE_ESTABLISHED);
  EXPECT_EQ(rx->recv_q(), 12345u);
  EXPECT_EQ(rx->tcp_info().bytes_received(), 12345u);
  const v1::Connection* tx = Find(r, p.client_port, p.server_port);
  ASSERT_NE(tx, nullptr);
  EXPECT_EQ(tx->tcp_info().bytes_acked(), 12345u + 1);  // the SYN counts one
  EXPECT_EQ(tx->send_q(), 0u);
}

TEST_F(ListE2eTest, ListenerShowsItsAcceptQueue) {
  int lfd = -1;
  const int port = sockets_.Listen("127.0.0.1", 16, &lfd);
  for (int i = 0; i < 3; ++i) sockets_.Connect("127.0.0.1", port);
  v1::ListResult r;
  ASSERT_TRUE(testing::WaitFor([&] {
    r = ListJson({"-l"});
    const v1::Connection* l = Find(r, port, -1, v1::TCP_STATE_LISTEN);
    return l != nullptr && l->recv_q() == 3;
  }));
  const v1::Connection* l = Find(r, port, -1, v1::TCP_STATE_LISTEN);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->recv_q(), 3u);
  EXPECT_EQ(l->send_q(), 16u);
  // -l lists no established sockets.
  for (const auto& c : r.hosts(0).connections()) {
    EXPECT_TRUE(c.state() == v1::TCP_STATE_LISTEN || c.state() == v1::TCP_STATE_CLOSE) << c.ShortDebugString();
  }
}

TEST_F(ListE2eTest, EveryCommonStateAppears) {
  // FIN_WAIT2 / CLOSE_WAIT: the client closes, the server never does.
  SocketSet::Pair half = sockets_.EstablishedPair("127.0.0.1");
  shutdown(half.client, SHUT_WR);
  // TIME_WAIT: the client closes first, then the server.
  SocketSet::Pair done = sockets_.EstablishedPair("127.0.0.1");
  sockets_.Close(done.client);
  usleep(50000);
  sockets_.Close(done.server);
  SocketSet::Pair live = sockets_.EstablishedPair("::1");
  int lfd = -1;
  const int lport = sockets_.Listen("::1", 4, &lfd);

  v1::ListResult r;
  auto all_there = [&] {
    r = ListJson({"-a"});
    return Find(r, half.client_port, half.server_port, v1::TCP_STATE_FIN_WAIT2) &&
           Find(r, half.server_port, half.client_port, v1::TCP_STATE_CLOSE_WAIT) &&
           Find(r, done.client_port, done.server_port, v1::TCP_STATE_TIME_WAIT) &&
           Find(r, live.client_port, live.server_port, v1::TCP_STATE_ESTABLISHED) &&
           Find(r, lport, -1, v1::TCP_STATE_LISTEN);
  };
  ASSERT_TRUE(testing::WaitFor(all_there)) << r.ShortDebugString().substr(0, 2000);
  const v1::Connection* v6 = Find(r, live.client_port, live.server_port);
  EXPECT_EQ(v6->family(), v1::FAMILY_INET6);
  EXPECT_EQ(v6->local().address(), "::1");

  // The table spells states as ss does.
  CommandResult t = Cli({"list", agent_.address(), "-a", "-H"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  const std::string fw2 = absl::StrCat("127.0.0.1:", half.client_port);
  bool seen = false;
  for (absl::string_view line : absl::StrSplit(t.out, '\n')) {
    if (line.find(fw2) != absl::string_view::npos && line.substr(0, 9) == "FIN-WAIT-") seen = true;
  }
  EXPECT_TRUE(seen) << t.out;
}

TEST_F(ListE2eTest, ProcessesNameThisTest) {
  SocketSet::Pair p = sockets_.EstablishedPair("127.0.0.1");
  v1::ListResult r = ListJson({"-p"});
  const v1::Connection* c = Find(r, p.client_port, p.server_port);
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->owners_size(), 1);
  EXPECT_EQ(c->owners(0).pid(), static_cast<uint32_t>(getpid()));
  EXPECT_EQ(static_cast<int>(c->owners(0).fd()), p.client);
  // Without -p nobody is looked up.
  v1::ListResult plain = ListJson({});
  const v1::Connection* q = Find(plain, p.client_port, p.server_port);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->owners_size(), 0);
  // The table shows ss's users:(...) column.
  CommandResult t = Cli({"list", agent_.address(), "-p"});
  EXPECT_NE(t.out.find(absl::StrCat("pid=", getpid(), ",fd=", p.client)), std::string::npos) << t.out;
}

TEST_F(ListE2eTest, JsonRoundTripsThroughTheProto) {
  SocketSet::Pair p = sockets_.EstablishedPair("127.0.0.1");
  sockets_.WriteBytes(p.client, 100);
  CommandResult r = Cli({"list", agent_.address(), "-i", "-p", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  v1::ListResult first;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &first).ok());
  ASSERT_EQ(first.hosts_size(), 1);
  EXPECT_EQ(first.hosts(0).host(), agent_.address());
  EXPECT_GT(first.hosts(0).connections_size(), 0);
  std::string again;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(first, &again, opts).ok());
  v1::ListResult second;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(again, &second).ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(first, second));
  EXPECT_EQ(again + "\n", r.out);  // the CLI's JSON is the proto's mapping
}

TEST_F(ListE2eTest, FilterSelectsOnTheAgent) {
  SocketSet::Pair a = sockets_.EstablishedPair("127.0.0.1");
  SocketSet::Pair b = sockets_.EstablishedPair("127.0.0.1");
  v1::ListResult r = ListJson({"sport", "=", absl::StrCat(":", a.server_port)});
  ASSERT_EQ(r.hosts(0).connections_size(), 1) << r.ShortDebugString();
  EXPECT_EQ(static_cast<int>(r.hosts(0).connections(0).local().port()), a.server_port);
  EXPECT_EQ(Find(r, b.server_port, -1), nullptr);
}

TEST_F(ListE2eTest, BadInputGetsOneLineAndTheRightExitCode) {
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    const char* says;
  } cases[] = {
      {{"list", agent_.address(), "dport", "=", "x"}, 2, "column"},
      {{"list", agent_.address(), "state", "bogus"}, 2, "column"},
      {{"list", agent_.address(), "(", "sport", "=", ":22"}, 2, "column"},
      {{"list", "no-such-host.invalid"}, 3, "no-such-host.invalid"},
      {{"list", "127.0.0.1:1", "--timeout", "3s"}, 3, "127.0.0.1:1"},
      {{"list"}, 2, "HOST"},
      {{"list", "host:99999"}, 2, "port"},
      {{"list", agent_.address(), "-o", "yaml"}, 2, "yaml"},
      {{"list", agent_.address(), "--timeout", "soon"}, 2, "timeout"},
      {{"bogus"}, 2, "bogus"},
      {{"counters", agent_.address(), "--delta", "-1s"}, 2, "delta"},
  };
  for (const Case& c : cases) {
    CommandResult r = Cli(c.args);
    const std::string what = absl::StrJoin(c.args, " ");
    EXPECT_FALSE(r.timed_out) << what;
    EXPECT_EQ(r.exit_code, c.exit_code) << what << "\n" << r.err;
    ASSERT_FALSE(r.err.empty()) << what;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << what << "\n" << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << what << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("tcbscope: ", 0), 0u) << r.err;
  }
}

TEST_F(ListE2eTest, OneUnreachableHostDoesNotHideTheOthers) {
  SocketSet::Pair p = sockets_.EstablishedPair("127.0.0.1");
  CommandResult r = Cli({"list", agent_.address(), "127.0.0.1:1", "-o", "json", "--timeout", "3s"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  v1::ListResult result;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &result).ok()) << r.out;
  ASSERT_EQ(result.hosts_size(), 2);
  EXPECT_FALSE(result.hosts(0).has_error());
  EXPECT_NE(Find(result, p.client_port, p.server_port), nullptr);
  EXPECT_TRUE(result.hosts(1).has_error());
  EXPECT_EQ(result.hosts(1).error().code(), "UNAVAILABLE");
  // The table still shows the reachable host's rows, each naming its host.
  CommandResult t = Cli({"list", agent_.address(), "127.0.0.1:1", "--timeout", "3s"});
  EXPECT_EQ(t.exit_code, 3);
  EXPECT_NE(t.out.find(absl::StrCat(agent_.address(), " ESTAB")), std::string::npos) << t.out;
}

// info's calls all complete on one thread: forty at once, one of them to a
// port nobody listens on, each lands in its own host's slot.
TEST_F(ListE2eTest, InfoOfManyHostsWithOneDown) {
  CommandResult r = CliOnManyHostsOneDown("info", {"-o", "json", "--timeout", "5s"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  v1::InfoResult result;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &result).ok()) << r.out;
  ASSERT_EQ(result.hosts_size(), kManyHosts);
  for (int i = 0; i < kManyHosts; ++i) {
    if (i == kDownHost) {
      EXPECT_EQ(result.hosts(i).host(), kDownAddress);
      EXPECT_EQ(result.hosts(i).error().code(), "UNAVAILABLE");
      EXPECT_FALSE(result.hosts(i).has_info());
    } else {
      EXPECT_FALSE(result.hosts(i).has_error()) << i;
      EXPECT_FALSE(result.hosts(i).info().boot_id().empty()) << i;
    }
  }
  EXPECT_NE(r.err.find(kDownAddress), std::string::npos) << r.err;
}

// list reads every host's stream on one thread, as info does: forty streams
// at once, one host down, in both outputs; each host's rows land in its own
// slot, and each started stream is read to its end. (An earlier version of
// the reader let the start's completion run before the call was stored:
// this crashed within a few runs.)
TEST_F(ListE2eTest, ListOfManyHostsWithOneDown) {
  SocketSet::Pair p = sockets_.EstablishedPair("127.0.0.1");
  for (int round = 0; round < 3; ++round) {
    CommandResult r = CliOnManyHostsOneDown("list", {"-o", "json", "--timeout", "5s"});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    v1::ListResult result;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &result).ok()) << r.out;
    ASSERT_EQ(result.hosts_size(), kManyHosts);
    for (int i = 0; i < kManyHosts; ++i) {
      if (i == kDownHost) {
        EXPECT_EQ(result.hosts(i).error().code(), "UNAVAILABLE");
        EXPECT_EQ(result.hosts(i).connections_size(), 0);
        continue;
      }
      EXPECT_FALSE(result.hosts(i).has_error()) << i;
      v1::ListResult one;
      *one.add_hosts() = result.hosts(i);
      EXPECT_NE(Find(one, p.client_port, p.server_port), nullptr) << i;
    }
    // By both ports: one of the CLI's own forty connections to the agent may
    // get the client's port as its own (another destination, so the kernel
    // allows it); seen once in CI.
    CommandResult t = CliOnManyHostsOneDown(
        "list", {"--timeout", "5s", "-H", absl::StrCat("sport = :", p.client_port, " and dport = :", p.server_port)});
    EXPECT_EQ(t.exit_code, 3) << t.err;
    // One row per reachable host: the pair's client end, under its host.
    EXPECT_EQ(std::count(t.out.begin(), t.out.end(), '\n'), kManyHosts - 1) << t.out;
  }
}

TEST_F(ListE2eTest, InfoAndCounters) {
  CommandResult r = Cli({"info", agent_.address(), "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  v1::InfoResult info;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &info).ok());
  const v1::HostInfo& h = info.hosts(0).info();
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  EXPECT_EQ(h.hostname(), host);
  EXPECT_EQ(h.boot_id().size(), 36u);
  EXPECT_FALSE(h.kernel_release().empty());
  bool has_loopback = false;
  for (const auto& a : h.addresses()) has_loopback |= a.address() == "127.0.0.1";
  EXPECT_TRUE(has_loopback);
  EXPECT_EQ(h.source(), "kernel");

  CommandResult c = Cli({"counters", agent_.address(), "-o", "json", "--delta", "200ms"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  v1::CountersResult counters;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(c.out, &counters).ok());
  bool tcp = false, tcp_ext = false;
  for (const auto& g : counters.hosts(0).counters().groups()) {
    if (g.name() == "Tcp") tcp = g.values().count("ActiveOpens") == 1;
    if (g.name() == "TcpExt") tcp_ext = g.values().count("ListenOverflows") == 1;
  }
  EXPECT_TRUE(tcp);
  EXPECT_TRUE(tcp_ext);
  EXPECT_GT(counters.hosts(0).delta_seconds(), 0.19);
}

// The CLI dials an address directly (ipv4:/ipv6: targets) and a name through
// the resolver: all three reach the agent, and JSON names the host as given.
TEST_F(ListE2eTest, ReachesTheAgentByV4AndV6AddressAndByName) {
  AgentProcess v6({}, "[::1]:0");
  ASSERT_TRUE(v6.ok()) << v6.error();
  const std::string port = std::to_string(v6.port());
  for (const std::string& host : {"[::1]:" + port, "localhost:" + port}) {
    CommandResult r = Cli({"list", host, "-l", "-o", "json", "sport = :" + port});
    ASSERT_EQ(r.exit_code, 0) << host << ": " << r.err;
    v1::ListResult doc;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &doc).ok()) << r.out;
    ASSERT_EQ(doc.hosts_size(), 1);
    EXPECT_EQ(doc.hosts(0).host(), host);
    ASSERT_EQ(doc.hosts(0).connections_size(), 1) << host;  // the v6 agent's own listener
    EXPECT_EQ(doc.hosts(0).connections(0).local().address(), "::1");
  }
  CommandResult r = Cli({"info", agent_.address(), "[::1]:" + port});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("[::1]:" + port), std::string::npos) << r.out;
}

}  // namespace
}  // namespace tcbscope
