// Why can't A reach B:PORT — one verdict from both hosts' evidence.
//
// Pure rules over what the CLI gathered: B's listeners and handshake sockets,
// both hosts' counters before and after, the correlation of A's and B's
// connections on PORT at two moments (findings computed on the later one),
// and, with --probe, A's connection attempt and what B showed while it ran.
// The verdict codes and how each is decided are in docs/diagnose.md. Where
// the evidence fits more than one cause, the verdict says what it cannot
// tell apart (limits) rather than guess.
#ifndef TCBSCOPE_COMMON_DIAGNOSE_H_
#define TCBSCOPE_COMMON_DIAGNOSE_H_

#include <cstdint>
#include <vector>

#include "common/ip_address.h"
#include "tcbscope/v1/inspector.pb.h"
#include "tcbscope/v1/results.pb.h"

namespace tcbscope {

inline constexpr char kReachable[] = "REACHABLE";
inline constexpr char kNoListener[] = "NO_LISTENER";
inline constexpr char kAcceptQueueFull[] = "ACCEPT_QUEUE_FULL";
inline constexpr char kResetSeen[] = "RESET_SEEN";
inline constexpr char kMtuBlackhole[] = "MTU_BLACKHOLE";
// Also used as verdicts: kSynUnanswered, kHandshakeIncomplete, kHalfOpen,
// kReceiverNotReading, kCloseNotCalled (common/compare.h).

struct DiagnoseInput {
  IpAddress target;  // B's address as A connects to it
  uint16_t port = 0;
  // B's sockets on PORT: its listeners (any address) and the handshakes in
  // SYN_RECV. All of them, not only those for `target`.
  std::vector<v1::Connection> b_listeners;
  std::vector<v1::Connection> b_syn_recv;
  // Counters; either of a pair may be null (not read).
  const v1::Counters* a_before = nullptr;
  const v1::Counters* a_after = nullptr;
  const v1::Counters* b_before = nullptr;
  const v1::Counters* b_after = nullptr;
  // A's and B's connections on PORT, correlated at two moments some time
  // apart; `after` has its findings computed. `before` may be null.
  const v1::CorrelateResult* before = nullptr;
  const v1::CorrelateResult* after = nullptr;
  // A's attempt (--probe); null without one.
  const v1::ProbeResult* probe = nullptr;
};

// Fills verdict, summary, evidence, next_step, checked, limits and findings.
void Diagnose(const DiagnoseInput& in, v1::DiagnoseResult* out);

// A counter's change between two reads; 0 when either is missing.
int64_t CounterDelta(const v1::Counters* before, const v1::Counters* after, const std::string& group,
                     const std::string& name);

}  // namespace tcbscope

#endif  // TCBSCOPE_COMMON_DIAGNOSE_H_
