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

// Sets one tcp_info field, when the caller asked for it.
#define TCB_INFO(name, Name, value) \
  if (fields.HasTcpInfo(v1::TcpInfo::k##Name##FieldNumber)) out->set_##name(value)

void FillTcpInfo(const uint8_t* data, size_t len, const ConnectionFields& fields, v1::TcpInfo* out) {
  TcpInfoWire w;
  std::memset(&w, 0, sizeof(w));
  const size_t n = len < sizeof(w) ? len : sizeof(w);
  std::memcpy(&w, data, n);
  out->set_kernel_bytes(static_cast<uint32_t>(len));
  if (len < sizeof(w)) {
    out->set_truncated(true);
    for (size_t i = 0; i < kTcpInfoLateFieldCount; ++i) {
      const TcpInfoField& f = kTcpInfoLateFields[i];
      if (f.offset + f.size <= len) continue;
      // Only what the caller asked for: on an older kernel the names of
      // every missing field would outweigh a masked connection.
      bool asked = false;
      for (int n = f.first_proto_field; n <= f.last_proto_field && !asked; ++n) asked = fields.HasTcpInfo(n);
      if (asked) out->add_absent(f.name);
    }
  }
  TCB_INFO(state, State, static_cast<v1::TcpState>(w.state));
  TCB_INFO(ca_state, CaState, w.ca_state);
  TCB_INFO(retransmits, Retransmits, w.retransmits);
  TCB_INFO(probes, Probes, w.probes);
  TCB_INFO(backoff, Backoff, w.backoff);
  TCB_INFO(options, Options, w.options);
  TCB_INFO(opt_timestamps, OptTimestamps, w.options & kTcpiOptTimestamps);
  TCB_INFO(opt_sack, OptSack, w.options & kTcpiOptSack);
  TCB_INFO(opt_wscale, OptWscale, w.options & kTcpiOptWscale);
  TCB_INFO(opt_ecn, OptEcn, w.options & kTcpiOptEcn);
  TCB_INFO(opt_ecn_seen, OptEcnSeen, w.options & kTcpiOptEcnSeen);
  TCB_INFO(opt_syn_data, OptSynData, w.options & kTcpiOptSynData);
  TCB_INFO(opt_usec_ts, OptUsecTs, w.options & kTcpiOptUsecTs);
  TCB_INFO(snd_wscale, SndWscale, w.wscale & 0x0f);
  TCB_INFO(rcv_wscale, RcvWscale, w.wscale >> 4);
  TCB_INFO(delivery_rate_app_limited, DeliveryRateAppLimited, w.flags & 1);
  TCB_INFO(fastopen_client_fail, FastopenClientFail, (w.flags >> 1) & 3);
  TCB_INFO(rto_us, RtoUs, w.rto);
  TCB_INFO(ato_us, AtoUs, w.ato);
  TCB_INFO(snd_mss, SndMss, w.snd_mss);
  TCB_INFO(rcv_mss, RcvMss, w.rcv_mss);
  TCB_INFO(unacked, Unacked, w.unacked);
  TCB_INFO(sacked, Sacked, w.sacked);
  TCB_INFO(lost, Lost, w.lost);
  TCB_INFO(retrans, Retrans, w.retrans);
  TCB_INFO(fackets, Fackets, w.fackets);
  TCB_INFO(last_data_sent_ms, LastDataSentMs, w.last_data_sent);
  TCB_INFO(last_ack_sent_ms, LastAckSentMs, w.last_ack_sent);
  TCB_INFO(last_data_recv_ms, LastDataRecvMs, w.last_data_recv);
  TCB_INFO(last_ack_recv_ms, LastAckRecvMs, w.last_ack_recv);
  TCB_INFO(pmtu, Pmtu, w.pmtu);
  TCB_INFO(rcv_ssthresh, RcvSsthresh, w.rcv_ssthresh);
  TCB_INFO(rtt_us, RttUs, w.rtt);
  TCB_INFO(rttvar_us, RttvarUs, w.rttvar);
  TCB_INFO(snd_ssthresh, SndSsthresh, w.snd_ssthresh);
  TCB_INFO(snd_cwnd, SndCwnd, w.snd_cwnd);
  TCB_INFO(advmss, Advmss, w.advmss);
  TCB_INFO(reordering, Reordering, w.reordering);
  TCB_INFO(rcv_rtt_us, RcvRttUs, w.rcv_rtt);
  TCB_INFO(rcv_space, RcvSpace, w.rcv_space);
  TCB_INFO(total_retrans, TotalRetrans, w.total_retrans);
  TCB_INFO(pacing_rate_bytes_per_s, PacingRateBytesPerS, w.pacing_rate);
  TCB_INFO(max_pacing_rate_bytes_per_s, MaxPacingRateBytesPerS, w.max_pacing_rate);
  TCB_INFO(bytes_acked, BytesAcked, w.bytes_acked);
  TCB_INFO(bytes_received, BytesReceived, w.bytes_received);
  TCB_INFO(segs_out, SegsOut, w.segs_out);
  TCB_INFO(segs_in, SegsIn, w.segs_in);
  TCB_INFO(notsent_bytes, NotsentBytes, w.notsent_bytes);
  TCB_INFO(min_rtt_us, MinRttUs, w.min_rtt);
  TCB_INFO(data_segs_in, DataSegsIn, w.data_segs_in);
  TCB_INFO(data_segs_out, DataSegsOut, w.data_segs_out);
  TCB_INFO(delivery_rate_bytes_per_s, DeliveryRateBytesPerS, w.delivery_rate);
  TCB_INFO(busy_time_us, BusyTimeUs, w.busy_time);
  TCB_INFO(rwnd_limited_us, RwndLimitedUs, w.rwnd_limited);
  TCB_INFO(sndbuf_limited_us, SndbufLimitedUs, w.sndbuf_limited);
  TCB_INFO(delivered, Delivered, w.delivered);
  TCB_INFO(delivered_ce, DeliveredCe, w.delivered_ce);
  TCB_INFO(bytes_sent, BytesSent, w.bytes_sent);
  TCB_INFO(bytes_retrans, BytesRetrans, w.bytes_retrans);
  TCB_INFO(dsack_dups, DsackDups, w.dsack_dups);
  TCB_INFO(reord_seen, ReordSeen, w.reord_seen);
  TCB_INFO(rcv_ooopack, RcvOoopack, w.rcv_ooopack);
  TCB_INFO(snd_wnd, SndWnd, w.snd_wnd);
  TCB_INFO(rcv_wnd, RcvWnd, w.rcv_wnd);
  TCB_INFO(rehash, Rehash, w.rehash);
  TCB_INFO(total_rto, TotalRto, w.total_rto);
  TCB_INFO(total_rto_recoveries, TotalRtoRecoveries, w.total_rto_recoveries);
  TCB_INFO(total_rto_time_ms, TotalRtoTimeMs, w.total_rto_time);
  TCB_INFO(received_ce, ReceivedCe, w.received_ce);
  TCB_INFO(delivered_e1_bytes, DeliveredE1Bytes, w.delivered_e1_bytes);
  TCB_INFO(delivered_e0_bytes, DeliveredE0Bytes, w.delivered_e0_bytes);
  TCB_INFO(delivered_ce_bytes, DeliveredCeBytes, w.delivered_ce_bytes);
  TCB_INFO(received_e1_bytes, ReceivedE1Bytes, w.received_e1_bytes);
  TCB_INFO(received_e0_bytes, ReceivedE0Bytes, w.received_e0_bytes);
  TCB_INFO(received_ce_bytes, ReceivedCeBytes, w.received_ce_bytes);
  TCB_INFO(ecn_mode, EcnMode, w.ecn_bits & 3);
  TCB_INFO(accecn_opt_seen, AccecnOptSeen, (w.ecn_bits >> 2) & 3);
  TCB_INFO(accecn_fail_mode, AccecnFailMode, (w.ecn_bits >> 4) & 0xf);
  TCB_INFO(options2, Options2, w.ecn_bits >> 8);
}

#undef TCB_INFO

template <typename T>
T ReadScalar(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

}  // namespace

#define TCB_LATE_FIELD(f, First, Last)                                                             \
  {offsetof(TcpInfoWire, f), sizeof(TcpInfoWire::f), #f, v1::TcpInfo::k##First##FieldNumber, \
   v1::TcpInfo::k##Last##FieldNumber}
const TcpInfoField kTcpInfoLateFields[] = {
    TCB_LATE_FIELD(pacing_rate, PacingRateBytesPerS, PacingRateBytesPerS),
    TCB_LATE_FIELD(max_pacing_rate, MaxPacingRateBytesPerS, MaxPacingRateBytesPerS),
    TCB_LATE_FIELD(bytes_acked, BytesAcked, BytesAcked),
    TCB_LATE_FIELD(bytes_received, BytesReceived, BytesReceived),
    TCB_LATE_FIELD(segs_out, SegsOut, SegsOut),
    TCB_LATE_FIELD(segs_in, SegsIn, SegsIn),
    TCB_LATE_FIELD(notsent_bytes, NotsentBytes, NotsentBytes),
    TCB_LATE_FIELD(min_rtt, MinRttUs, MinRttUs),
    TCB_LATE_FIELD(data_segs_in, DataSegsIn, DataSegsIn),
    TCB_LATE_FIELD(data_segs_out, DataSegsOut, DataSegsOut),
    TCB_LATE_FIELD(delivery_rate, DeliveryRateBytesPerS, DeliveryRateBytesPerS),
    TCB_LATE_FIELD(busy_time, BusyTimeUs, BusyTimeUs),
    TCB_LATE_FIELD(rwnd_limited, RwndLimitedUs, RwndLimitedUs),
    TCB_LATE_FIELD(sndbuf_limited, SndbufLimitedUs, SndbufLimitedUs),
    TCB_LATE_FIELD(delivered, Delivered, Delivered),
    TCB_LATE_FIELD(delivered_ce, DeliveredCe, DeliveredCe),
    TCB_LATE_FIELD(bytes_sent, BytesSent, BytesSent),
    TCB_LATE_FIELD(bytes_retrans, BytesRetrans, BytesRetrans),
    TCB_LATE_FIELD(dsack_dups, DsackDups, DsackDups),
    TCB_LATE_FIELD(reord_seen, ReordSeen, ReordSeen),
    TCB_LATE_FIELD(rcv_ooopack, RcvOoopack, RcvOoopack),
    TCB_LATE_FIELD(snd_wnd, SndWnd, SndWnd),
    TCB_LATE_FIELD(rcv_wnd, RcvWnd, RcvWnd),
    TCB_LATE_FIELD(rehash, Rehash, Rehash),
    TCB_LATE_FIELD(total_rto, TotalRto, TotalRto),
    TCB_LATE_FIELD(total_rto_recoveries, TotalRtoRecoveries, TotalRtoRecoveries),
    TCB_LATE_FIELD(total_rto_time, TotalRtoTimeMs, TotalRtoTimeMs),
    TCB_LATE_FIELD(received_ce, ReceivedCe, ReceivedCe),
    TCB_LATE_FIELD(delivered_e1_bytes, DeliveredE1Bytes, DeliveredE1Bytes),
    TCB_LATE_FIELD(delivered_e0_bytes, DeliveredE0Bytes, DeliveredE0Bytes),
    TCB_LATE_FIELD(delivered_ce_bytes, DeliveredCeBytes, DeliveredCeBytes),
    TCB_LATE_FIELD(received_e1_bytes, ReceivedE1Bytes, ReceivedE1Bytes),
    TCB_LATE_FIELD(received_e0_bytes, ReceivedE0Bytes, ReceivedE0Bytes),
    TCB_LATE_FIELD(received_ce_bytes, ReceivedCeBytes, ReceivedCeBytes),
    TCB_LATE_FIELD(ecn_bits, EcnMode, Options2),  // ecn_mode, accecn_opt_seen, accecn_fail_mode, options2
};
#undef TCB_LATE_FIELD
const size_t kTcpInfoLateFieldCount = sizeof(kTcpInfoLateFields) / sizeof(kTcpInfoLateFields[0]);

int InetDiagMessageState(const nlmsghdr* msg) {
  if (msg->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) return -1;
  return reinterpret_cast<const inet_diag_msg*>(NLMSG_DATA(msg))->idiag_state;
}

absl::Status ParseInetDiagMessage(const nlmsghdr* msg, uint64_t netns, v1::Connection* out,
                                  const ConnectionFields& fields) {
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
        if (fields.Has(v1::Connection::kTcpInfoFieldNumber)) FillTcpInfo(p, plen, fields, out->mutable_tcp_info());
        break;
      case kAttrCong:
        if (!fields.Has(v1::Connection::kCongestionFieldNumber)) break;
        // NUL-terminated, but never trust that.
        out->set_congestion(std::string(reinterpret_cast<const char*>(p), strnlen(reinterpret_cast<const char*>(p), plen)));
        break;
      case kAttrSkMemInfo: {
        if (!fields.Has(v1::Connection::kMemoryFieldNumber)) break;
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
    } else if (h.nlmsg_type == SOCK_DIAG_BY_FAMILY || h.nlmsg_type == TCPDIAG_GETSOCK) {
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
