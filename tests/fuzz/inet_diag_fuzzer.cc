// libFuzzer target: raw bytes as a recorded sock_diag dump, through the same
// path a --replay file takes (stream walk, then every message parsed), and
// each message through the wire encoder as well, which must append exactly
// the bytes of the Connection the parser builds, or refuse what it refuses.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "agent/kernel/inet_diag_parser.h"
#include "agent/kernel/inet_diag_wire.h"
#include "agent/kernel/replay_source.h"
#include "google/protobuf/field_mask.pb.h"

namespace {

using tcbscope::ConnectionFields;
using tcbscope::kernel::WireOutcome;

ConnectionFields Mask(std::initializer_list<const char*> paths) {
  google::protobuf::FieldMask mask;
  for (const char* p : paths) mask.add_paths(p);
  return *ConnectionFields::FromMask(mask);
}

// Every message's sequence lookup gives this record.
tcb_seq_record Record() {
  tcb_seq_record r{};
  r.snd_una = 1;
  r.bytes_acked = uint64_t{1} << 40;
  return r;
}

void Compare(const nlmsghdr* m, const ConnectionFields& fields, bool with_seq) {
  static const tcb_seq_record record = Record();
  tcbscope::v1::Connection c;
  const bool parsed = tcbscope::kernel::ParseInetDiagMessage(m, 7, &c, fields).ok();
  c.set_netns_name("n");
  const bool time_wait = c.timer().kind() == tcbscope::v1::Timer::KIND_TIME_WAIT;
  if (with_seq && !tcbscope::kernel::IsTimeWaitRow(c.state(), time_wait)) {
    tcbscope::v1::SequenceSpace* q = c.mutable_seq();
#define TCB_SET(name, Name, value) q->set_##name(value);
    TCB_SEQUENCE_FIELDS(TCB_SET, record)
#undef TCB_SET
  }
  if (!fields.all()) fields.Trim(&c);
  tcbscope::kernel::WireBuffer out;
  auto lookup = [&](uint64_t, int, int) { return with_seq ? &record : nullptr; };
  const WireOutcome outcome = tcbscope::kernel::AppendConnectionWire(m, 7, "n", fields, lookup, &out);
  if (outcome == WireOutcome::kNeedsMessage) {
    if (out.size() != 0 || !parsed) std::abort();
    return;
  }
  if ((outcome == WireOutcome::kEncoded) != parsed) std::abort();
  if (!parsed) {
    if (out.size() != 0) std::abort();
    return;
  }
  tcbscope::v1::ConnectionBatch batch;
  *batch.add_connections() = c;
  if (batch.SerializeAsString() != out.view()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ConnectionFields* const kMasks[] = {
      new ConnectionFields(),
      new ConnectionFields(Mask({"local", "seq", "tcp_info.rtt_us", "tcp_info.options2", "congestion"})),
      new ConnectionFields(Mask({"remote", "timer", "memory", "mark", "tos", "netns_name"})),
  };
  std::string bytes(reinterpret_cast<const char*>(data), size);
  auto replay = tcbscope::kernel::ReplaySource::FromBytes(std::move(bytes), "fuzz");
  if (!replay.ok()) return 0;
  tcbscope::kernel::DumpRequest req;
  int n = 0;
  (void)(*replay)->Dump(req, [&](const nlmsghdr* m) {
    const int i = n++;
    Compare(m, *kMasks[i % 3], i % 2 == 1);
    return absl::OkStatus();
  });
  return 0;
}
