// HostFacts against the live system: it must agree with what libc's own
// lookups say, one by one. (That it reads the addresses again after a
// change, and only then, is in netns_e2e_test: it needs a namespace.)
#include "agent/kernel/host_facts.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/strip.h"
#include "gtest/gtest.h"

namespace tcbscope::kernel {
namespace {

TEST(HostFactsTest, BootIdIsTheKernelsAndStaysTheSame) {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  if (!in) GTEST_SKIP() << "no /proc/sys/kernel/random/boot_id here";
  std::stringstream text;
  text << in.rdbuf();
  v1::HostInfo first, second;
  HostFacts facts;
  ASSERT_TRUE(facts.Read(&first).ok());
  ASSERT_TRUE(facts.Read(&second).ok());
  EXPECT_EQ(first.boot_id(), std::string(absl::StripAsciiWhitespace(text.str())));
  EXPECT_EQ(second.boot_id(), first.boot_id());
}

// Each address carries the index if_nametoindex gives its interface (other
// tests may add or remove interfaces meanwhile: one gone since is passed over).
TEST(HostFactsTest, AddressesCarryTheirInterfacesIndex) {
  v1::HostInfo info;
  ASSERT_TRUE(HostFacts().Read(&info).ok());
  int checked = 0;
  for (const v1::InterfaceAddress& a : info.addresses()) {
    EXPECT_FALSE(a.address().empty());
    const unsigned now = if_nametoindex(a.interface().c_str());
    if (now == 0) continue;
    EXPECT_EQ(a.ifindex(), now) << a.interface() << " " << a.address();
    ++checked;
  }
  ifaddrs* ifs = nullptr;
  ASSERT_EQ(getifaddrs(&ifs), 0);
  bool any = false;
  for (ifaddrs* i = ifs; i != nullptr; i = i->ifa_next) {
    any |= i->ifa_addr != nullptr && (i->ifa_addr->sa_family == AF_INET || i->ifa_addr->sa_family == AF_INET6);
  }
  freeifaddrs(ifs);
  if (any) {
    EXPECT_GT(checked, 0);
  }
}

}  // namespace
}  // namespace tcbscope::kernel
