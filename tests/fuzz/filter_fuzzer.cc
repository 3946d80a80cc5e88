// libFuzzer target: the filter parser and evaluator must never crash, hang or
// grow without bound, whatever the text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/filter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<tcbscope::Filter> f = tcbscope::Filter::Parse(text);
  if (!f.ok()) return 0;
  tcbscope::v1::Connection c;
  c.set_family(tcbscope::v1::FAMILY_INET);
  c.set_state(tcbscope::v1::TCP_STATE_ESTABLISHED);
  c.mutable_local()->set_address("127.0.0.1");
  c.mutable_local()->set_port(22);
  c.mutable_remote()->set_address("198.51.100.7");
  c.mutable_remote()->set_port(40000);
  (void)f->Matches(c);
  c.set_family(tcbscope::v1::FAMILY_INET6);
  c.mutable_local()->set_address("::ffff:127.0.0.1");
  c.mutable_remote()->set_address("2001:db8::1");
  (void)f->Matches(c);
  (void)f->States(tcbscope::kDefaultStates);
  (void)f->DebugString();
  return 0;
}
