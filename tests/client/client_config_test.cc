// The CLI's configuration file: what it accepts, how relative paths and
// precedence work, and that every mistake is one line naming file and line.
#include "client/client_config.h"

#include "gtest/gtest.h"

namespace tcbscope {
namespace {

TEST(ClientConfigTest, DefaultsAndNamedHosts) {
  absl::StatusOr<ClientConfig> c = ParseClientConfig(R"(
# defaults for every host
tls-ca = /etc/tcbscope/ca.pem
timeout = 5s
token-file = token   # relative: to the file's directory

[host web1]
address = 198.51.100.1
tls-cert = /etc/tcbscope/client.pem
tls-key = client.key

[ host db1 ]
address = [2001:db8::2]:7500
)",
                                                     "cfg", "/home/u/.config/tcbscope");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->defaults.tls_ca, "/etc/tcbscope/ca.pem");
  EXPECT_EQ(c->defaults.token_file, "/home/u/.config/tcbscope/token");
  ASSERT_TRUE(c->timeout.has_value());
  EXPECT_EQ(*c->timeout, absl::Seconds(5));
  ASSERT_EQ(c->hosts.size(), 2u);
  const NamedHost& web1 = c->hosts.at("web1");
  EXPECT_EQ(web1.address.host, "198.51.100.1");
  EXPECT_EQ(web1.address.port, 7411);
  EXPECT_EQ(web1.credentials.tls_cert, "/etc/tcbscope/client.pem");
  EXPECT_EQ(web1.credentials.tls_key, "/home/u/.config/tcbscope/client.key");
  EXPECT_TRUE(web1.credentials.tls_ca.empty()) << "a host section holds only what it sets";
  EXPECT_EQ(c->hosts.at("db1").address.host, "2001:db8::2");
  EXPECT_EQ(c->hosts.at("db1").address.port, 7500);
}

TEST(ClientConfigTest, EmptyIsNoSettings) {
  absl::StatusOr<ClientConfig> c = ParseClientConfig("\n  # nothing\n", "cfg", "/");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->hosts.empty());
  EXPECT_FALSE(c->timeout.has_value());
}

TEST(ClientConfigTest, MistakesNameFileAndLine) {
  struct Case {
    const char* text;
    const char* where;
    const char* what;
  } cases[] = {
      {"tls-ca = a\ncolour = blue\n", "cfg:2:", "unknown key 'colour'"},
      {"address = 198.51.100.1\n", "cfg:1:", "[host NAME]"},
      {"[host web1]\ntimeout = 3s\n", "cfg:2:", "top-level"},
      {"[host web1]\naddress = 198.51.100.1:99999\n", "cfg:2:", "address"},
      {"[host web1]\ntls-ca = x\n", "cfg:", "has no address"},
      {"[host web1]\naddress = 198.51.100.1\n[host web1]\naddress = 198.51.100.2\n", "cfg:3:", "twice"},
      {"[group x]\n", "cfg:1:", "[host NAME]"},
      {"[host bad name!]\n", "cfg:1:", "not a host name"},
      {"[host web1\n", "cfg:1:", "section"},
      {"timeout = soon\n", "cfg:1:", "not a positive duration"},
      {"tls-ca =\n", "cfg:1:", "no value"},
      {"just words\n", "cfg:1:", "KEY = VALUE"},
  };
  for (const Case& k : cases) {
    absl::StatusOr<ClientConfig> c = ParseClientConfig(k.text, "cfg", "/d");
    ASSERT_FALSE(c.ok()) << k.text;
    const std::string msg(c.status().message());
    EXPECT_EQ(msg.rfind(k.where, 0), 0u) << msg;
    EXPECT_NE(msg.find(k.what), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(ClientConfigTest, MissingFileIsAnErrorOnlyWhenNamed) {
  absl::StatusOr<std::optional<ClientConfig>> c = LoadClientConfig("/nonexistent/tcbscope/config", false);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_value());
  c = LoadClientConfig("/nonexistent/tcbscope/config", true);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("/nonexistent/tcbscope/config"), absl::string_view::npos);
}

}  // namespace
}  // namespace tcbscope
