#include "agent/kernel/inet_diag_parser.h"

#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/kernel/tcp_info_wire.h"
#include "common/ip_address.h"

namespace tcbscope::kernel {
namespace {

// Attribute types, numbered as in uapi linux/inet_diag.h (named here so the
// parser does not depend on how new the build machine's headers are).
constexpr uint16_t kAttrMemInfo = 1;
constexpr uint16_t kAttrInfo = 2;
constexpr uint16_t kAttrCong = 4;
constexpr uint16_t kAttrTos = 5;
constexpr uint16_t kAttrTclass = 6;
constexpr uint16_t kAttrSkMemInfo = 7;
constexpr uint16_t kAttrShutdown = 8;
constexpr uint16_t kAttrV6Only = 11;
constexpr uint16_t kAttrMark = 15;

// Indexes into INET_DIAG_SKMEMINFO (SK_MEMINFO_*).
enum SkMemIndex { kRmemAlloc, kRcvbuf, kWmemAlloc, kSndbuf, kFwdAlloc, kWmemQueued, kOptmem, kBacklog, kDrops, kSkMemCount };

constexpr size_t kAlign = 4;
constexpr size_t Align(size_t n) { return (n + kAlign - 1) & ~(kAlign - 1); }

void SetEndpoint(int family, const uint32_t words[4], uint16_t port_be, uint32_t ifindex, v1::Endpoint* e) {
  e->set_address(IpAddress::FromDiag(family, words).ToString());
  e->set_port(ntohs(port_be));
  e->set_ifindex(ifindex);
}

v1::Timer::Kind TimerKind(uint8_t t) {
  switch (t) {
    case 1: return v1::Timer::KIND_RETRANSMIT;
    case 2: return v1::Timer::KIND_KEEPALIVE;
    case 3: return v1::Timer::KIND_TIME_WAIT;
    case 4: return v1::Timer::KIND_ZERO_WINDOW_PROBE;
    case 5: return v1::Timer::KIND_DELAYED_ACK;
    default: return v1::Timer::KIND_NONE;
  }
}

void FillTcpInfo(const uint8_t* data, size_t len, v1::TcpInfo* out) {
  TcpInfoWire w;
  std::memset(&w, 0, sizeof(w));
  const size_t n = len < sizeof(w) ? len : sizeof(w);
  std::memcpy(&w, data, n);
  out->set_kernel_bytes(static_cast<uint32_t>(len));
  if (len < sizeof(w)) {
    out->set_truncated(true);
    for (size_t i = 0; i < kTcpInfoLateFieldCount; ++i) {
      if (kTcpInfoLateFields[i].offset + kTcpInfoLateFields[i].size > len) {
        out->add_absent(kTcpInfoLateFields[i].name);
      }
    }
  }
  out->set_state(static_cast<v1::TcpState>(w.state));
  out->set_ca_state(w.ca_state);
  out->set_retransmits(w.retransmits);
  out->set_probes(w.probes);
  out->set_backoff(w.backoff);
  out->set_options(w.options);
  out->set_opt_timestamps(w.options & kTcpiOptTimestamps);
  out->set_opt_sack(w.options & kTcpiOptSack);
  out->set_opt_wscale(w.options & kTcpiOptWscale);
  out->set_opt_ecn(w.options & kTcpiOptEcn);
  out->set_opt_ecn_seen(w.options & kTcpiOptEcnSeen);
  out->set_opt_syn_data(w.options & kTcpiOptSynData);
  out->set_opt_usec_ts(w.options & kTcpiOptUsecTs);
  out->set_snd_wscale(w.wscale & 0x0f);
  out->set_rcv_wscale(w.wscale >> 4);
  out->set_delivery_rate_app_limited(w.flags & 1);
  out->set_fastopen_client_fail((w.flags >> 1) & 3);
  out->set_rto_us(w.rto);
  out->set_ato_us(w.ato);
  out->set_snd_mss(w.snd_mss);
  out->set_rcv_mss(w.rcv_mss);
  out->set_unacked(w.unacked);
  out->set_sacked(w.sacked);
  out->set_lost(w.lost);
  out->set_retrans(w.retrans);
  out->set_fackets(w.fackets);
  out->set_last_data_sent_ms(w.last_data_sent);
  out->set_last_ack_sent_ms(w.last_ack_sent);
  out->set_last_data_recv_ms(w.last_data_recv);
  out->set_last_ack_recv_ms(w.last_ack_recv);
  out->set_pmtu(w.pmtu);
  out->set_rcv_ssthresh(w.rcv_ssthresh);
  out->set_rtt_us(w.rtt);
  out->set_rttvar_us(w.rttvar);
  out->set_snd_ssthresh(w.snd_ssthresh);
  out->set_snd_cwnd(w.snd_cwnd);
  out->set_advmss(w.advmss);
  out->set_reordering(w.reordering);
  out->set_rcv_rtt_us(w.rcv_rtt);
  out->set_rcv_space(w.rcv_space);
  out->set_total_retrans(w.total_retrans);
  out->set_pacing_rate_bytes_per_s(w.pacing_rate);
  out->set_max_pacing_rate_bytes_per_s(w.max_pacing_rate);
  out->set_bytes_acked(w.bytes_acked);
  out->set_bytes_received(w.bytes_received);
  out->set_segs_out(w.segs_out);
  out->set_segs_in(w.segs_in);
  out->set_notsent_bytes(w.notsent_bytes);
  out->set_min_rtt_us(w.min_rtt);
  out->set_data_segs_in(w.data_segs_in);
  out->set_data_segs_out(w.data_segs_out);
  out->set_delivery_rate_bytes_per_s(w.delivery_rate);
  out->set_busy_time_us(w.busy_time);
  out->set_rwnd_limited_us(w.rwnd_limited);
  out->set_sndbuf_limited_us(w.sndbuf_limited);
  out->set_delivered(w.delivered);
  out->set_delivered_ce(w.delivered_ce);
  out->set_bytes_sent(w.bytes_sent);
  out->set_bytes_retrans(w.bytes_retrans);
  out->set_dsack_dups(w.dsack_dups);
  out->set_reord_seen(w.reord_seen);
  out->set_rcv_ooopack(w.rcv_ooopack);
  out->set_snd_wnd(w.snd_wnd);
  out->set_rcv_wnd(w.rcv_wnd);
  out->set_rehash(w.rehash);
  out->set_total_rto(w.total_rto);
  out->set_total_rto_recoveries(w.total_rto_recoveries);
  out->set_total_rto_time_ms(w.total_rto_time);
  out->set_received_ce(w.received_ce);
  out->set_delivered_e1_bytes(w.delivered_e1_bytes);
  out->set_delivered_e0_bytes(w.delivered_e0_bytes);
  out->set_delivered_ce_bytes(w.delivered_ce_bytes);
  out->set_received_e1_bytes(w.received_e1_bytes);
  out->set_received_e0_bytes(w.received_e0_bytes);
  out->set_received_ce_bytes(w.received_ce_bytes);
  out->set_ecn_mode(w.ecn_bits & 3);
  out->set_accecn_opt_seen((w.ecn_bits >> 2) & 3);
  out->set_accecn_fail_mode((w.ecn_bits >> 4) & 0xf);
  out->set_options2(w.ecn_bits >> 8);
}

template <typename T>
T ReadScalar(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

}  // namespace

#define TCB_LATE_FIELD(f) {offsetof(TcpInfoWire, f), sizeof(TcpInfoWire::f), #f}
const TcpInfoField kTcpInfoLateFields[] = {
    TCB_LATE_FIELD(pacing_rate),        TCB_LATE_FIELD(max_pacing_rate),
    TCB_LATE_FIELD(bytes_acked),        TCB_LATE_FIELD(bytes_received),
    TCB_LATE_FIELD(segs_out),           TCB_LATE_FIELD(segs_in),
    TCB_LATE_FIELD(notsent_bytes),      TCB_LATE_FIELD(min_rtt),
    TCB_LATE_FIELD(data_segs_in),       TCB_LATE_FIELD(data_segs_out),
    TCB_LATE_FIELD(delivery_rate),      TCB_LATE_FIELD(busy_time),
    TCB_LATE_FIELD(rwnd_limited),       TCB_LATE_FIELD(sndbuf_limited),
    TCB_LATE_FIELD(delivered),          TCB_LATE_FIELD(delivered_ce),
    TCB_LATE_FIELD(bytes_sent),         TCB_LATE_FIELD(bytes_retrans),
    TCB_LATE_FIELD(dsack_dups),         TCB_LATE_FIELD(reord_seen),
    TCB_LATE_FIELD(rcv_ooopack),        TCB_LATE_FIELD(snd_wnd),
    TCB_LATE_FIELD(rcv_wnd),            TCB_LATE_FIELD(rehash),
    TCB_LATE_FIELD(total_rto),          TCB_LATE_FIELD(total_rto_recoveries),
    TCB_LATE_FIELD(total_rto_time),     TCB_LATE_FIELD(received_ce),
    TCB_LATE_FIELD(delivered_e1_bytes), TCB_LATE_FIELD(delivered_e0_bytes),
    TCB_LATE_FIELD(delivered_ce_bytes), TCB_LATE_FIELD(received_e1_bytes),
    TCB_LATE_FIELD(received_e0_bytes),  TCB_LATE_FIELD(received_ce_bytes),
    TCB_LATE_FIELD(ecn_bits),
};
#undef TCB_LATE_FIELD
const size_t kTcpInfoLateFieldCount = sizeof(kTcpInfoLateFields) / sizeof(kTcpInfoLateFields[0]);

int InetDiagMessageState(const nlmsghdr* msg) {
  if (msg->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) return -1;
  return reinterpret_cast<const inet_diag_msg*>(NLMSG_DATA(msg))->idiag_state;
}

absl::Status ParseInetDiagMessage(const nlmsghdr* msg, uint64_t netns, v1::Connection* out) {
  if (msg->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) {
    return absl::InvalidArgumentError(
        absl::StrCat("inet_diag message of ", msg->nlmsg_len, " bytes is shorter than its header"));
  }
  const auto* d = reinterpret_cast<const inet_diag_msg*>(NLMSG_DATA(msg));
  if (d->idiag_family != AF_INET && d->idiag_family != AF_INET6) {
    return absl::InvalidArgumentError(absl::StrCat("inet_diag message with family ", d->idiag_family));
  }
  out->set_family(d->idiag_family == AF_INET ? v1::FAMILY_INET : v1::FAMILY_INET6);
  out->set_state(static_cast<v1::TcpState>(d->idiag_state));
  SetEndpoint(d->idiag_family, d->id.idiag_src, d->id.idiag_sport, d->id.idiag_if, out->mutable_local());
  SetEndpoint(d->idiag_family, d->id.idiag_dst, d->id.idiag_dport, 0, out->mutable_remote());
  out->set_netns(netns);
  out->set_inode(d->idiag_inode);
  out->set_cookie((static_cast<uint64_t>(d->id.idiag_cookie[1]) << 32) | d->id.idiag_cookie[0]);
  out->set_uid(d->idiag_uid);
  out->set_recv_q(d->idiag_rqueue);
  out->set_send_q(d->idiag_wqueue);
  if (d->idiag_timer != 0) {
    v1::Timer* t = out->mutable_timer();
    t->set_kind(TimerKind(d->idiag_timer));
    t->set_expires_ms(d->idiag_expires);
    t->set_retransmits(d->idiag_retrans);
  }

  // Attributes follow the fixed message, each a 4-byte header (len, type)
  // and a payload padded to 4 bytes.
  const auto* base = reinterpret_cast<const uint8_t*>(msg);
  size_t off = NLMSG_LENGTH(sizeof(inet_diag_msg));
  off = Align(off);
  const size_t end = msg->nlmsg_len;
  while (off + sizeof(nlattr) <= end) {
    nlattr a;
    std::memcpy(&a, base + off, sizeof(a));
    if (a.nla_len < sizeof(nlattr) || off + a.nla_len > end) {
      return absl::InvalidArgumentError(absl::StrCat("attribute at offset ", off, " of length ",
                                                     a.nla_len, " overruns its message of ", end, " bytes"));
    }
    const uint8_t* p = base + off + sizeof(nlattr);
    const size_t plen = a.nla_len - sizeof(nlattr);
    switch (a.nla_type & NLA_TYPE_MASK) {
      case kAttrInfo:
        FillTcpInfo(p, plen, out->mutable_tcp_info());
        break;
      case kAttrCong:
        // NUL-terminated, but never trust that.
        out->set_congestion(std::string(reinterpret_cast<const char*>(p), strnlen(reinterpret_cast<const char*>(p), plen)));
        break;
      case kAttrSkMemInfo: {
        uint32_t m[kSkMemCount] = {};
        std::memcpy(m, p, plen < sizeof(m) ? plen : sizeof(m));
        v1::SocketMemory* mem = out->mutable_memory();
        mem->set_rmem_alloc_bytes(m[kRmemAlloc]);
        mem->set_rcvbuf_bytes(m[kRcvbuf]);
        mem->set_wmem_alloc_bytes(m[kWmemAlloc]);
        mem->set_sndbuf_bytes(m[kSndbuf]);
        mem->set_fwd_alloc_bytes(m[kFwdAlloc]);
        mem->set_wmem_queued_bytes(m[kWmemQueued]);
        mem->set_optmem_bytes(m[kOptmem]);
        mem->set_backlog_bytes(m[kBacklog]);
        mem->set_drops(m[kDrops]);
        break;
      }
      case kAttrMemInfo:
        break;  // the older 4-value form; SKMEMINFO supersedes it
      case kAttrTos:
      case kAttrTclass:
        if (plen >= 1) out->set_tos(p[0]);
        break;
      case kAttrShutdown:
        if (plen >= 1) out->set_shutdown(p[0]);
        break;
      case kAttrV6Only:
        if (plen >= 1) out->set_v6only(p[0] != 0);
        break;
      case kAttrMark:
        if (plen >= 4) out->set_mark(ReadScalar<uint32_t>(p));
        break;
      default:
        break;  // attributes we do not use, or newer than us
    }
    off += Align(a.nla_len);
  }
  return absl::OkStatus();
}

absl::StatusOr<DiagStreamSummary> WalkDiagStream(
    absl::string_view bytes, const std::function<absl::Status(const nlmsghdr*)>& on_socket) {
  DiagStreamSummary summary;
  size_t off = 0;
  // nlmsghdr needs 4-byte alignment; copy each message to aligned storage if
  // the caller's buffer is not aligned.
  std::string aligned;
  while (off < bytes.size()) {
    if (bytes.size() - off < sizeof(nlmsghdr)) {
      return absl::InvalidArgumentError(absl::StrCat("offset ", off, ": truncated netlink header (",
                                                     bytes.size() - off, " bytes left)"));
    }
    nlmsghdr h;
    std::memcpy(&h, bytes.data() + off, sizeof(h));
    if (h.nlmsg_len < sizeof(nlmsghdr)) {
      return absl::InvalidArgumentError(
          absl::StrCat("offset ", off, ": netlink length ", h.nlmsg_len, " is below the header size"));
    }
    if (h.nlmsg_len > bytes.size() - off) {
      return absl::InvalidArgumentError(absl::StrCat("offset ", off, ": netlink message of ", h.nlmsg_len,
                                                     " bytes but only ", bytes.size() - off, " left"));
    }
    if (h.nlmsg_flags & NLM_F_DUMP_INTR) summary.interrupted = true;
    const char* start = bytes.data() + off;
    const nlmsghdr* msg = reinterpret_cast<const nlmsghdr*>(start);
    if (reinterpret_cast<uintptr_t>(start) % alignof(nlmsghdr) != 0) {
      aligned.assign(start, h.nlmsg_len);
      msg = reinterpret_cast<const nlmsghdr*>(aligned.data());
    }
    if (h.nlmsg_type == NLMSG_DONE) {
      ++summary.done_messages;
    } else if (h.nlmsg_type == NLMSG_ERROR) {
      int err = 0;
      if (h.nlmsg_len >= NLMSG_LENGTH(sizeof(int))) std::memcpy(&err, start + NLMSG_HDRLEN, sizeof(err));
      if (err != 0) {
        return absl::InvalidArgumentError(absl::StrCat("offset ", off, ": recorded netlink error ",
                                                       -err, " (", strerror(-err), ")"));
      }
    } else if (h.nlmsg_type == SOCK_DIAG_BY_FAMILY) {
      ++summary.sockets;
      absl::Status s = on_socket(msg);
      if (!s.ok()) return s;
    } else if (h.nlmsg_type != NLMSG_NOOP) {
      return absl::InvalidArgumentError(
          absl::StrCat("offset ", off, ": unexpected netlink message type ", h.nlmsg_type));
    }
    // The last message of a file may lack its padding.
    off += std::min<size_t>(Align(h.nlmsg_len), bytes.size() - off);
  }
  return summary;
}

}  // namespace tcbscope::kernel
