// Facts about the host the agent runs on: names, clocks, addresses, counters.
// Each reads the live system; failures of optional parts leave fields empty
// rather than failing the call.
#ifndef TCBSCOPE_AGENT_KERNEL_HOST_FACTS_H_
#define TCBSCOPE_AGENT_KERNEL_HOST_FACTS_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "agent/kernel/mnl_socket.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope::kernel {

// The facts GetHostInfo reports. The interface addresses are kept between
// calls and read again only after the kernel has announced a change to a
// link or an address (rtnetlink's link and address groups, joined by a
// non-blocking socket that each call checks): the dump of every link and
// address was about a sixth of the agent's CPU per GetHostInfo. Where that
// socket cannot be opened, every call reads them.
//
// Thread-safe. The addresses are those of the network namespace the object
// was constructed in. REQUIRES: Read is called only from threads in that
// namespace (the agent's own threads, not the ones that enter others).
class HostFacts {
 public:
  HostFacts();
  HostFacts(const HostFacts&) = delete;
  HostFacts& operator=(const HostFacts&) = delete;

  // hostname, boot_id, kernel_release, addresses, realtime and monotonic
  // clock. Capabilities, version and source are the caller's to set.
  absl::Status Read(v1::HostInfo* out);

  // How many times the addresses have been read from the kernel.
  int address_reads() const;

 private:
  // True when the addresses must be read again: none kept yet, a change
  // announced since the last read, or no way to hear of changes. Reopens
  // the socket after an announcement, which discards the rest of the queue
  // in one step, however long it grew.
  bool Stale() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Subscribe() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  MnlSocket changes_ ABSL_GUARDED_BY(mu_);
  bool have_addresses_ ABSL_GUARDED_BY(mu_) = false;
  google::protobuf::RepeatedPtrField<v1::InterfaceAddress> addresses_ ABSL_GUARDED_BY(mu_);
  int address_reads_ ABSL_GUARDED_BY(mu_) = 0;
};

// Reads `proc_net`/snmp and `proc_net`/netstat (normally "/proc/net", i.e. the
// calling thread's namespace) into groups, with the capture time. Unavailable
// when neither file can be read; InvalidArgument if one is malformed.
absl::Status ReadCounters(const std::string& proc_net, v1::Counters* out);

}  // namespace tcbscope::kernel

#endif  // TCBSCOPE_AGENT_KERNEL_HOST_FACTS_H_
