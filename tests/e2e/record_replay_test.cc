// Record and replay in ss's dump format, checked against ss itself in both
// directions: our recording read by `TCPDIAG_FILE=F ss`, and an `ss -D`
// recording served by tcbscope-agent --replay.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tcbscope/v1/results.pb.h"
#include "testing/sockets.h"
#include "testing/subprocess.h"

namespace tcbscope {
namespace {

using testing::AgentProcess;
using testing::CommandResult;
using testing::RunCommand;
using testing::SocketSet;

class RecordReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tcbscope-rec-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    pair_ = sockets_.EstablishedPair("127.0.0.1");
    sockets_.WriteBytes(pair_.client, 12345);
    ASSERT_TRUE(testing::WaitFor([&] {
      CommandResult r = RunCommand({"ss", "-tnH", "sport", "=", absl::StrCat(":", pair_.server_port)});
      return r.out.find("12345") != std::string::npos;
    }));
  }
  void TearDown() override { RunCommand({"rm", "-rf", dir_}); }

  // The receiver's row as `tcbscope list` shows it from `agent`.
  const v1::Connection* FindReceiver(const v1::ListResult& r) {
    for (const auto& c : r.hosts(0).connections()) {
      if (static_cast<int>(c.local().port()) == pair_.server_port &&
          static_cast<int>(c.remote().port()) == pair_.client_port)
        return &c;
    }
    return nullptr;
  }

  v1::ListResult List(const AgentProcess& agent, const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {testing::CliBinary(), "list", agent.address(), "-a", "-o", "json"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    CommandResult r = RunCommand(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    v1::ListResult out;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &out).ok()) << r.out.substr(0, 300);
    return out;
  }

  std::string dir_;
  SocketSet sockets_;
  SocketSet::Pair pair_;
};

TEST_F(RecordReplayTest, OurRecordingReadsInSsAndReplaysInTcbscope) {
  const std::string file = dir_ + "/rec.dump";
  {
    AgentProcess recorder({"--record", file});
    ASSERT_TRUE(recorder.ok()) << recorder.error();
    v1::ListResult live = List(recorder, {"-i"});
    ASSERT_NE(FindReceiver(live), nullptr);
  }
  // ss reads it (TCPDIAG_FILE ignores -a; it prints every recorded socket).
  CommandResult ss = RunCommand({"ss", "-tni"}, 30000, {"TCPDIAG_FILE=" + file});
  ASSERT_EQ(ss.exit_code, 0) << ss.err;
  const std::string want = absl::StrCat("127.0.0.1:", pair_.server_port);
  EXPECT_NE(ss.out.find(want), std::string::npos) << ss.out;
  EXPECT_NE(ss.out.find("bytes_received:12345"), std::string::npos) << ss.out;

  AgentProcess replay({"--replay", file});
  ASSERT_TRUE(replay.ok()) << replay.error();
  sockets_.Close(pair_.client);  // the live socket is gone; the recording is not
  v1::ListResult r = List(replay, {"-i"});
  const v1::Connection* rx = FindReceiver(r);
  ASSERT_NE(rx, nullptr);
  EXPECT_EQ(rx->recv_q(), 12345u);
  EXPECT_EQ(rx->tcp_info().bytes_received(), 12345u);
  // Filters and state defaults apply to a replay as to the kernel.
  v1::ListResult only_listen = List(replay, {"state", "listening"});
  for (const auto& c : only_listen.hosts(0).connections()) EXPECT_EQ(c.state(), v1::TCP_STATE_LISTEN);

  CommandResult info = RunCommand({testing::CliBinary(), "info", replay.address()});
  EXPECT_NE(info.out.find("replay:" + file), std::string::npos) << info.out;
}

TEST_F(RecordReplayTest, SsRecordingReplaysInTcbscope) {
  const std::string file = dir_ + "/ss.dump";
  CommandResult ss = RunCommand({"ss", "-tanim", "-D", file});
  ASSERT_EQ(ss.exit_code, 0) << ss.err;
  AgentProcess replay({"--replay", file});
  ASSERT_TRUE(replay.ok()) << replay.error();
  v1::ListResult r = List(replay, {"-i"});
  const v1::Connection* rx = FindReceiver(r);
  ASSERT_NE(rx, nullptr) << r.ShortDebugString().substr(0, 1000);
  EXPECT_EQ(rx->recv_q(), 12345u);
  EXPECT_EQ(rx->tcp_info().bytes_received(), 12345u);
  EXPECT_GT(rx->memory().rmem_alloc_bytes(), 0u);
}

TEST_F(RecordReplayTest, GarbageReplayFileIsRefusedAtStart) {
  const std::string file = dir_ + "/garbage.dump";
  {
    std::ofstream out(file);
    out << "this is not a netlink dump at all, just text\n";
  }
  CommandResult r = RunCommand({testing::AgentBinary(), "--replay", file, "--listen", "127.0.0.1:0"}, 10000);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(file), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not a sock_diag recording"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  CommandResult missing = RunCommand({testing::AgentBinary(), "--replay", dir_ + "/nope", "--listen", "127.0.0.1:0"});
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_NE(missing.err.find("No such file"), std::string::npos) << missing.err;
}

TEST(AgentFlagsTest, BadFlagsAreOneLineAndExitTwo) {
  struct Case {
    std::vector<std::string> args;
    const char* says;
  } cases[] = {
      {{"--listen", "198.51.100.1:7411"}, "not loopback"},
      {{"--listen", "nonsense"}, "--listen"},
      {{"--listen", "127.0.0.1:99999"}, "port"},
      {{"--record", "/tmp/a", "--replay", "/tmp/b"}, "together"},
      {{"--tls-cert", "/tmp/x"}, "go together"},
      {{"--no-such-flag"}, "no-such-flag"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {testing::AgentBinary()};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    CommandResult r = RunCommand(argv, 10000);
    EXPECT_EQ(r.exit_code, 2) << c.args[0] << ": " << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

TEST(AgentLifecycleTest, StopsCleanlyOnSigterm) {
  AgentProcess agent;
  ASSERT_TRUE(agent.ok()) << agent.error();
  EXPECT_EQ(agent.Stop(), 0);
  EXPECT_NE(agent.Log().find("stopped"), std::string::npos) << agent.Log();
}

}  // namespace
}  // namespace tcbscope
