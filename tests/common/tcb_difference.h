// Test helper: the first member two Tcbs differ in, for tests and fuzzers
// that check that two ways of making a Tcb agree.
#ifndef TCBSCOPE_TESTS_COMMON_TCB_DIFFERENCE_H_
#define TCBSCOPE_TESTS_COMMON_TCB_DIFFERENCE_H_

#include <string>

#include "absl/strings/str_cat.h"
#include "common/tcb.h"

namespace tcbscope::testing {

// "" when every member is equal, else the member's name and both values.
// The size check makes a new member fail the build here until it is
// compared too.
inline std::string TcbDifference(const Tcb& a, const Tcb& b) {
  static_assert(sizeof(Tcb) == 208, "a Tcb member was added or removed: compare it below");
#define TCBSCOPE_COMPARE(member)                                                   \
  if (!(a.member == b.member)) {                                                   \
    return absl::StrCat(#member, ": ", ToText(a.member), " vs ", ToText(b.member)); \
  }
  struct {
    std::string operator()(const IpAddress& x) const { return x.ToString(); }
    std::string operator()(uint64_t x) const { return absl::StrCat(x); }
  } ToText;
  TCBSCOPE_COMPARE(local.address)
  TCBSCOPE_COMPARE(local.port)
  TCBSCOPE_COMPARE(remote.address)
  TCBSCOPE_COMPARE(remote.port)
  TCBSCOPE_COMPARE(state)
  TCBSCOPE_COMPARE(family)
  TCBSCOPE_COMPARE(v6only)
  TCBSCOPE_COMPARE(has_timer)
  TCBSCOPE_COMPARE(has_tcp_info)
  TCBSCOPE_COMPARE(has_seq)
  TCBSCOPE_COMPARE(timer_kind)
  TCBSCOPE_COMPARE(timer_retransmits)
  TCBSCOPE_COMPARE(send_q)
  TCBSCOPE_COMPARE(recv_q)
  TCBSCOPE_COMPARE(info.bytes_acked)
  TCBSCOPE_COMPARE(info.bytes_received)
  TCBSCOPE_COMPARE(info.bytes_sent)
  TCBSCOPE_COMPARE(info.bytes_retrans)
  TCBSCOPE_COMPARE(info.snd_wnd)
  TCBSCOPE_COMPARE(info.rcv_wnd)
  TCBSCOPE_COMPARE(info.last_data_sent_ms)
  TCBSCOPE_COMPARE(info.last_data_recv_ms)
  TCBSCOPE_COMPARE(info.last_ack_recv_ms)
  TCBSCOPE_COMPARE(info.snd_wscale)
  TCBSCOPE_COMPARE(info.rcv_wscale)
  TCBSCOPE_COMPARE(info.advmss)
  TCBSCOPE_COMPARE(info.snd_mss)
  TCBSCOPE_COMPARE(info.rtt_us)
  TCBSCOPE_COMPARE(info.total_retrans)
  TCBSCOPE_COMPARE(info.opt_wscale)
  TCBSCOPE_COMPARE(info.opt_sack)
  TCBSCOPE_COMPARE(info.opt_timestamps)
  TCBSCOPE_COMPARE(info.has_windows)
  TCBSCOPE_COMPARE(seq.bytes_acked)
  TCBSCOPE_COMPARE(seq.bytes_received)
  TCBSCOPE_COMPARE(seq.snd_una)
  TCBSCOPE_COMPARE(seq.snd_nxt)
  TCBSCOPE_COMPARE(seq.rcv_nxt)
  TCBSCOPE_COMPARE(seq.write_seq)
  TCBSCOPE_COMPARE(seq.copied_seq)
  TCBSCOPE_COMPARE(seq.rcv_wnd)
  TCBSCOPE_COMPARE(seq.rcv_wup)
#undef TCBSCOPE_COMPARE
  return "";
}

}  // namespace tcbscope::testing

#endif  // TCBSCOPE_TESTS_COMMON_TCB_DIFFERENCE_H_
