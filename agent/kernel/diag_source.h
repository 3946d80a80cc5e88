// Where the agent's socket dumps come from: the live kernel or a recording.
//
// A DiagSource hands out raw socket messages (SOCK_DIAG_BY_FAMILY or
// TCPDIAG_GETSOCK answers, the same payload); parsing is the
// caller's (ParseInetDiagMessage), so a recording replays through exactly the
// code path the kernel's bytes take.
//
// Thread-safety: Dump() may be called concurrently from several threads.
#ifndef TCBSCOPE_AGENT_KERNEL_DIAG_SOURCE_H_
#define TCBSCOPE_AGENT_KERNEL_DIAG_SOURCE_H_

#include <linux/netlink.h>

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/kernel/inet_diag_parser.h"
#include "common/tcp_state.h"

namespace tcbscope::kernel {

struct DumpRequest {
  StateMask states = kAllStates;  // pushed to the kernel as idiag_states
  bool tcp_info = false;          // ask for tcp_info, congestion, socket memory
};

struct DumpResult {
  absl::Time started;        // when the dump was requested
  uint64_t sockets = 0;      // messages delivered to the callback
  bool interrupted = false;  // NLM_F_DUMP_INTR: the table changed mid-dump
};

// Called once per socket message; returning an error stops the dump and the
// error is returned by Dump(). The message is valid only during the call.
using DiagMessageCallback = std::function<absl::Status(const nlmsghdr*)>;

class DiagSource {
 public:
  virtual ~DiagSource() = default;
  virtual absl::StatusOr<DumpResult> Dump(const DumpRequest& request, const DiagMessageCallback& on_socket) = 0;
  // Network namespace inode of the sockets this source reports (for a
  // source spanning namespaces: the agent's own).
  virtual uint64_t netns() const = 0;
  // The namespace (inode, name) of the message being delivered; valid only
  // inside the Dump callback, on its thread (the name's bytes too).
  virtual uint64_t CurrentNetns() const { return netns(); }
  virtual absl::string_view CurrentNetnsName() const { return {}; }
  // "kernel" or "replay:FILE".
  virtual std::string Describe() const = 0;
};

// ParseInetDiagMessage for a message `source` is delivering: tagged with the
// namespace it came from (inode, and name when it has one). Only inside the
// source's Dump callback.
inline absl::Status ParseFromSource(const DiagSource& source, const nlmsghdr* m, v1::Connection* out,
                                    const ConnectionFields& fields = ConnectionFields()) {
  absl::Status s = ParseInetDiagMessage(m, source.CurrentNetns(), out, fields);
  if (s.ok()) {
    if (absl::string_view name = source.CurrentNetnsName(); !name.empty()) out->set_netns_name(std::string(name));
  }
  return s;
}

}  // namespace tcbscope::kernel

#endif  // TCBSCOPE_AGENT_KERNEL_DIAG_SOURCE_H_
