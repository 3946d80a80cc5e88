#include "common/counters_parser.h"

#include "gtest/gtest.h"

namespace tcbscope {
namespace {

int64_t Get(const v1::Counters& c, const std::string& group, const std::string& name) {
  for (const auto& g : c.groups()) {
    if (g.name() != group) continue;
    auto it = g.values().find(name);
    return it == g.values().end() ? -999 : it->second;
  }
  return -998;
}

TEST(CountersParserTest, ParsesSnmpAndNetstat) {
  const char* snmp =
      "Ip: Forwarding DefaultTTL\n"
      "Ip: 1 64\n"
      "Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens OutRsts\n"
      "Tcp: 1 200 120000 -1 42 7\n";
  const char* netstat =
      "TcpExt: SyncookiesSent ListenOverflows ListenDrops\n"
      "TcpExt: 0 3 5\n"
      "IpExt: InNoRoutes\n"
      "IpExt: 18446744073709551615\n";
  v1::Counters c;
  ASSERT_TRUE(ParseCounters(snmp, &c).ok());
  ASSERT_TRUE(ParseCounters(netstat, &c).ok());
  EXPECT_EQ(Get(c, "Tcp", "ActiveOpens"), 42);
  EXPECT_EQ(Get(c, "Tcp", "MaxConn"), -1);
  EXPECT_EQ(Get(c, "Tcp", "OutRsts"), 7);
  EXPECT_EQ(Get(c, "TcpExt", "ListenOverflows"), 3);
  EXPECT_EQ(Get(c, "TcpExt", "ListenDrops"), 5);
  EXPECT_EQ(Get(c, "Ip", "DefaultTTL"), 64);
  // A u64 counter past INT64_MAX wraps into the signed field, not an error.
  EXPECT_EQ(static_cast<uint64_t>(Get(c, "IpExt", "InNoRoutes")), 18446744073709551615ull);
  EXPECT_EQ(c.groups_size(), 4);
}

TEST(CountersParserTest, ParsesThisMachinesFiles) {
  // The real files: whatever this kernel writes must parse.
  for (const char* path : {"/proc/net/snmp", "/proc/net/netstat"}) {
    FILE* f = fopen(path, "r");
    if (f == nullptr) GTEST_SKIP() << path << " not readable";
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
    fclose(f);
    v1::Counters c;
    EXPECT_TRUE(ParseCounters(text, &c).ok()) << path;
    EXPECT_GT(c.groups_size(), 0);
  }
}

TEST(CountersParserTest, RejectsMalformedInput) {
  struct Case {
    const char* text;
    const char* says;
  } cases[] = {
      {"Tcp: A B\n", "header without a value line"},
      {"Tcp: A B\nUdp: 1 2\n", "prefix"},
      {"Tcp: A B\nTcp: 1\n", "1 values for 2 names"},
      {"Tcp: A B\nTcp: 1 x\n", "'x' is not an integer"},
      {"no colon here\nno colon here\n", "prefix"},
  };
  for (const Case& k : cases) {
    v1::Counters c;
    absl::Status s = ParseCounters(k.text, &c);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << k.text;
    EXPECT_NE(s.message().find(k.says), absl::string_view::npos) << s;
  }
  v1::Counters c;
  EXPECT_FALSE(ParseCounters(std::string(2 << 20, 'a'), &c).ok());
}

}  // namespace
}  // namespace tcbscope
