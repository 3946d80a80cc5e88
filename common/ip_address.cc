#include "common/ip_address.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tcbscope {
namespace {

constexpr uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

}  // namespace

IpAddress IpAddress::V4(const uint8_t bytes[4]) {
  IpAddress a;
  a.family_ = AF_INET;
  std::memcpy(a.bytes_.data(), bytes, 4);
  return a;
}

IpAddress IpAddress::V4(uint32_t host_order) {
  uint8_t b[4] = {static_cast<uint8_t>(host_order >> 24), static_cast<uint8_t>(host_order >> 16),
                  static_cast<uint8_t>(host_order >> 8), static_cast<uint8_t>(host_order)};
  return V4(b);
}

IpAddress IpAddress::V6(const uint8_t bytes[16]) {
  IpAddress a;
  a.family_ = AF_INET6;
  std::memcpy(a.bytes_.data(), bytes, 16);
  return a;
}

IpAddress IpAddress::FromDiag(int family, const uint32_t words[4]) {
  const auto* raw = reinterpret_cast<const uint8_t*>(words);
  if (family == AF_INET) return V4(raw);
  if (family == AF_INET6) return V6(raw);
  return IpAddress();
}

absl::StatusOr<IpAddress> IpAddress::Parse(absl::string_view text) {
  absl::string_view t = text;
  if (t.size() >= 2 && t.front() == '[' && t.back() == ']') t = t.substr(1, t.size() - 2);
  if (t.empty() || t.size() > INET6_ADDRSTRLEN) {
    return absl::InvalidArgumentError(absl::StrCat("not an IP address: '", text, "'"));
  }
  std::string s(t);
  uint8_t buf[16];
  if (inet_pton(AF_INET, s.c_str(), buf) == 1) return V4(buf);
  if (inet_pton(AF_INET6, s.c_str(), buf) == 1) return V6(buf);
  return absl::InvalidArgumentError(absl::StrCat("not an IP address: '", text, "'"));
}

bool IpAddress::IsV4Mapped() const {
  return is_v6() && std::memcmp(bytes_.data(), kV4MappedPrefix, sizeof(kV4MappedPrefix)) == 0;
}

bool IpAddress::IsUnspecified() const {
  if (family_ == AF_UNSPEC) return true;
  for (int i = 0; i < bit_length() / 8; ++i) {
    if (bytes_[i] != 0) return false;
  }
  return true;
}

bool IpAddress::IsLoopback() const {
  const IpAddress f = Folded();
  if (f.is_v4()) return f.bytes_[0] == 127;
  if (f.is_v6()) {
    for (int i = 0; i < 15; ++i) {
      if (f.bytes_[i] != 0) return false;
    }
    return f.bytes_[15] == 1;
  }
  return false;
}

IpAddress IpAddress::FoldedV6() const {
  if (!IsV4Mapped()) return *this;
  return V4(bytes_.data() + 12);
}

bool IpAddress::InPrefix(const IpAddress& prefix, int prefix_len) const {
  const IpAddress* self = this;
  IpAddress folded;
  if (prefix.is_v4() && IsV4Mapped()) {
    folded = Folded();
    self = &folded;
  }
  if (self->family_ != prefix.family_) return false;
  if (prefix_len < 0) return false;
  if (prefix_len > self->bit_length()) prefix_len = self->bit_length();
  const int whole = prefix_len / 8;
  if (std::memcmp(self->bytes_.data(), prefix.bytes_.data(), whole) != 0) return false;
  const int rest = prefix_len % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (self->bytes_[whole] & mask) == (prefix.bytes_[whole] & mask);
}

size_t IpAddress::FormatTo(char* out) const {
  // IPv4 without inet_ntop: glibc formats it with sprintf, which was a tenth
  // of the agent's CPU for a 100k-socket dump (docs/performance.md).
  if (family_ == AF_INET) {
    char* p = out;
    for (int i = 0; i < 4; ++i) {
      if (i > 0) *p++ = '.';
      const unsigned b = bytes_[i];
      if (b >= 100) *p++ = static_cast<char>('0' + b / 100);
      if (b >= 10) *p++ = static_cast<char>('0' + b / 10 % 10);
      *p++ = static_cast<char>('0' + b % 10);
    }
    return static_cast<size_t>(p - out);
  }
  if (family_ == AF_INET6 && inet_ntop(family_, bytes_.data(), out, kMaxTextLength + 1) != nullptr) {
    return std::strlen(out);
  }
  out[0] = '*';
  return 1;
}

std::string IpAddress::ToString() const {
  char buf[kMaxTextLength + 1];
  return std::string(buf, FormatTo(buf));
}

std::string Endpoint::ToString() const {
  if (address.is_v6()) return absl::StrCat("[", address.ToString(), "]:", port);
  return absl::StrCat(address.ToString(), ":", port);
}

std::string HostPort::ToString() const {
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<HostPort> ParseHostPort(absl::string_view text, uint16_t default_port, bool allow_port_zero) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("bad host '", text, "': ", why));
  };
  if (text.empty()) return bad("empty");
  HostPort out;
  out.port = default_port;
  absl::string_view port_text;
  if (text.front() == '[') {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos) return bad("missing ']'");
    out.host = std::string(text.substr(1, close - 1));
    absl::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("expected ':PORT' after ']'");
      port_text = rest.substr(1);
      if (port_text.empty()) return bad("empty port");
    }
  } else {
    const size_t first = text.find(':');
    const size_t last = text.rfind(':');
    if (first != absl::string_view::npos && first != last) {
      out.host = std::string(text);  // bare IPv6, no port
    } else if (first != absl::string_view::npos) {
      out.host = std::string(text.substr(0, first));
      port_text = text.substr(first + 1);
      if (port_text.empty()) return bad("empty port");
    } else {
      out.host = std::string(text);
    }
  }
  if (out.host.empty()) return bad("empty host name");
  for (char c : out.host) {
    if (c <= ' ' || c == '/' || c == '[' || c == ']') return bad("invalid character in host name");
  }
  if (!port_text.empty()) {
    uint32_t port = 0;
    if (!absl::SimpleAtoi(port_text, &port) || (port == 0 && !allow_port_zero) || port > 65535) {
      return bad(allow_port_zero ? "port must be a number from 0 to 65535" : "port must be a number from 1 to 65535");
    }
    out.port = static_cast<uint16_t>(port);
  }
  return out;
}

}  // namespace tcbscope
