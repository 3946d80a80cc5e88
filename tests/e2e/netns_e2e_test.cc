// One agent in the root namespace reading the lab's namespaces
// (--all-netns, --netns): every connection tagged with its namespace, and
// the `netns` filter term selecting one.
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/kernel/host_facts.h"
#include "agent/kernel/netns_source.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tcbscope/v1/results.pb.h"
#include "testing/lab.h"
#include "testing/sockets.h"
#include "testing/subprocess.h"

namespace tcbscope {
namespace {

using testing::InNetns;
using testing::Lab;
using testing::SocketSet;

class NetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = Lab::Unavailable();
    if (!why.empty()) GTEST_SKIP() << "namespace tests skipped: " << why;
    lab_ = std::make_unique<Lab>(2);
    ASSERT_TRUE(lab_->ok()) << lab_->error();
    sockets_ = std::make_unique<SocketSet>();
    // Host 1 connects to a listener in host 2.
    int lfd = -1;
    ASSERT_TRUE(InNetns(lab_->Netns(2), [&] { b_port_ = sockets_->Listen(Lab::V4(2), 8, &lfd); }));
    ASSERT_TRUE(InNetns(lab_->Netns(1), [&] { a_ = sockets_->Connect(Lab::V4(2), b_port_); }));
    ASSERT_GE(sockets_->Accept(lfd), 0);
    a_port_ = SocketSet::LocalPort(a_);
    // And one on loopback in the root namespace, which --netns must leave out.
    root_ = sockets_->EstablishedPair("127.0.0.1");
  }
  void TearDown() override {
    sockets_.reset();
    lab_.reset();
  }

  v1::ListResult List(const testing::AgentProcess& agent, const std::vector<std::string>& extra,
                      std::string* text = nullptr) {
    std::vector<std::string> argv = {testing::CliBinary(), "list", agent.address(), "-o", "json"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    testing::CommandResult r = testing::RunCommand(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    v1::ListResult out;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &out).ok()) << r.out << r.err;
    if (text != nullptr) {
      std::vector<std::string> targv = {testing::CliBinary(), "list", agent.address()};
      targv.insert(targv.end(), extra.begin(), extra.end());
      *text = testing::RunCommand(targv).out;
    }
    return out;
  }

  // Connections of the lab pair: the client end (local port a_port_) and
  // the server end (remote port a_port_), with their namespace names.
  void FindLabEnds(const v1::ListResult& r, std::string* client_ns, std::string* server_ns, int* root_seen) {
    *root_seen = 0;
    ASSERT_EQ(r.hosts_size(), 1);
    for (const v1::Connection& c : r.hosts(0).connections()) {
      if (c.local().address() == Lab::V4(1) && static_cast<int>(c.local().port()) == a_port_) *client_ns = c.netns_name();
      if (c.remote().address() == Lab::V4(1) && static_cast<int>(c.remote().port()) == a_port_) *server_ns = c.netns_name();
      if (static_cast<int>(c.local().port()) == root_.client_port || static_cast<int>(c.local().port()) == root_.server_port) {
        if (c.local().address() == "127.0.0.1") ++*root_seen;
      }
    }
  }

  // The lab pair's client end (host 1 to host 2) as a lookup key, said to
  // be in namespace `netns`.
  v1::Connection ClientEnd(uint64_t netns) const {
    v1::Connection c;
    c.set_family(v1::FAMILY_INET);
    c.set_netns(netns);
    c.mutable_local()->set_address(Lab::V4(1));
    c.mutable_local()->set_port(static_cast<uint32_t>(a_port_));
    c.mutable_remote()->set_address(Lab::V4(2));
    c.mutable_remote()->set_port(static_cast<uint32_t>(b_port_));
    return c;
  }

  std::unique_ptr<Lab> lab_;
  std::unique_ptr<SocketSet> sockets_;
  int a_ = -1, a_port_ = 0, b_port_ = 0;
  SocketSet::Pair root_;
};

TEST_F(NetnsTest, AllNetnsListsEveryNamespaceTagged) {
  testing::AgentProcess agent({"--all-netns", "--events", "poll", "--seq", "off"});
  ASSERT_TRUE(agent.ok()) << agent.error() << agent.Log();
  std::string text;
  v1::ListResult r = List(agent, {}, &text);
  std::string client_ns, server_ns;
  int root_seen = 0;
  FindLabEnds(r, &client_ns, &server_ns, &root_seen);
  EXPECT_EQ(client_ns, lab_->Netns(1));
  EXPECT_EQ(server_ns, lab_->Netns(2));
  EXPECT_EQ(root_seen, 2) << "the agent's own namespace is one of every namespace";
  // The two lab ends carry different namespace inodes, both not the agent's.
  uint64_t client_inode = 0, server_inode = 0;
  for (const v1::Connection& c : r.hosts(0).connections()) {
    if (c.netns_name() == lab_->Netns(1)) client_inode = c.netns();
    if (c.netns_name() == lab_->Netns(2)) server_inode = c.netns();
  }
  EXPECT_NE(client_inode, 0u);
  EXPECT_NE(client_inode, server_inode);
  // The table shows the namespace column with the names.
  EXPECT_NE(text.find("Netns"), std::string::npos) << text;
  EXPECT_NE(text.find(lab_->Netns(2)), std::string::npos) << text;

  // `netns NAME` selects one namespace; `netns INODE` the same.
  for (const std::string& sel : {lab_->Netns(2), absl::StrCat(server_inode)}) {
    v1::ListResult only = List(agent, {"netns", sel});
    ASSERT_EQ(only.hosts_size(), 1);
    EXPECT_GT(only.hosts(0).connections_size(), 0) << sel;
    for (const v1::Connection& c : only.hosts(0).connections()) {
      EXPECT_EQ(c.netns_name(), lab_->Netns(2)) << sel;
      EXPECT_EQ(c.netns(), server_inode) << sel;
    }
  }

  // The agent says it spans namespaces.
  testing::CommandResult info = testing::RunCommand({testing::CliBinary(), "info", agent.address(), "-o", "json"});
  EXPECT_EQ(info.exit_code, 0) << info.err;
  v1::InfoResult parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(info.out, &parsed).ok()) << info.out;
  ASSERT_EQ(parsed.hosts_size(), 1);
  EXPECT_TRUE(parsed.hosts(0).info().capabilities().all_netns()) << info.out;
}

TEST_F(NetnsTest, NetnsReadsOnlyTheNamedOnes) {
  testing::AgentProcess agent({"--netns", lab_->Netns(1), "--netns", lab_->Netns(2), "--events", "poll"});
  ASSERT_TRUE(agent.ok()) << agent.error() << agent.Log();
  v1::ListResult r = List(agent, {});
  std::string client_ns, server_ns;
  int root_seen = 0;
  FindLabEnds(r, &client_ns, &server_ns, &root_seen);
  EXPECT_EQ(client_ns, lab_->Netns(1));
  EXPECT_EQ(server_ns, lab_->Netns(2));
  EXPECT_EQ(root_seen, 0) << "the root namespace was not asked for";
}

// Lookups by namespace (what a watched --all-netns agent does for closing
// sockets) keep one reader per namespace, and a walk that no longer finds a
// namespace lets its reader go.
TEST_F(NetnsTest, LookupsKeepAReaderPerNamespaceUntilItIsGone) {
  absl::StatusOr<std::unique_ptr<kernel::MultiNetnsSource>> source = kernel::MultiNetnsSource::Create({}, /*all=*/true);
  ASSERT_TRUE(source.ok()) << source.status();
  uint64_t client_inode = 0;
  for (const kernel::NetnsEntry& e : (*source)->Namespaces()) {
    if (e.name == lab_->Netns(1)) client_inode = e.inode;
  }
  ASSERT_NE(client_inode, 0u);
  const v1::Connection want = ClientEnd(client_inode);
  for (int round = 0; round < 3; ++round) {
    absl::StatusOr<std::optional<v1::Connection>> found = (*source)->FindOne(want);
    ASSERT_TRUE(found.ok()) << found.status();
    ASSERT_TRUE(found->has_value()) << "round " << round;
    EXPECT_EQ((*found)->state(), v1::TCP_STATE_ESTABLISHED);
    EXPECT_EQ((*found)->netns_name(), lab_->Netns(1));
    EXPECT_EQ((*source)->kept_readers(), 1u) << "round " << round;
  }

  // A namespace of its own, looked up (nothing in it), then deleted: the
  // kept reader holds it open, and the next walk, not finding it, lets go.
  const std::string extra = lab_->Netns(1) + "-gone";
  ASSERT_EQ(testing::RunCommand({"ip", "netns", "add", extra}).exit_code, 0);
  struct stat st;
  ASSERT_EQ(stat(("/run/netns/" + extra).c_str(), &st), 0);
  v1::Connection elsewhere = want;
  elsewhere.set_netns(st.st_ino);
  absl::StatusOr<std::optional<v1::Connection>> none = (*source)->FindOne(elsewhere);
  EXPECT_EQ(testing::RunCommand({"ip", "netns", "del", extra}).exit_code, 0);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ((*source)->kept_readers(), 2u);
  (*source)->Namespaces();
  EXPECT_EQ((*source)->kept_readers(), 1u) << "the deleted namespace's reader is kept";
  absl::StatusOr<std::optional<v1::Connection>> again = (*source)->FindOne(want);
  ASSERT_TRUE(again.ok() && again->has_value());
  // What the watch hub does when its last watcher leaves.
  (*source)->DropReaders();
  EXPECT_EQ((*source)->kept_readers(), 0u);
}

// A path found by an earlier walk can come to open another namespace (a
// /proc/PID/ns/net whose pid was reused elsewhere); a lookup must not answer
// from that namespace, nor keep a reader for it.
TEST_F(NetnsTest, LookupThroughAStalePathDoesNotAnswerFromAnotherNamespace) {
  char dir_template[] = "/tmp/tcbscope-netns-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string link = std::string(dir_template) + "/net";
  ASSERT_EQ(symlink(("/run/netns/" + lab_->Netns(2)).c_str(), link.c_str()), 0);
  absl::StatusOr<std::unique_ptr<kernel::MultiNetnsSource>> source =
      kernel::MultiNetnsSource::Create({link}, /*all=*/false);
  ASSERT_TRUE(source.ok()) << source.status();
  std::vector<kernel::NetnsEntry> found = (*source)->Namespaces();
  ASSERT_EQ(found.size(), 1u);
  const uint64_t server_inode = found[0].inode;
  // Now the path leads to host 1, where the client end is.
  ASSERT_EQ(unlink(link.c_str()), 0);
  ASSERT_EQ(symlink(("/run/netns/" + lab_->Netns(1)).c_str(), link.c_str()), 0);
  absl::StatusOr<std::optional<v1::Connection>> r = (*source)->FindOne(ClientEnd(server_inode));
  unlink(link.c_str());
  rmdir(dir_template);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->has_value()) << "answered for host 2's namespace from host 1's: " << (*r)->DebugString();
  EXPECT_EQ((*source)->kept_readers(), 0u);
}

TEST_F(NetnsTest, NetnsThatDoesNotExistIsRefusedAtStart) {
  testing::CommandResult r =
      testing::RunCommand({testing::AgentBinary(), "--listen", "127.0.0.1:0", "--netns", "tcbscope-no-such-ns"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("tcbscope-no-such-ns"), std::string::npos) << r.err;
}

// GetHostInfo's addresses are kept between calls: a call with nothing
// changed reads none from the kernel, and the first call after an address
// was added or removed reads them again and reports the change.
TEST(HostFactsNetnsTest, AddressesAreReadAgainAfterAChangeAndOnlyThen) {
  const std::string why = Lab::Unavailable();
  if (!why.empty()) GTEST_SKIP() << "namespace tests skipped: " << why;
  Lab lab(1);
  ASSERT_TRUE(lab.ok()) << lab.error();
  auto has = [](const v1::HostInfo& info, const std::string& address) {
    for (const v1::InterfaceAddress& a : info.addresses()) {
      if (a.address() == address) return true;
    }
    return false;
  };
  auto ip = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"ip"};
    argv.insert(argv.end(), args.begin(), args.end());
    testing::CommandResult r = lab.RunIn(1, argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  };
  const std::string added = "198.51.100.201";
  ASSERT_TRUE(InNetns(lab.Netns(1), [&] {
    kernel::HostFacts facts;
    v1::HostInfo first, second, with, without;
    ASSERT_TRUE(facts.Read(&first).ok());
    EXPECT_TRUE(has(first, Lab::V4(1)));
    EXPECT_FALSE(has(first, added));
    EXPECT_EQ(facts.address_reads(), 1);
    ASSERT_TRUE(facts.Read(&second).ok());
    EXPECT_EQ(facts.address_reads(), 1) << "nothing changed, yet the addresses were read again";
    EXPECT_EQ(second.addresses_size(), first.addresses_size());
    EXPECT_TRUE(has(second, Lab::V4(1)));

    ip({"addr", "add", added + "/32", "dev", "veth0"});
    ASSERT_TRUE(facts.Read(&with).ok());
    EXPECT_TRUE(has(with, added));
    EXPECT_EQ(facts.address_reads(), 2);

    ip({"addr", "del", added + "/32", "dev", "veth0"});
    ASSERT_TRUE(facts.Read(&without).ok());
    EXPECT_FALSE(has(without, added));
    EXPECT_TRUE(has(without, Lab::V4(1)));
    EXPECT_EQ(facts.address_reads(), 3);
  }));
}

}  // namespace
}  // namespace tcbscope
