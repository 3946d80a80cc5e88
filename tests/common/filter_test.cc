// The ss filter language: every operator and alias, state words and groups,
// precedence (ss's: and/or/juxtaposition left to right), addresses of both
// families and v4-mapped, and each error's column and wording.
#include "common/filter.h"

#include <string>

#include "common/connection_fields.h"
#include "common/tcb.h"
#include "gtest/gtest.h"
#include "tests/common/every_field.h"

namespace tcbscope {
namespace {

v1::Connection Conn(const std::string& la, int lp, const std::string& ra, int rp,
                    v1::TcpState st = v1::TCP_STATE_ESTABLISHED) {
  v1::Connection c;
  c.set_family(la.find(':') == std::string::npos ? v1::FAMILY_INET : v1::FAMILY_INET6);
  c.set_state(st);
  c.mutable_local()->set_address(la);
  c.mutable_local()->set_port(lp);
  c.mutable_remote()->set_address(ra);
  c.mutable_remote()->set_port(rp);
  return c;
}

bool M(const std::string& filter, const v1::Connection& c) {
  absl::StatusOr<Filter> f = Filter::Parse(filter);
  EXPECT_TRUE(f.ok()) << filter << ": " << f.status();
  return f.ok() && f->Matches(c);
}

const v1::Connection kSsh = Conn("198.51.100.1", 22, "198.51.100.2", 40000);

TEST(FilterTest, AStateNoMaskHoldsIsInNoSet) {
  // An agent may send any number as a state (proto3 enums are open).
  for (int s : {-1, 32, 1000, -2147483647 - 1}) {
    EXPECT_EQ(StateBit(static_cast<v1::TcpState>(s)), 0u) << s;
  }
  EXPECT_EQ(StateBit(static_cast<v1::TcpState>(31)), 1u << 31);
}

TEST(FilterTest, EmptyMatchesEverythingAndKeepsDefaults) {
  absl::StatusOr<Filter> f = Filter::Parse("   ");
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->MatchesEverything());
  EXPECT_TRUE(f->Matches(kSsh));
  EXPECT_EQ(f->States(kDefaultStates), kDefaultStates);
  EXPECT_EQ(f->States(kListeningStates), kListeningStates);
}

TEST(FilterTest, PortOperatorsAndAliases) {
  struct Case {
    const char* f;
    bool want;
  } cases[] = {
      {"sport = :22", true},   {"sport == :22", true}, {"sport eq :22", true},  {"sport :22", true},
      {"sport 22", true},      {"sport = 22", true},   {"sport != :22", false}, {"sport ne :22", false},
      {"sport neq :22", false}, {"sport < :23", true}, {"sport lt :22", false}, {"sport <= :22", true},
      {"sport le :21", false}, {"sport > :21", true},  {"sport gt :22", false}, {"sport >= :22", true},
      {"sport ge :23", false}, {"dport = :40000", true}, {"dport > :1024", true}, {"dport < :1024", false},
      {"sport=:22", true},     {"dport>=:40000", true}, {"sport = :ssh", true},  {"SPORT = :22", true},
  };
  for (const Case& c : cases) EXPECT_EQ(M(c.f, kSsh), c.want) << c.f;
}

TEST(FilterTest, AddressesAndPrefixes) {
  struct Case {
    const char* f;
    bool want;
  } cases[] = {
      {"src 198.51.100.1", true},         {"src 198.51.100.2", false},       {"dst 198.51.100.2", true},
      {"src 198.51.100.0/24", true},      {"src 198.51.100.0/31", true},     {"src 198.51.100.2/32", false},
      {"src 198.51.100.1:22", true},      {"src 198.51.100.1:23", false},    {"src 198.51.100.0/24:22", true},
      {"src :22", true},                  {"src *:22", true},                {"src *", true},
      {"dst 198.51.100.2:*", true},       {"src = 198.51.100.1", true},      {"src == 198.51.100.1", true},
      {"src != 198.51.100.1", false},     {"src 0.0.0.0/0", true},           {"src [2001:db8::1]", false},
      {"src 2001:db8::/32", false},       {"src 198.51.100.1:ssh", true},
  };
  for (const Case& c : cases) EXPECT_EQ(M(c.f, kSsh), c.want) << c.f;
}

TEST(FilterTest, IPv6AndV4Mapped) {
  const v1::Connection v6 = Conn("2001:db8::1", 443, "2001:db8::2", 50000);
  EXPECT_TRUE(M("src [2001:db8::1]", v6));
  EXPECT_TRUE(M("src [2001:db8::1]:443", v6));
  EXPECT_TRUE(M("src [2001:db8::/64]", v6));
  EXPECT_TRUE(M("src [2001:db8::]/64", v6));
  EXPECT_TRUE(M("src 2001:db8::1", v6));  // bare, as ss does not allow; unambiguous
  EXPECT_FALSE(M("src [2001:db8::2]", v6));
  EXPECT_FALSE(M("src 0.0.0.0/0", v6));   // a v4 prefix never matches pure v6
  const v1::Connection mapped = Conn("::ffff:198.51.100.1", 80, "::ffff:198.51.100.9", 1234);
  EXPECT_TRUE(M("src 198.51.100.1", mapped));   // v4 rule matches a v4-mapped socket
  EXPECT_TRUE(M("dst 198.51.100.0/24", mapped));
  EXPECT_TRUE(M("src [::ffff:198.51.100.1]", mapped));
  EXPECT_FALSE(M("src [::ffff:198.51.100.1]", kSsh));  // but not the reverse
  EXPECT_TRUE(M("src localhost", Conn("127.0.0.1", 1, "127.0.0.1", 2)));
  EXPECT_FALSE(M("src localhost", Conn("::1", 1, "::1", 2)));  // ss resolves it to 127.0.0.1
}

TEST(FilterTest, BooleansAndPrecedence) {
  // kSsh: sport 22, dport 40000.
  EXPECT_TRUE(M("sport = :22 and dport = :40000", kSsh));
  EXPECT_TRUE(M("sport = :22 && dport = :40000", kSsh));
  EXPECT_TRUE(M("sport = :22 & dport = :40000", kSsh));
  EXPECT_FALSE(M("sport = :22 and dport = :1", kSsh));
  EXPECT_TRUE(M("sport = :1 or sport = :22", kSsh));
  EXPECT_TRUE(M("sport = :1 || sport = :22", kSsh));
  EXPECT_TRUE(M("sport = :1 | sport = :22", kSsh));
  EXPECT_TRUE(M("not sport = :1", kSsh));
  EXPECT_TRUE(M("! sport = :1", kSsh));
  EXPECT_TRUE(M("!sport = :1", kSsh));
  EXPECT_TRUE(M("not not sport = :22", kSsh));
  EXPECT_TRUE(M("src 198.51.100.1 sport = :22", kSsh));   // juxtaposition is and
  EXPECT_FALSE(M("src 198.51.100.1 sport = :23", kSsh));
  // ss evaluates and/or left to right with one precedence:
  // "a or b and c" is "(a or b) and c", not "a or (b and c)".
  EXPECT_FALSE(M("sport = :22 or sport = :1 and sport = :2", kSsh));
  EXPECT_TRUE(M("sport = :1 and sport = :2 or sport = :22", kSsh));
  EXPECT_FALSE(M("sport = :22 or sport = :1 sport = :2", kSsh));
  EXPECT_TRUE(M("sport = :22 or ( sport = :1 and sport = :2 )", kSsh));
  EXPECT_TRUE(M("(sport = :22 or sport = :1) and dport = :40000", kSsh));
  // not binds to the next condition only.
  EXPECT_TRUE(M("not sport = :1 or sport = :1", kSsh));
  EXPECT_FALSE(M("not ( sport = :22 or sport = :1 )", kSsh));
}

TEST(FilterTest, DebugStringShowsTheTree) {
  absl::StatusOr<Filter> f = Filter::Parse("a_typo_free sport = :1");
  EXPECT_FALSE(f.ok());
  f = Filter::Parse("sport = :1 or sport = :2 src 198.51.100.0/24");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->DebugString(), "((sport = :1 or sport = :2) and src 198.51.100.0/24:*)");
}

TEST(FilterTest, NetnsByNameOrInode) {
  v1::Connection pod = kSsh;
  pod.set_netns(4026532301);
  pod.set_netns_name("blue");
  v1::Connection host = kSsh;
  host.set_netns(4026531840);
  EXPECT_TRUE(M("netns blue", pod));
  EXPECT_FALSE(M("netns blue", host));
  EXPECT_TRUE(M("netns = 4026532301", pod));
  EXPECT_FALSE(M("netns 4026532301", host));
  EXPECT_TRUE(M("not netns blue", host));
  EXPECT_TRUE(M("netns blue and dport = :40000", pod));
  EXPECT_FALSE(M("netns blue and dport = :40001", pod));
  EXPECT_TRUE(M("( netns red or netns blue )", pod));
  absl::StatusOr<Filter> missing = Filter::Parse("netns");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("namespace"), std::string::npos) << missing.status();
  EXPECT_FALSE(Filter::Parse("netns )").ok());
}

TEST(FilterTest, StateWordsAndGroups) {
  auto states = [](const std::string& text, StateMask defaults = kDefaultStates) {
    absl::StatusOr<Filter> f = Filter::Parse(text);
    EXPECT_TRUE(f.ok()) << text << ": " << f.status();
    return f.ok() ? f->States(defaults) : 0;
  };
  const StateMask est = StateBit(v1::TCP_STATE_ESTABLISHED);
  EXPECT_EQ(states("state established"), est);
  EXPECT_EQ(states("state ESTABLISHED"), est);
  EXPECT_EQ(states("state established", kListeningStates), est);  // replaces -l's default
  EXPECT_EQ(states("state syn-sent"), StateBit(v1::TCP_STATE_SYN_SENT));
  EXPECT_EQ(states("state syn-recv"), StateBit(v1::TCP_STATE_SYN_RECV));
  EXPECT_EQ(states("state syn-rcv"), StateBit(v1::TCP_STATE_SYN_RECV));
  EXPECT_EQ(states("state fin-wait-1"), StateBit(v1::TCP_STATE_FIN_WAIT1));
  EXPECT_EQ(states("state fin-wait-2"), StateBit(v1::TCP_STATE_FIN_WAIT2));
  EXPECT_EQ(states("state time-wait"), StateBit(v1::TCP_STATE_TIME_WAIT));
  EXPECT_EQ(states("state closed"), StateBit(v1::TCP_STATE_CLOSE));
  EXPECT_EQ(states("state close"), StateBit(v1::TCP_STATE_CLOSE));
  EXPECT_EQ(states("state unconnected"), StateBit(v1::TCP_STATE_CLOSE));
  EXPECT_EQ(states("state close-wait"), StateBit(v1::TCP_STATE_CLOSE_WAIT));
  EXPECT_EQ(states("state last-ack"), StateBit(v1::TCP_STATE_LAST_ACK));
  EXPECT_EQ(states("state listening"), StateBit(v1::TCP_STATE_LISTEN));
  EXPECT_EQ(states("state closing"), StateBit(v1::TCP_STATE_CLOSING));
  EXPECT_EQ(states("state all"), kAllStates);
  EXPECT_EQ(states("state connected"), kAllStates & ~(StateBit(v1::TCP_STATE_LISTEN) | StateBit(v1::TCP_STATE_CLOSE)));
  EXPECT_EQ(states("state synchronized"), kConnectedStates & ~StateBit(v1::TCP_STATE_SYN_SENT));
  EXPECT_EQ(states("state bucket"), StateBit(v1::TCP_STATE_SYN_RECV) | StateBit(v1::TCP_STATE_TIME_WAIT));
  EXPECT_EQ(states("state big"), kAllStates & ~(StateBit(v1::TCP_STATE_SYN_RECV) | StateBit(v1::TCP_STATE_TIME_WAIT)));
  // Several: the first decides the start, the rest add or remove, in order.
  EXPECT_EQ(states("state established state listening"), est | StateBit(v1::TCP_STATE_LISTEN));
  EXPECT_EQ(states("exclude established"), kAllStates & ~est);
  EXPECT_EQ(states("excl established"), kAllStates & ~est);
  EXPECT_EQ(states("state all exclude listening"), kAllStates & ~StateBit(v1::TCP_STATE_LISTEN));
  EXPECT_EQ(states("exclude listening state all"), kAllStates);
  // The rest of the filter follows the state words.
  absl::StatusOr<Filter> f = Filter::Parse("state established sport = :22");
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->Matches(kSsh));
  EXPECT_FALSE(f->MatchesEverything());
}

void ExpectError(const std::string& text, int column, const std::string& says) {
  absl::StatusOr<Filter> f = Filter::Parse(text);
  ASSERT_FALSE(f.ok()) << text;
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string msg(f.status().message());
  EXPECT_NE(msg.find("filter: column " + std::to_string(column) + ":"), std::string::npos) << text << " → " << msg;
  EXPECT_NE(msg.find(says), std::string::npos) << text << " → " << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
}

TEST(FilterTest, ErrorsNameTheColumnAndWhatWasExpected) {
  ExpectError("dport = x", 9, "expected a port");
  ExpectError("dport = x", 9, "got 'x'");
  ExpectError("sport", 6, "got end of filter");
  ExpectError("sport =", 8, "a port after 'sport ='");
  ExpectError("sport = :70000", 9, "a port (0-65535");
  ExpectError("state bogus", 7, "expected a state");
  ExpectError("state", 6, "a state name after 'state'");
  ExpectError("src", 4, "an address after 'src'");
  ExpectError("src 1.2.3", 5, "expected an address");
  ExpectError("src 10.0.0.0/33", 5, "expected an address");
  ExpectError("src example.com", 5, "expected an address");
  ExpectError("( sport = :22", 14, "expected ')'");
  ExpectError("sport = :22 )", 13, "')' without a matching '('");
  ExpectError("sport = :22 and", 16, "a condition after 'and'");
  ExpectError("sport = :22 or )", 16, "a condition after 'or'");
  ExpectError("bogus", 1, "expected a condition");
  ExpectError("sport = :22 state established", 13, "must come before");
  ExpectError("not", 4, "expected a condition");
  ExpectError("dev lo", 1, "expected a condition");
}

TEST(FilterTest, LimitsStopHostileFilters) {
  ExpectError(std::string(5000, ' '), 4097, "longer than 4096 bytes");
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += "( ";
  deep += "sport = :1";
  for (int i = 0; i < 40; ++i) deep += " )";
  absl::StatusOr<Filter> f = Filter::Parse(deep);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("nested deeper than 32"), absl::string_view::npos);
  std::string nots(3000, '!');
  nots += " sport = :1";
  EXPECT_FALSE(Filter::Parse(nots).ok());
  std::string many;
  for (int i = 0; i < 300; ++i) many += "sport 1 | ";
  many += "sport = :2";
  f = Filter::Parse(many);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("more than 256 conditions"), absl::string_view::npos);
  // Just inside the limits is fine.
  std::string ok;
  for (int i = 0; i < 30; ++i) ok += "( ";
  ok += "sport = :22";
  for (int i = 0; i < 30; ++i) ok += " )";
  EXPECT_TRUE(M(ok, kSsh));
}

// `correlate`'s table asks agents for TcbFieldPaths() plus the namespace when
// it has a filter (client/pairing.cc), and filters what arrives: the filter
// must read nothing else, or rows would silently go missing.
TEST(FilterTest, ReadsNothingCorrelatesMaskLeavesOut) {
  google::protobuf::FieldMask mask;
  for (const std::string& p : TcbFieldPaths()) mask.add_paths(p);
  mask.add_paths("netns");
  mask.add_paths("netns_name");
  absl::StatusOr<ConnectionFields> fields = ConnectionFields::FromMask(mask);
  ASSERT_TRUE(fields.ok()) << fields.status();
  v1::Connection full;
  testing::FillEveryField(&full);
  full.mutable_local()->set_address("198.51.100.1");
  full.mutable_local()->set_port(40000);
  full.mutable_remote()->set_address("2001:db8::2");
  full.mutable_remote()->set_port(443);
  full.set_netns(4026531840);
  full.set_netns_name("lab");
  v1::Connection sent = full;
  fields->Trim(&sent);
  for (const char* text :
       {"sport = :40000", "dport = :443", "dport != :443", "src 198.51.100.0/24", "dst 2001:db8::/64",
        "dst 198.51.100.2", "netns lab", "netns 4026531840", "netns other", "not sport = :1",
        "( sport > :1000 and dport < :1000 ) or src 192.0.2.1", "state established sport = :40000"}) {
    absl::StatusOr<Filter> f = Filter::Parse(text);
    ASSERT_TRUE(f.ok()) << text << ": " << f.status();
    EXPECT_EQ(f->Matches(sent), f->Matches(full)) << text;
  }
}

}  // namespace
}  // namespace tcbscope
