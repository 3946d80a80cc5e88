#include "common/ip_address.h"

#include <arpa/inet.h>

#include "gtest/gtest.h"

namespace tcbscope {
namespace {

TEST(IpAddressTest, ParsesAndPrintsV4) {
  absl::StatusOr<IpAddress> a = IpAddress::Parse("198.51.100.7");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->is_v4());
  EXPECT_EQ(a->ToString(), "198.51.100.7");
}

// The fast IPv4 printer against inet_ntop: every value of each byte in
// each position (edge digits 0, 9, 10, 99, 100, 255 among them).
TEST(IpAddressTest, V4PrintsAsInetNtop) {
  for (int pos = 0; pos < 4; ++pos) {
    for (int v = 0; v < 256; ++v) {
      uint8_t b[4] = {198, 51, 100, 7};
      b[pos] = static_cast<uint8_t>(v);
      char want[INET_ADDRSTRLEN];
      ASSERT_NE(inet_ntop(AF_INET, b, want, sizeof(want)), nullptr);
      EXPECT_EQ(IpAddress::V4(b).ToString(), want);
    }
  }
  const uint8_t zeros[4] = {0, 0, 0, 0}, ones[4] = {255, 255, 255, 255};
  EXPECT_EQ(IpAddress::V4(zeros).ToString(), "0.0.0.0");
  EXPECT_EQ(IpAddress::V4(ones).ToString(), "255.255.255.255");
}

TEST(IpAddressTest, ParsesV6InCanonicalForm) {
  absl::StatusOr<IpAddress> a = IpAddress::Parse("2001:0db8:0:0:0:0:0:0001");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->is_v6());
  EXPECT_EQ(a->ToString(), "2001:db8::1");
  absl::StatusOr<IpAddress> b = IpAddress::Parse("[::1]");
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->IsLoopback());
}

TEST(IpAddressTest, V4MappedFoldsToV4) {
  absl::StatusOr<IpAddress> a = IpAddress::Parse("::ffff:198.51.100.2");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->IsV4Mapped());
  EXPECT_EQ(a->ToString(), "::ffff:198.51.100.2");
  EXPECT_EQ(a->Folded(), *IpAddress::Parse("198.51.100.2"));
  EXPECT_NE(*a, *IpAddress::Parse("198.51.100.2"));
  EXPECT_EQ(IpAddress::Parse("2001:db8::1")->Folded(), *IpAddress::Parse("2001:db8::1"));
}

TEST(IpAddressTest, RejectsGarbage) {
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "::g", "[::1", "example", "1.2.3.4/8"}) {
    EXPECT_FALSE(IpAddress::Parse(bad).ok()) << bad;
  }
}

TEST(IpAddressTest, PrefixMatch) {
  IpAddress a = *IpAddress::Parse("198.51.100.200");
  EXPECT_TRUE(a.InPrefix(*IpAddress::Parse("198.51.100.0"), 24));
  EXPECT_TRUE(a.InPrefix(*IpAddress::Parse("198.51.100.192"), 26));
  EXPECT_FALSE(a.InPrefix(*IpAddress::Parse("198.51.100.0"), 25));
  EXPECT_TRUE(a.InPrefix(*IpAddress::Parse("0.0.0.0"), 0));
  EXPECT_FALSE(a.InPrefix(*IpAddress::Parse("2001:db8::"), 0));  // other family
  // A v4 prefix matches a v4-mapped socket address.
  EXPECT_TRUE(IpAddress::Parse("::ffff:198.51.100.9")->InPrefix(*IpAddress::Parse("198.51.100.0"), 24));
  EXPECT_TRUE(IpAddress::Parse("2001:db8::abcd")->InPrefix(*IpAddress::Parse("2001:db8::"), 64));
  EXPECT_FALSE(IpAddress::Parse("2001:db9::1")->InPrefix(*IpAddress::Parse("2001:db8::"), 32));
}

TEST(EndpointTest, PrintsLikeSs) {
  Endpoint v4{*IpAddress::Parse("127.0.0.1"), 7411};
  Endpoint v6{*IpAddress::Parse("::1"), 22};
  EXPECT_EQ(v4.ToString(), "127.0.0.1:7411");
  EXPECT_EQ(v6.ToString(), "[::1]:22");
}

TEST(HostPortTest, ParsesForms) {
  struct Case {
    const char* in;
    const char* host;
    int port;
  } cases[] = {
      {"localhost", "localhost", 7411},   {"localhost:80", "localhost", 80},
      {"198.51.100.1", "198.51.100.1", 7411}, {"198.51.100.1:9", "198.51.100.1", 9},
      {"[2001:db8::1]:7412", "2001:db8::1", 7412}, {"[::1]", "::1", 7411},
      {"2001:db8::1", "2001:db8::1", 7411},
  };
  for (const Case& c : cases) {
    absl::StatusOr<HostPort> hp = ParseHostPort(c.in, 7411);
    ASSERT_TRUE(hp.ok()) << c.in << ": " << hp.status();
    EXPECT_EQ(hp->host, c.host) << c.in;
    EXPECT_EQ(hp->port, c.port) << c.in;
  }
  EXPECT_EQ(ParseHostPort("[2001:db8::1]:7412", 1)->ToString(), "[2001:db8::1]:7412");
}

TEST(HostPortTest, RejectsBadInputWithReason) {
  for (const char* bad : {"", ":80", "host:", "host:0", "host:65536", "host:http", "[::1", "[::1]x", "a b"}) {
    absl::StatusOr<HostPort> hp = ParseHostPort(bad, 7411);
    ASSERT_FALSE(hp.ok()) << bad;
    EXPECT_EQ(hp.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(hp.status().message().find("bad host"), absl::string_view::npos);
  }
}

}  // namespace
}  // namespace tcbscope
