// The live sock_diag reader: one walk of the kernel's tables for both
// families gives the sockets that two per-family dumps (as ss asks) give.
// Loopback sockets in the test's own namespace; needs no privilege.
#include <sys/stat.h>

#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "agent/kernel/inet_diag_parser.h"
#include "agent/kernel/sock_diag_reader.h"
#include "gtest/gtest.h"
#include "testing/sockets.h"

namespace tcbscope::kernel {
namespace {

using Key = std::tuple<int, int, std::string, uint32_t, std::string, uint32_t, uint64_t>;

// The test's own sockets, known by inode (the host has others, which come and
// go between two dumps), as family, state, endpoints and inode. `rows`
// counts them as delivered, so a socket given twice shows.
std::set<Key> Dump(SockDiagReader& reader, const std::set<uint64_t>& inodes, size_t* rows) {
  std::set<Key> out;
  *rows = 0;
  DumpRequest req;
  req.tcp_info = true;
  absl::StatusOr<DumpResult> r = reader.Dump(req, [&](const nlmsghdr* m) {
    v1::Connection c;
    absl::Status s = ParseInetDiagMessage(m, reader.netns(), &c);
    if (!s.ok()) return s;
    if (inodes.count(c.inode()) == 0) return absl::OkStatus();
    if (!c.has_tcp_info()) return absl::InternalError("one of the test's sockets came without tcp_info");
    ++*rows;
    out.emplace(c.family(), c.state(), c.local().address(), c.local().port(), c.remote().address(),
                c.remote().port(), c.inode());
    return absl::OkStatus();
  });
  EXPECT_TRUE(r.ok()) << r.status();
  return out;
}

uint64_t InodeOf(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
}

TEST(SockDiagReaderTest, OneWalkGivesWhatTwoPerFamilyDumpsGive) {
  SockDiagReader one;
  SockDiagReader per;
  per.AskPerFamily();
  testing::SocketSet s;
  std::vector<int> fds(2, -1);
  s.Listen("127.0.0.1", 8, &fds[0]);
  s.Listen("::1", 8, &fds[1]);
  for (const char* addr : {"127.0.0.1", "::1"}) {
    testing::SocketSet::Pair p = s.EstablishedPair(addr);
    fds.push_back(p.client);
    fds.push_back(p.server);
  }
  std::set<uint64_t> inodes;
  for (int fd : fds) inodes.insert(InodeOf(fd));
  ASSERT_EQ(inodes.size(), 6u);
  size_t one_rows = 0, per_rows = 0;
  const std::set<Key> a = Dump(one, inodes, &one_rows);
  if (one.asks_per_family()) GTEST_SKIP() << "this kernel does not serve the one-walk dump (TCPDIAG_GETSOCK)";
  const std::set<Key> b = Dump(per, inodes, &per_rows);
  EXPECT_EQ(a, b);
  // Two listeners and both ends of two connections, in both families, each
  // delivered once.
  EXPECT_EQ(one_rows, 6u);
  EXPECT_EQ(per_rows, 6u);
  EXPECT_EQ(a.size(), 6u);
  std::set<int> families;
  for (const Key& k : a) families.insert(std::get<0>(k));
  EXPECT_EQ(families, (std::set<int>{v1::FAMILY_INET, v1::FAMILY_INET6}));
}

}  // namespace
}  // namespace tcbscope::kernel
