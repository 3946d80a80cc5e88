#include "common/tcp_state.h"

#include "absl/strings/ascii.h"

namespace tcbscope {

const char* StateShortName(v1::TcpState s) {
  switch (s) {
    case v1::TCP_STATE_ESTABLISHED: return "ESTAB";
    case v1::TCP_STATE_SYN_SENT: return "SYN-SENT";
    case v1::TCP_STATE_SYN_RECV: return "SYN-RECV";
    case v1::TCP_STATE_FIN_WAIT1: return "FIN-WAIT-1";
    case v1::TCP_STATE_FIN_WAIT2: return "FIN-WAIT-2";
    case v1::TCP_STATE_TIME_WAIT: return "TIME-WAIT";
    case v1::TCP_STATE_CLOSE: return "UNCONN";
    case v1::TCP_STATE_CLOSE_WAIT: return "CLOSE-WAIT";
    case v1::TCP_STATE_LAST_ACK: return "LAST-ACK";
    case v1::TCP_STATE_LISTEN: return "LISTEN";
    case v1::TCP_STATE_CLOSING: return "CLOSING";
    case v1::TCP_STATE_NEW_SYN_RECV: return "SYN-RECV";
    default: return "UNKNOWN";
  }
}

const char* StateFilterName(v1::TcpState s) {
  switch (s) {
    case v1::TCP_STATE_ESTABLISHED: return "established";
    case v1::TCP_STATE_SYN_SENT: return "syn-sent";
    case v1::TCP_STATE_SYN_RECV: return "syn-recv";
    case v1::TCP_STATE_FIN_WAIT1: return "fin-wait-1";
    case v1::TCP_STATE_FIN_WAIT2: return "fin-wait-2";
    case v1::TCP_STATE_TIME_WAIT: return "time-wait";
    case v1::TCP_STATE_CLOSE: return "unconnected";
    case v1::TCP_STATE_CLOSE_WAIT: return "close-wait";
    case v1::TCP_STATE_LAST_ACK: return "last-ack";
    case v1::TCP_STATE_LISTEN: return "listening";
    case v1::TCP_STATE_CLOSING: return "closing";
    case v1::TCP_STATE_NEW_SYN_RECV: return "syn-recv";
    default: return "unknown";
  }
}

std::optional<StateMask> ParseStateWord(absl::string_view word) {
  const std::string w = absl::AsciiStrToLower(word);
  // Groups, as ss defines them.
  if (w == "all") return kAllStates;
  if (w == "connected") return kConnectedStates;
  if (w == "synchronized") return kConnectedStates & ~StateBit(v1::TCP_STATE_SYN_SENT);
  if (w == "bucket") return StateBit(v1::TCP_STATE_SYN_RECV) | StateBit(v1::TCP_STATE_TIME_WAIT);
  if (w == "big") return kAllStates & ~(StateBit(v1::TCP_STATE_SYN_RECV) | StateBit(v1::TCP_STATE_TIME_WAIT));
  // Single states, with the aliases ss accepts.
  if (w == "unknown") return StateMask{1};  // ss accepts it; no socket has state 0
  if (w == "close" || w == "closed") return StateBit(v1::TCP_STATE_CLOSE);
  if (w == "syn-rcv") return StateBit(v1::TCP_STATE_SYN_RECV);
  for (int s = v1::TCP_STATE_ESTABLISHED; s <= v1::TCP_STATE_CLOSING; ++s) {
    if (w == StateFilterName(static_cast<v1::TcpState>(s))) return StateBit(static_cast<v1::TcpState>(s));
  }
  return std::nullopt;
}

}  // namespace tcbscope
