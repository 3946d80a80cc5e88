// libFuzzer target: address and HOST[:PORT] parsing.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/ip_address.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<tcbscope::IpAddress> a = tcbscope::IpAddress::Parse(text);
  if (a.ok()) {
    (void)a->ToString();
    (void)a->Folded();
    (void)a->InPrefix(*a, static_cast<int>(size % 130));
  }
  absl::StatusOr<tcbscope::HostPort> hp = tcbscope::ParseHostPort(text, 7411);
  if (hp.ok()) (void)hp->ToString();
  return 0;
}
