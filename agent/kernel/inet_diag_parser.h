// Turns sock_diag (inet_diag) netlink messages into Connection protos.
//
// Pure functions over bytes: no sockets, no files. Every length is checked
// against the buffer, so arbitrary bytes yield an error, never a crash (the
// fuzzer holds us to that).
#ifndef TCBSCOPE_AGENT_KERNEL_INET_DIAG_PARSER_H_
#define TCBSCOPE_AGENT_KERNEL_INET_DIAG_PARSER_H_

#include <linux/inet_diag.h>
#include <linux/netlink.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/kernel/tcp_info_wire.h"
#include "common/connection_fields.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope::kernel {

// Fills `out` (which the caller has cleared) from one socket's message (a
// SOCK_DIAG_BY_FAMILY or TCPDIAG_GETSOCK answer: the same payload): header,
// payload and attributes all within `msg`'s nlmsg_len.
// `netns` tags the connection with its network namespace inode. Of tcp_info,
// congestion and memory, only what `fields` asks for is filled (the rest is
// always filled: the filter, owners and sequence numbers read it; see
// ConnectionFields::Trim).
// InvalidArgument if the message is too short or an attribute overruns it.
absl::Status ParseInetDiagMessage(const nlmsghdr* msg, uint64_t netns, v1::Connection* out,
                                  const ConnectionFields& fields = ConnectionFields());

// The state byte of a socket's message without a full parse (for
// filtering replayed dumps by state); -1 if the message is too short.
int InetDiagMessageState(const nlmsghdr* msg);

// What a stream of netlink messages held, for the recorded-dump format.
struct DiagStreamSummary {
  uint64_t sockets = 0;        // socket messages (either answer type)
  uint64_t done_messages = 0;  // NLMSG_DONE seen (ss -D writes one per family)
  bool interrupted = false;    // some message carried NLM_F_DUMP_INTR
};

// Walks a byte stream of back-to-back netlink messages (the format `ss -D`
// writes and TCPDIAG_FILE reads: each message's header then its payload padded
// to 4 bytes) and calls `on_socket` for each socket's message
// (SOCK_DIAG_BY_FAMILY, or TCPDIAG_GETSOCK as the agent now records).
// Errors, each naming the byte offset: a truncated header or payload, an
// nlmsg_len below the header size, an NLMSG_ERROR carrying an error, an
// unexpected message type. The callback's error stops the walk and is returned.
absl::StatusOr<DiagStreamSummary> WalkDiagStream(
    absl::string_view bytes, const std::function<absl::Status(const nlmsghdr*)>& on_socket);


// What the message parser shares with the wire encoder (inet_diag_wire.h),
// so the two read the kernel's bytes alike.

// Attribute types, numbered as in uapi linux/inet_diag.h (named here so the
// agent does not depend on how new the build machine's headers are).
namespace diag_attr {
constexpr uint16_t kMemInfo = 1;
constexpr uint16_t kInfo = 2;
constexpr uint16_t kCong = 4;
constexpr uint16_t kTos = 5;
constexpr uint16_t kTclass = 6;
constexpr uint16_t kSkMemInfo = 7;
constexpr uint16_t kShutdown = 8;
constexpr uint16_t kV6Only = 11;
constexpr uint16_t kMark = 15;
}  // namespace diag_attr

// One attribute of a socket's message: its type (NLA_TYPE_MASK applied) and
// its payload, within the message.
struct DiagAttribute {
  uint16_t type;
  const uint8_t* data;
  size_t len;
};

// The error ForEachDiagAttribute returns for an attribute that overruns.
absl::Status DiagAttributeOverrun(size_t offset, size_t length, size_t message_length);

// Calls `f(attribute)` for each attribute after the fixed inet_diag_msg, in
// order: each a 4-byte header (length, type) and a payload padded to 4 bytes;
// fewer than a header's bytes left over are ignored. InvalidArgument, naming
// the offset, at an attribute that overruns the message (those before it
// have been given to `f`). The one walk the parser and the wire encoder share.
// REQUIRES: msg->nlmsg_len >= NLMSG_LENGTH(sizeof(inet_diag_msg)).
template <typename F>
absl::Status ForEachDiagAttribute(const nlmsghdr* msg, F f) {
  const auto* base = reinterpret_cast<const uint8_t*>(msg);
  const size_t end = msg->nlmsg_len;
  for (size_t off = NLMSG_ALIGN(NLMSG_LENGTH(sizeof(inet_diag_msg))); off + NLA_HDRLEN <= end;) {
    nlattr a;
    std::memcpy(&a, base + off, sizeof(a));
    if (a.nla_len < NLA_HDRLEN || off + a.nla_len > end) return DiagAttributeOverrun(off, a.nla_len, end);
    f(DiagAttribute{static_cast<uint16_t>(a.nla_type & NLA_TYPE_MASK), base + off + NLA_HDRLEN,
                    static_cast<size_t>(a.nla_len - NLA_HDRLEN)});
    off += NLA_ALIGN(a.nla_len);
  }
  return absl::OkStatus();
}

// Indexes into INET_DIAG_SKMEMINFO (SK_MEMINFO_*).
enum SkMemIndex {
  kRmemAlloc, kRcvbuf, kWmemAlloc, kSndbuf, kFwdAlloc, kWmemQueued, kOptmem, kBacklog, kDrops, kSkMemCount
};

// Every v1::SocketMemory field, in field-number order: X(proto_field,
// ProtoField, value), the value read from the SK_MEMINFO array `m`.
#define TCB_SOCKET_MEMORY_FIELDS(X, m)                        \
  X(rmem_alloc_bytes, RmemAllocBytes, (m)[kRmemAlloc])        \
  X(rcvbuf_bytes, RcvbufBytes, (m)[kRcvbuf])                  \
  X(wmem_alloc_bytes, WmemAllocBytes, (m)[kWmemAlloc])        \
  X(sndbuf_bytes, SndbufBytes, (m)[kSndbuf])                  \
  X(fwd_alloc_bytes, FwdAllocBytes, (m)[kFwdAlloc])           \
  X(wmem_queued_bytes, WmemQueuedBytes, (m)[kWmemQueued])     \
  X(optmem_bytes, OptmemBytes, (m)[kOptmem])                  \
  X(backlog_bytes, BacklogBytes, (m)[kBacklog])               \
  X(drops, Drops, (m)[kDrops])

// The congestion control name INET_DIAG_CONG carries (`len` bytes at `p`):
// up to its NUL, with any byte outside printable ASCII written as '?', since
// the proto field is a string, which must be UTF-8 or the whole batch fails
// to parse (kernel names are ASCII). Writes at most `len` bytes to `out` and
// returns how many.
size_t CopyCongestionName(const uint8_t* p, size_t len, char* out);

// idiag_timer as a Timer kind (0, no timer, and unknown values: KIND_NONE).
v1::Timer::Kind DiagTimerKind(uint8_t timer);

// A time-wait row: a socket with no tcp_sock behind it, reported by the
// kernel as TIME_WAIT or, closed from FIN_WAIT2, as that, either way with the
// time-wait timer, which no full socket has. It has no sequence record.
inline bool IsTimeWaitRow(int state, bool time_wait_timer) {
  return state == v1::TCP_STATE_TIME_WAIT || time_wait_timer;
}

// Calls `absent(name)` for each tcp_info field past a kernel's `len` bytes
// that `fields` asks for, in the struct's order. Only those: on an older
// kernel the names of every missing field would outweigh a masked connection.
template <typename F>
void ForEachAbsentField(size_t len, const ConnectionFields& fields, F absent) {
  for (size_t i = 0; i < kTcpInfoLateFieldCount; ++i) {
    const TcpInfoField& f = kTcpInfoLateFields[i];
    if (f.offset + f.size <= len) continue;
    bool asked = false;
    for (int n = f.first_proto_field; n <= f.last_proto_field && !asked; ++n) asked = fields.HasTcpInfo(n);
    if (asked) absent(f.name);
  }
}

}  // namespace tcbscope::kernel

#endif  // TCBSCOPE_AGENT_KERNEL_INET_DIAG_PARSER_H_
