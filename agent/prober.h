// The Probe RPC's work: one TCP connection attempt from this host, reported
// as what happened (connected, refused, timed out, unreachable, reset) and the
// states the socket passed through. Sends no data: a connection that opens is
// closed at once with a FIN.
//
// Off unless the agent runs with --allow-probe; then limited to the
// --probe-allow prefixes (any address when none is given) and rate-limited
// (a bucket of kBurst attempts refilled at one per second). Thread-safe.
#ifndef TCBSCOPE_AGENT_PROBER_H_
#define TCBSCOPE_AGENT_PROBER_H_

#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/ip_address.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope {

struct ProbeOptions {
  bool allowed = false;
  std::vector<std::pair<IpAddress, int>> allow;  // prefixes; empty = any address
};

class Prober {
 public:
  static constexpr int kBurst = 5;
  static constexpr uint32_t kDefaultTimeoutMs = 3000;
  static constexpr uint32_t kMaxTimeoutMs = 30000;

  explicit Prober(ProbeOptions options) : options_(std::move(options)) {}
  bool allowed() const { return options_.allowed; }

  // PermissionDenied when probing is off or the target is outside the
  // allowed prefixes; InvalidArgument for a bad target or timeout;
  // ResourceExhausted past the rate limit.
  absl::StatusOr<v1::ProbeResult> Probe(const v1::ProbeRequest& request);

 private:
  bool TakeToken();

  const ProbeOptions options_;
  absl::Mutex mu_;
  double tokens_ ABSL_GUARDED_BY(mu_) = kBurst;
  absl::Time refilled_ ABSL_GUARDED_BY(mu_) = absl::Now();
};

// Parses "ADDR/LEN" (or a bare address: a host prefix).
absl::StatusOr<std::pair<IpAddress, int>> ParsePrefix(absl::string_view text);

}  // namespace tcbscope

#endif  // TCBSCOPE_AGENT_PROBER_H_
