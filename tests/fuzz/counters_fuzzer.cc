// libFuzzer target: the /proc/net/snmp and /proc/net/netstat parser.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/counters_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tcbscope::v1::Counters c;
  (void)tcbscope::ParseCounters(std::string(reinterpret_cast<const char*>(data), size), &c);
  return 0;
}
