// Turns sock_diag (inet_diag) netlink messages into Connection protos.
//
// Pure functions over bytes: no sockets, no files. Every length is checked
// against the buffer, so arbitrary bytes yield an error, never a crash (the
// fuzzer holds us to that).
#ifndef TCBSCOPE_AGENT_KERNEL_INET_DIAG_PARSER_H_
#define TCBSCOPE_AGENT_KERNEL_INET_DIAG_PARSER_H_

#include <linux/netlink.h>

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
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

}  // namespace tcbscope::kernel

#endif  // TCBSCOPE_AGENT_KERNEL_INET_DIAG_PARSER_H_
