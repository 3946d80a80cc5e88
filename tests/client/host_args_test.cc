// Where the hosts end and the filter begins on a command line, and what a
// bad host or filter costs (one InvalidArgument, before any round trip).
#include "client/host_args.h"

#include "gtest/gtest.h"

namespace tcbscope {
namespace {

TEST(HostArgsTest, HostsUntilTheFirstFilterWord) {
  absl::StatusOr<HostsAndFilter> r =
      SplitHostsAndFilter({"localhost", "198.51.100.2:7500", "[2001:db8::2]", "netns", "blue", "and", "dport", "=", ":443"});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->hosts.size(), 3u);
  EXPECT_EQ(r->hosts[1].port, 7500);
  EXPECT_EQ(r->hosts[2].port, 7411);
  EXPECT_EQ(r->filter, "netns blue and dport = :443");

  for (const char* first : {"state", "sport", "dst", "not", "(", "!", "sport=:22", "netns"}) {
    EXPECT_TRUE(IsFilterWord(first)) << first;
  }
  // Names that merely start like a keyword are hosts.
  for (const char* host : {"src-gw", "dst.example", "netns1", "notary", "state7"}) {
    EXPECT_FALSE(IsFilterWord(host)) << host;
  }
}

TEST(HostArgsTest, MistakesAreOneLine) {
  EXPECT_FALSE(SplitHostsAndFilter({"sport", "=", ":22"}).ok());            // no host
  EXPECT_FALSE(SplitHostsAndFilter({"localhost", "sport", "=", "x"}).ok());  // bad filter
  EXPECT_FALSE(SplitHostsAndFilter({"localhost:99999"}).ok());               // bad port
  absl::StatusOr<HostsAndFilter> r = SplitHostsAndFilter({"localhost", "netns"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
}

}  // namespace
}  // namespace tcbscope
