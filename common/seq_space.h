// TCP sequence-space arithmetic: 32-bit serial numbers (RFC 1982 style, as
// the kernel's before()/after()) and the initial sequence numbers a TCB
// implies.
//
// Pure functions; all values are sequence numbers or byte counts mod 2^32.
#ifndef TCBSCOPE_COMMON_SEQ_SPACE_H_
#define TCBSCOPE_COMMON_SEQ_SPACE_H_

#include <cstdint>
#include <optional>

#include "common/tcb.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope {

// a - b as a signed distance; correct while the two are within 2^31 of each
// other, across the wrap.
inline int64_t SeqDiff(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b); }
inline bool SeqBefore(uint32_t a, uint32_t b) { return SeqDiff(a, b) < 0; }
inline bool SeqAtOrBefore(uint32_t a, uint32_t b) { return SeqDiff(a, b) <= 0; }
// lo <= x <= hi in serial order.
inline bool SeqBetween(uint32_t lo, uint32_t x, uint32_t hi) { return SeqAtOrBefore(lo, x) && SeqAtOrBefore(x, hi); }

// What a TCB's sequence space says about the handshake.
//
// IRS (the peer's initial sequence number) is exact: rcv_nxt has moved from
// IRS + 1 by exactly bytes_received (the kernel counts the peer's data and
// FIN there, not its SYN). ISS depends on who opened: the active opener's
// bytes_acked counts the acknowledgement of its own SYN, the passive end's
// does not (its socket is born with snd_una = ISS + 1). Both candidates are
// given; the peer's IRS tells which one is right.
struct InitialSequence {
  uint32_t irs = 0;
  uint32_t iss_if_active = 0;   // snd_una - bytes_acked
  uint32_t iss_if_passive = 0;  // snd_una - bytes_acked - 1
  bool IssMatches(uint32_t peer_irs) const { return peer_irs == iss_if_active || peer_irs == iss_if_passive; }
};

// Needs c.seq (BPF sequence numbers) and a synchronized state; nullopt
// otherwise. Uses seq.bytes_acked/bytes_received, read in the same pass as
// the sequence numbers.
std::optional<InitialSequence> InitialSequenceOf(const Tcb& t);
std::optional<InitialSequence> InitialSequenceOf(const v1::Connection& c);

}  // namespace tcbscope

#endif  // TCBSCOPE_COMMON_SEQ_SPACE_H_
