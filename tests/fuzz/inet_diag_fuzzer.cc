// libFuzzer target: raw bytes as a recorded sock_diag dump, through the same
// path a --replay file takes (stream walk, then every message parsed), and
// every message of the stream through both the parser and the wire encoder,
// which must append exactly the bytes of the Connection the parser builds,
// refuse what it refuses, and leave to it exactly the repeated tcp_infos.
#include <linux/inet_diag.h>
#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
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

// INET_DIAG_INFO attributes in a message the parser accepts, counted
// independently of both.
int InfoAttributes(const nlmsghdr* m) {
  int n = 0;
  const auto* base = reinterpret_cast<const uint8_t*>(m);
  for (size_t off = NLMSG_ALIGN(NLMSG_LENGTH(sizeof(inet_diag_msg))); off + NLA_HDRLEN <= m->nlmsg_len;) {
    nlattr a;
    std::memcpy(&a, base + off, sizeof(a));
    if (a.nla_len < NLA_HDRLEN) break;
    if ((a.nla_type & NLA_TYPE_MASK) == tcbscope::kernel::diag_attr::kInfo) ++n;
    off += NLA_ALIGN(a.nla_len);
  }
  return n;
}

void Compare(const nlmsghdr* m, const ConnectionFields& fields, bool with_seq) {
  static const tcb_seq_record record = Record();
  tcbscope::v1::Connection c;
  const bool parsed = tcbscope::kernel::ParseInetDiagMessage(m, 7, &c, fields).ok();
  c.set_netns_name("n");
  const bool time_wait = c.timer().kind() == tcbscope::v1::Timer::KIND_TIME_WAIT;
  if (with_seq && !tcbscope::kernel::IsTimeWaitRow(c.state(), time_wait)) {
    tcbscope::kernel::FillSequenceSpace(record, c.mutable_seq());
  }
  if (!fields.all()) fields.Trim(&c);
  tcbscope::kernel::WireBuffer out;
  auto lookup = [&](uint64_t, int, int) { return with_seq ? &record : nullptr; };
  const WireOutcome outcome = tcbscope::kernel::AppendConnectionWire(m, 7, "n", fields, lookup, &out);
  // Left to the parser exactly when it would merge two tcp_infos.
  const bool repeated_info = parsed && fields.Has(tcbscope::v1::Connection::kTcpInfoFieldNumber) && InfoAttributes(m) > 1;
  if ((outcome == WireOutcome::kNeedsMessage) != repeated_info) std::abort();
  if (outcome == WireOutcome::kNeedsMessage) {
    if (out.size() != 0) std::abort();
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
  // Every message the stream holds, whatever its state or length (a replay
  // skips those outside the request's states); the mask and the record vary
  // by message and by input, so a one-message input reaches each.
  int n = static_cast<int>(size % 6);
  (void)tcbscope::kernel::WalkDiagStream(bytes, [&](const nlmsghdr* m) {
    const int i = n++;
    Compare(m, *kMasks[i % 3], i % 2 == 1);
    return absl::OkStatus();
  });
  auto replay = tcbscope::kernel::ReplaySource::FromBytes(std::move(bytes), "fuzz");
  if (!replay.ok()) return 0;
  tcbscope::kernel::DumpRequest req;
  (void)(*replay)->Dump(req, [](const nlmsghdr*) { return absl::OkStatus(); });
  return 0;
}
