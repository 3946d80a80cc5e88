// IP addresses and endpoints: parsing, printing, prefix matching.
//
// IpAddress is a value type (copyable, 20 bytes, no allocation). An IPv4
// address is stored as AF_INET with 4 meaningful bytes; IPv6 as AF_INET6 with
// 16. IPv4-mapped IPv6 (::ffff:a.b.c.d) stays AF_INET6 unless Folded() is
// called: correlation folds, display does not (ss shows what the kernel has).
#ifndef TCBSCOPE_COMMON_IP_ADDRESS_H_
#define TCBSCOPE_COMMON_IP_ADDRESS_H_

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tcbscope {

class IpAddress {
 public:
  IpAddress() = default;  // the unspecified address, family AF_UNSPEC

  static IpAddress V4(const uint8_t bytes[4]);
  static IpAddress V4(uint32_t host_order);
  static IpAddress V6(const uint8_t bytes[16]);
  // Builds from the kernel's inet_diag layout: family and 4 x be32 words.
  static IpAddress FromDiag(int family, const uint32_t words[4]);

  // Accepts dotted quad, RFC 4291 text, and IPv6 in brackets. Rejects
  // anything else with InvalidArgument naming the text.
  static absl::StatusOr<IpAddress> Parse(absl::string_view text);

  int family() const { return family_; }
  bool is_v4() const { return family_ == AF_INET; }
  bool is_v6() const { return family_ == AF_INET6; }
  const uint8_t* bytes() const { return bytes_.data(); }
  int bit_length() const { return is_v4() ? 32 : is_v6() ? 128 : 0; }
  bool IsV4Mapped() const;
  bool IsUnspecified() const;  // 0.0.0.0, ::, or default-constructed
  bool IsLoopback() const;

  // ::ffff:a.b.c.d → a.b.c.d; other addresses unchanged. Inline for its
  // common case: pairing folds every key it hashes or compares.
  IpAddress Folded() const { return is_v6() ? FoldedV6() : *this; }

  // True when the first prefix_len bits equal those of `prefix` (same family;
  // a v4 prefix also matches a v4-mapped v6 address, as the kernel's
  // bytecode does for ss filters).
  bool InPrefix(const IpAddress& prefix, int prefix_len) const;

  std::string ToString() const;  // dotted quad or RFC 5952; "*" for no address
  // The longest text ToString gives (INET6_ADDRSTRLEN less its NUL).
  static constexpr size_t kMaxTextLength = 45;
  // ToString's text written to `out`, which holds kMaxTextLength + 1 bytes
  // (inet_ntop may write a NUL past the text); returns its length.
  size_t FormatTo(char* out) const;

  friend bool operator==(const IpAddress& a, const IpAddress& b) {
    return a.family_ == b.family_ && a.bytes_ == b.bytes_;
  }
  friend bool operator!=(const IpAddress& a, const IpAddress& b) { return !(a == b); }
  friend bool operator<(const IpAddress& a, const IpAddress& b) {
    return a.family_ != b.family_ ? a.family_ < b.family_ : a.bytes_ < b.bytes_;
  }
  template <typename H>
  friend H AbslHashValue(H h, const IpAddress& a) {
    return H::combine(std::move(h), a.family_, a.bytes_);
  }

 private:
  IpAddress FoldedV6() const;
  int family_ = AF_UNSPEC;
  std::array<uint8_t, 16> bytes_{};
};

// Address and port; the text form is ss's: a.b.c.d:port, [v6]:port.
struct Endpoint {
  IpAddress address;
  uint16_t port = 0;

  std::string ToString() const;
  friend bool operator==(const Endpoint& a, const Endpoint& b) {
    return a.address == b.address && a.port == b.port;
  }
  template <typename H>
  friend H AbslHashValue(H h, const Endpoint& e) {
    return H::combine(std::move(h), e.address, e.port);
  }
};

// A host as named on the command line: NAME, NAME:PORT, a.b.c.d[:PORT],
// [v6][:PORT], or a bare IPv6 address (then no port can be given).
struct HostPort {
  std::string host;  // without brackets
  uint16_t port = 0;
  std::string ToString() const;  // host:port with brackets around IPv6
};

// Parses HOST[:PORT]; default_port when none is given. InvalidArgument on
// empty input, a bad port (>65535, not a number; 0 unless allow_port_zero,
// which a listen address uses to ask for any free port) or unbalanced
// brackets.
absl::StatusOr<HostPort> ParseHostPort(absl::string_view text, uint16_t default_port,
                                       bool allow_port_zero = false);

}  // namespace tcbscope

#endif  // TCBSCOPE_COMMON_IP_ADDRESS_H_
