// libFuzzer target: raw bytes as a recorded sock_diag dump, through the same
// path a --replay file takes (stream walk, then every message parsed).
#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/kernel/replay_source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  auto replay = tcbscope::kernel::ReplaySource::FromBytes(std::move(bytes), "fuzz");
  if (!replay.ok()) return 0;
  tcbscope::kernel::DumpRequest req;
  (void)(*replay)->Dump(req, [](const nlmsghdr*) { return absl::OkStatus(); });
  return 0;
}
