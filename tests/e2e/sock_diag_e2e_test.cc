// The live sock_diag reader: one walk of the kernel's tables for both
// families gives the sockets that two per-family dumps (as ss asks) give.
// Loopback sockets in the test's own namespace; needs no privilege.
#include <netinet/in.h>

#include <set>
#include <string>
#include <tuple>

#include "agent/kernel/inet_diag_parser.h"
#include "agent/kernel/sock_diag_reader.h"
#include "gtest/gtest.h"
#include "testing/sockets.h"

namespace tcbscope::kernel {
namespace {

using Key = std::tuple<int, int, std::string, uint32_t, std::string, uint32_t, uint64_t>;

// The test's own sockets (by port: the host has others, which come and go
// between two dumps), as family, state, endpoints and inode.
std::set<Key> Dump(SockDiagReader& reader, const std::set<uint32_t>& ports, uint64_t* messages) {
  std::set<Key> out;
  DumpRequest req;
  req.tcp_info = true;
  absl::StatusOr<DumpResult> r = reader.Dump(req, [&](const nlmsghdr* m) {
    v1::Connection c;
    absl::Status s = ParseInetDiagMessage(m, reader.netns(), &c);
    if (!s.ok()) return s;
    if (ports.count(c.local().port()) || ports.count(c.remote().port())) {
      if (!c.has_tcp_info()) return absl::InternalError("one of the test's sockets came without tcp_info");
      out.emplace(c.family(), c.state(), c.local().address(), c.local().port(), c.remote().address(),
                  c.remote().port(), c.inode());
    }
    return absl::OkStatus();
  });
  EXPECT_TRUE(r.ok()) << r.status();
  if (r.ok()) *messages = r->sockets;
  return out;
}

TEST(SockDiagReaderTest, OneWalkGivesWhatTwoPerFamilyDumpsGive) {
  testing::SocketSet s;
  std::set<uint32_t> ports;
  ports.insert(static_cast<uint32_t>(s.Listen("127.0.0.1", 8)));
  ports.insert(static_cast<uint32_t>(s.Listen("::1", 8)));
  for (const char* addr : {"127.0.0.1", "::1"}) {
    testing::SocketSet::Pair p = s.EstablishedPair(addr);
    ports.insert(static_cast<uint32_t>(p.server_port));
  }
  SockDiagReader one;
  SockDiagReader per;
  per.AskPerFamily();
  uint64_t one_messages = 0, per_messages = 0;
  const std::set<Key> a = Dump(one, ports, &one_messages);
  const std::set<Key> b = Dump(per, ports, &per_messages);
  EXPECT_FALSE(one.asks_per_family()) << "this kernel refused the one-walk dump";
  EXPECT_EQ(a, b);
  // Two listeners and both ends of two connections, in both families.
  EXPECT_EQ(a.size(), 6u);
  std::set<int> families;
  for (const Key& k : a) families.insert(std::get<0>(k));
  EXPECT_EQ(families, (std::set<int>{v1::FAMILY_INET, v1::FAMILY_INET6}));
  EXPECT_GT(one_messages, 0u);
  EXPECT_GT(per_messages, 0u);
}

}  // namespace
}  // namespace tcbscope::kernel
