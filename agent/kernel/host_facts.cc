#include "agent/kernel/host_facts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <libmnl/libmnl.h>
#include <linux/if_packet.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/counters_parser.h"
#include "common/ip_address.h"
#include "common/proto_time.h"

namespace tcbscope::kernel {
namespace {

bool ReadSmallFile(const std::string& path, std::string* out, size_t limit = 1 << 20) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::string data(limit, '\0');
  in.read(data.data(), static_cast<std::streamsize>(limit));
  data.resize(static_cast<size_t>(in.gcount()));
  *out = std::move(data);
  return true;
}

int PrefixLength(const sockaddr* mask) {
  if (mask == nullptr) return 0;
  const uint8_t* b = nullptr;
  size_t n = 0;
  if (mask->sa_family == AF_INET) {
    b = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in*>(mask)->sin_addr);
    n = 4;
  } else if (mask->sa_family == AF_INET6) {
    b = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in6*>(mask)->sin6_addr);
    n = 16;
  }
  int bits = 0;
  for (size_t i = 0; i < n; ++i) bits += __builtin_popcount(b[i]);
  return bits;
}

// The boot id cannot change while this process runs: read once.
const std::string& BootId() {
  static const std::string* const id = [] {
    std::string text;
    ReadSmallFile("/proc/sys/kernel/random/boot_id", &text, 128);
    return new std::string(absl::StripAsciiWhitespace(text));
  }();
  return *id;
}

// Every IPv4 and IPv6 address of the calling thread's namespace, with its
// interface's name and index. False (and none) if they cannot be listed.
bool ReadAddresses(google::protobuf::RepeatedPtrField<v1::InterfaceAddress>* out) {
  out->Clear();
  ifaddrs* ifs = nullptr;
  if (getifaddrs(&ifs) != 0) return false;
  // getifaddrs lists each link once as an AF_PACKET entry that carries its
  // index: looking the index up by name (if_nametoindex) costs a socket and
  // an ioctl per address. A name with no such entry (an IPv4 alias label
  // like "eth0:1") is still looked up.
  absl::flat_hash_map<absl::string_view, int> index_of;
  for (ifaddrs* i = ifs; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr != nullptr && i->ifa_addr->sa_family == AF_PACKET && i->ifa_name != nullptr) {
      index_of.emplace(i->ifa_name, reinterpret_cast<const sockaddr_ll*>(i->ifa_addr)->sll_ifindex);
    }
  }
  for (ifaddrs* i = ifs; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_name == nullptr) continue;
    IpAddress a;
    if (i->ifa_addr->sa_family == AF_INET) {
      a = IpAddress::V4(reinterpret_cast<const uint8_t*>(&reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      a = IpAddress::V6(reinterpret_cast<const uint8_t*>(&reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr));
    } else {
      continue;
    }
    v1::InterfaceAddress* ia = out->Add();
    ia->set_interface(i->ifa_name);
    auto it = index_of.find(i->ifa_name);
    ia->set_ifindex(it != index_of.end() ? static_cast<uint32_t>(it->second) : if_nametoindex(i->ifa_name));
    ia->set_address(a.ToString());
    ia->set_prefix_len(PrefixLength(i->ifa_netmask));
  }
  freeifaddrs(ifs);
  return true;
}

}  // namespace

HostFacts::HostFacts() {
  absl::MutexLock l(&mu_);
  Subscribe();
}

void HostFacts::Subscribe() {
  changes_.reset(mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (changes_ != nullptr &&
      mnl_socket_bind(changes_.get(), RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR, MNL_SOCKET_AUTOPID) < 0) {
    changes_.reset();
  }
}

bool HostFacts::Stale() {
  if (changes_ == nullptr) {
    Subscribe();
    return true;
  }
  // Any datagram, an overflow (ENOBUFS: announcements were lost) or an
  // unexpected error means the addresses may have changed; only an empty
  // queue means they have not.
  char buf[MNL_SOCKET_BUFFER_SIZE];
  ssize_t n;
  do {
    n = mnl_socket_recvfrom(changes_.get(), buf, sizeof(buf));
  } while (n < 0 && errno == EINTR);
  const bool quiet = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  if (!quiet) Subscribe();
  return !quiet || !have_addresses_;
}

absl::Status HostFacts::Read(v1::HostInfo* out) {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0) out->set_hostname(host);
  if (!BootId().empty()) out->set_boot_id(BootId());
  utsname u;
  if (uname(&u) == 0) out->set_kernel_release(u.release);
  {
    absl::MutexLock l(&mu_);
    // Checked before reading: a change made during the read is announced
    // after this check, so the next call reads again.
    if (Stale()) {
      // A failed listing is reported empty and not kept: the next call tries again.
      have_addresses_ = ReadAddresses(&addresses_);
      ++address_reads_;
    }
    *out->mutable_addresses() = addresses_;
  }
  timespec mono;
  clock_gettime(CLOCK_MONOTONIC, &mono);
  ToTimestamp(absl::Now(), out->mutable_realtime());
  out->set_monotonic_ns(static_cast<uint64_t>(mono.tv_sec) * 1000000000ull + static_cast<uint64_t>(mono.tv_nsec));
  return absl::OkStatus();
}

int HostFacts::address_reads() const {
  absl::MutexLock l(&mu_);
  return address_reads_;
}

absl::Status ReadCounters(const std::string& proc_net, v1::Counters* out) {
  ToTimestamp(absl::Now(), out->mutable_captured_at());
  int read_any = 0;
  for (const char* name : {"snmp", "netstat"}) {
    std::string text;
    const std::string path = absl::StrCat(proc_net, "/", name);
    if (!ReadSmallFile(path, &text)) continue;
    ++read_any;
    absl::Status s = ParseCounters(text, out);
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  }
  if (read_any == 0) return absl::UnavailableError(absl::StrCat("cannot read ", proc_net, "/snmp or netstat"));
  return absl::OkStatus();
}

}  // namespace tcbscope::kernel
