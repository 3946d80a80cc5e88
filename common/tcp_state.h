// TCP state names and state sets, as ss spells them.
//
// A StateMask is a bit set indexed by the kernel's state number (1 <<
// TCP_STATE_*), the same layout as inet_diag's idiag_states.
#ifndef TCBSCOPE_COMMON_TCP_STATE_H_
#define TCBSCOPE_COMMON_TCP_STATE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope {

using StateMask = uint32_t;

// No bit for a value outside the mask (an agent may send any number: proto3
// enums are open), so such a state is in no set.
constexpr StateMask StateBit(v1::TcpState s) {
  return static_cast<uint32_t>(s) < 32 ? StateMask{1} << static_cast<uint32_t>(s) : 0;
}

// Every state ss knows (ESTABLISHED..CLOSING; ss's SS_ALL). NEW_SYN_RECV
// request sockets are reported by the kernel as SYN_RECV.
constexpr StateMask kAllStates = 0x0ffe;
// ss's "connected" group: every state but LISTEN and CLOSE.
constexpr StateMask kConnectedStates =
    kAllStates & ~(StateBit(v1::TCP_STATE_LISTEN) | StateBit(v1::TCP_STATE_CLOSE));
// ss's default when no state is named and neither -a nor -l is given (its
// SS_CONN): connected, less the TIME-WAIT and SYN-RECV buckets.
constexpr StateMask kDefaultStates =
    kConnectedStates & ~(StateBit(v1::TCP_STATE_TIME_WAIT) | StateBit(v1::TCP_STATE_SYN_RECV));
// ss -l: listening sockets (and unbound/closed ones, as ss shows them).
constexpr StateMask kListeningStates = StateBit(v1::TCP_STATE_LISTEN) | StateBit(v1::TCP_STATE_CLOSE);

// ss's column spelling: "ESTAB", "SYN-SENT", "TIME-WAIT", "UNCONN", ...
const char* StateShortName(v1::TcpState s);
// The filter-language spelling: "established", "syn-sent", "time-wait", ...
const char* StateFilterName(v1::TcpState s);

// Resolves a state word or group of the filter language ("established",
// "syn-recv", "connected", "bucket", "big", "all", ...) to a mask; nullopt if
// the word is none of them.
std::optional<StateMask> ParseStateWord(absl::string_view word);

}  // namespace tcbscope

#endif  // TCBSCOPE_COMMON_TCP_STATE_H_
