#include "common/seq_space.h"

namespace tcbscope {

std::optional<InitialSequence> InitialSequenceOf(const Tcb& t) {
  if (!t.has_seq) return std::nullopt;
  switch (t.state) {
    case v1::TCP_STATE_UNSPECIFIED:
    case v1::TCP_STATE_SYN_SENT:
    case v1::TCP_STATE_SYN_RECV:
    case v1::TCP_STATE_NEW_SYN_RECV:
    case v1::TCP_STATE_LISTEN:
    case v1::TCP_STATE_CLOSE:
    case v1::TCP_STATE_TIME_WAIT:
      return std::nullopt;
    default:
      break;
  }
  const Tcb::Seq& q = t.seq;
  InitialSequence s;
  s.irs = q.rcv_nxt - static_cast<uint32_t>(q.bytes_received) - 1u;
  s.iss_if_active = q.snd_una - static_cast<uint32_t>(q.bytes_acked);
  s.iss_if_passive = s.iss_if_active - 1u;
  return s;
}

std::optional<InitialSequence> InitialSequenceOf(const v1::Connection& c) {
  return c.has_seq() ? InitialSequenceOf(TcbOf(c)) : std::nullopt;
}

}  // namespace tcbscope
