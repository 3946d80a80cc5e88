// Differential test against the real ss: the same live sockets, the same
// filter, the same selection. The test's own sockets are quiet, so both tools
// see one socket table; only sockets that involve this test's ports are
// compared (other processes may open sockets meanwhile).
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "testing/sockets.h"
#include "testing/subprocess.h"

namespace tcbscope {
namespace {

using testing::AgentProcess;
using testing::CommandResult;
using testing::RunCommand;
using testing::SocketSet;

int PortOf(absl::string_view endpoint) {
  const size_t colon = endpoint.rfind(':');
  int port = 0;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(endpoint.substr(colon + 1), &port)) return 0;
  return port;
}

// "LOCAL PEER" for each row that touches one of `ports`. (ss drops its
// State column when the filter names a single state, so rows are compared by
// their endpoints, which identify a socket.)
std::set<std::string> Rows(const std::string& table, const absl::flat_hash_set<int>& ports) {
  std::set<std::string> rows;
  for (absl::string_view line : absl::StrSplit(table, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    const bool has_state = !f.empty() && !absl::ascii_isdigit(static_cast<unsigned char>(f[0][0]));
    const size_t local = has_state ? 3 : 2;
    if (f.size() < local + 2) continue;
    if (!ports.contains(PortOf(f[local])) && !ports.contains(PortOf(f[local + 1]))) continue;
    rows.insert(absl::StrCat(f[local], " ", f[local + 1]));
  }
  return rows;
}

// One test per set of ss flags: each compares every filter, and must end
// within a TIME-WAIT's 60 s of its fixture (a row that expires between the
// two tools' reads would differ), also under the sanitizers beside other tests.
class SsDifferentialTest : public ::testing::TestWithParam<std::vector<std::string>> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(agent_.ok()) << agent_.error();
    if (RunCommand({"ss", "-V"}).exit_code != 0) GTEST_SKIP() << "ss (iproute2) is not installed";
    // Listeners on several addresses and both families; :: is dual-stack.
    int l1fd, l2fd, l3fd, l4fd;
    l1_ = sockets_.Listen("127.0.0.1", 16, &l1fd);
    l2_ = sockets_.Listen("127.0.0.2", 16, &l2fd);
    l3_ = sockets_.Listen("::1", 16, &l3fd);
    l4_ = sockets_.Listen("::", 16, &l4fd);
    for (int p : {l1_, l2_, l3_, l4_}) ports_.insert(p);
    // Established: two to L1, one to L2 from 127.0.0.3, one over ::1, one
    // v4-mapped (127.0.0.1 → dual-stack L4).
    sockets_.Connect("127.0.0.1", l1_);
    sockets_.Accept(l1fd);
    sockets_.Connect("127.0.0.1", l1_);
    sockets_.Accept(l1fd);
    sockets_.Connect("127.0.0.2", l2_, "127.0.0.3");
    sockets_.Accept(l2fd);
    sockets_.Connect("::1", l3_);
    sockets_.Accept(l3fd);
    sockets_.Connect("127.0.0.1", l4_);
    sockets_.Accept(l4fd);
    // One connection left un-accepted in L1's queue (ESTAB on both ends).
    sockets_.Connect("127.0.0.1", l1_);
    // FIN-WAIT-2 / CLOSE-WAIT and TIME-WAIT.
    SocketSet::Pair half = sockets_.EstablishedPair("127.0.0.1");
    shutdown(half.client, SHUT_WR);
    ports_.insert(half.server_port);
    SocketSet::Pair done = sockets_.EstablishedPair("::1");
    ports_.insert(done.server_port);
    sockets_.Close(done.client);
    usleep(50000);
    sockets_.Close(done.server);
    usleep(100000);  // let the FINs settle
  }

  AgentProcess agent_;
  SocketSet sockets_;
  int l1_ = 0, l2_ = 0, l3_ = 0, l4_ = 0;
  absl::flat_hash_set<int> ports_;
};

TEST_P(SsDifferentialTest, SameSelectionAsSs) {
  const std::string p1 = absl::StrCat(l1_), p2 = absl::StrCat(l2_), p3 = absl::StrCat(l3_), p4 = absl::StrCat(l4_);
  const std::vector<std::string> filters = {
      "",
      "state established",
      "state listening",
      "state all",
      "state connected",
      "state synchronized",
      "state bucket",
      "state big",
      "state time-wait",
      "state fin-wait-2",
      "state close-wait",
      "exclude established",
      "state established state listening",
      "sport = :" + p1,
      "dport = :" + p1,
      "dport " + p1,
      "sport == " + p2,
      "sport > :" + p1,
      "sport >= :" + p2 + " and sport <= :" + p3,
      "dport lt :" + p3,
      "sport != :" + p1,
      "sport neq :" + p1,
      "dport gt :1024",
      "src 127.0.0.2",
      "dst 127.0.0.3",
      "src 127.0.0.0/8",
      "dst 127.0.0.1/32",
      "src [::1]",
      "src [::1]:" + p3,
      "src 127.0.0.1:" + p1,
      "dst 127.0.0.1:" + p1,
      "src [::ffff:127.0.0.1]",
      "src localhost",
      "src 127.0.0.1/8:" + p1,
      "dst 0.0.0.0",
      "src [::]",
      "dst *",
      "src *:" + p1,
      "src = 127.0.0.2",
      "sport = :" + p1 + " or sport = :" + p2 + " sport = :" + p2,
      "not sport = :" + p1 + " or sport = :" + p1,
      "state close-wait",
      "state bucket exclude time-wait",
      "src :" + p1,
      "( sport = :" + p1 + " or sport = :" + p2 + " )",
      "not sport = :" + p1,
      "! dport = :" + p1,
      "sport = :" + p1 + " and dport > :1024",
      "src 127.0.0.1 sport = :" + p1,
      "sport = :" + p1 + " || dport = :" + p1 + " && src 127.0.0.1",
      "( sport = :" + p1 + " || dport = :" + p1 + " ) && src 127.0.0.1",
      "state established ( dport = :" + p4 + " or sport = :" + p4 + " )",
      "exclude listening src 127.0.0.2",
      "not ( src [::1] or dst [::1] )",
  };
  const std::vector<std::string>& flags = GetParam();
  for (const std::string& filter : filters) {
    std::vector<std::string> words = absl::StrSplit(filter, ' ', absl::SkipEmpty());
    std::vector<std::string> ss = {"ss", "-tnH"};
    ss.insert(ss.end(), flags.begin(), flags.end());
    ss.insert(ss.end(), words.begin(), words.end());
    std::vector<std::string> tcb = {testing::CliBinary(), "list", agent_.address(), "-H"};
    tcb.insert(tcb.end(), flags.begin(), flags.end());
    tcb.insert(tcb.end(), words.begin(), words.end());
    CommandResult a = RunCommand(ss);
    CommandResult b = RunCommand(tcb);
    const std::string what = absl::StrCat("filter '", filter, "' flags '", absl::StrJoin(flags, " "), "'");
    ASSERT_EQ(a.exit_code, 0) << what << ": ss failed: " << a.err;
    ASSERT_EQ(b.exit_code, 0) << what << ": tcbscope failed: " << b.err;
    const std::set<std::string> want = Rows(a.out, ports_);
    const std::set<std::string> got = Rows(b.out, ports_);
    EXPECT_EQ(got, want) << what << "\nss:\n" << a.out << "\ntcbscope:\n" << b.out;
  }
  // The fixture must actually produce a non-trivial table.
  CommandResult all = RunCommand({testing::CliBinary(), "list", agent_.address(), "-H", "-a"});
  EXPECT_GE(Rows(all.out, ports_).size(), 15u) << all.out;
}

INSTANTIATE_TEST_SUITE_P(Flags, SsDifferentialTest,
                         ::testing::Values(std::vector<std::string>{}, std::vector<std::string>{"-a"},
                                           std::vector<std::string>{"-l"}),
                         [](const ::testing::TestParamInfo<std::vector<std::string>>& i) {
                           return i.param.empty() ? std::string("default") : i.param[0].substr(1);
                         });

}  // namespace
}  // namespace tcbscope
