// Facts about the host the agent runs on: names, clocks, addresses, counters.
// Each reads the live system; failures of optional parts leave fields empty
// rather than failing the call.
#ifndef TCBSCOPE_AGENT_KERNEL_HOST_FACTS_H_
#define TCBSCOPE_AGENT_KERNEL_HOST_FACTS_H_

#include <string>

#include "absl/status/status.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope::kernel {

// hostname, boot_id, kernel_release, addresses, realtime and monotonic clock.
// Capabilities, version and source are the caller's to set.
absl::Status ReadHostFacts(v1::HostInfo* out);

// Reads `proc_net`/snmp and `proc_net`/netstat (normally "/proc/net", i.e. the
// calling thread's namespace) into groups, with the capture time. Unavailable
// when neither file can be read; InvalidArgument if one is malformed.
absl::Status ReadCounters(const std::string& proc_net, v1::Counters* out);

}  // namespace tcbscope::kernel

#endif  // TCBSCOPE_AGENT_KERNEL_HOST_FACTS_H_
