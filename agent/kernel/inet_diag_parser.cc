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

constexpr size_t kAlign = 4;
constexpr size_t Align(size_t n) { return (n + kAlign - 1) & ~(kAlign - 1); }

void SetEndpoint(int family, const uint32_t words[4], uint16_t port_be, uint32_t ifindex, v1::Endpoint* e) {
  e->set_address(IpAddress::FromDiag(family, words).ToString());
  e->set_port(ntohs(port_be));
  e->set_ifindex(ifindex);
}

// Sets one tcp_info field, when the caller asked for it.
#define TCB_INFO(name, Name, value)                               \
  if (fields.HasTcpInfo(v1::TcpInfo::k##Name##FieldNumber)) {      \
    out->set_##name(static_cast<std::decay_t<decltype(out->name())>>(value)); \
  }

void FillTcpInfo(const uint8_t* data, size_t len, const ConnectionFields& fields, v1::TcpInfo* out) {
  TcpInfoWire w;
  std::memset(&w, 0, sizeof(w));
  const size_t n = len < sizeof(w) ? len : sizeof(w);
  std::memcpy(&w, data, n);
  out->set_kernel_bytes(static_cast<uint32_t>(len));
  if (len < sizeof(w)) {
    out->set_truncated(true);
    ForEachAbsentField(len, fields, [&](const char* name) { out->add_absent(name); });
  }
  TCB_TCP_INFO_FIELDS(TCB_INFO, w)
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

v1::Timer::Kind DiagTimerKind(uint8_t t) {
  switch (t) {
    case 1: return v1::Timer::KIND_RETRANSMIT;
    case 2: return v1::Timer::KIND_KEEPALIVE;
    case 3: return v1::Timer::KIND_TIME_WAIT;
    case 4: return v1::Timer::KIND_ZERO_WINDOW_PROBE;
    case 5: return v1::Timer::KIND_DELAYED_ACK;
    default: return v1::Timer::KIND_NONE;
  }
}

size_t CopyCongestionName(const uint8_t* p, size_t len, char* out) {
  // NUL-terminated, but never trust that.
  size_t n = 0;
  for (; n < len && p[n] != 0; ++n) out[n] = p[n] >= 0x20 && p[n] < 0x7f ? static_cast<char>(p[n]) : '?';
  return n;
}

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
    t->set_kind(DiagTimerKind(d->idiag_timer));
    t->set_expires_ms(d->idiag_expires);
    t->set_retransmits(d->idiag_retrans);
  }

  return ForEachDiagAttribute(msg, [&](const DiagAttribute& a) {
    const uint8_t* p = a.data;
    const size_t plen = a.len;
    switch (a.type) {
      case diag_attr::kInfo:
        if (fields.Has(v1::Connection::kTcpInfoFieldNumber)) FillTcpInfo(p, plen, fields, out->mutable_tcp_info());
        break;
      case diag_attr::kCong: {
        if (!fields.Has(v1::Connection::kCongestionFieldNumber)) break;
        std::string* name = out->mutable_congestion();
        name->resize(plen);
        name->resize(CopyCongestionName(p, plen, name->data()));
        break;
      }
      case diag_attr::kSkMemInfo: {
        if (!fields.Has(v1::Connection::kMemoryFieldNumber)) break;
        uint32_t m[kSkMemCount] = {};
        std::memcpy(m, p, plen < sizeof(m) ? plen : sizeof(m));
        v1::SocketMemory* mem = out->mutable_memory();
#define TCB_MEM(name, Name, value) mem->set_##name(value);
        TCB_SOCKET_MEMORY_FIELDS(TCB_MEM, m)
#undef TCB_MEM
        break;
      }
      case diag_attr::kMemInfo:
        break;  // the older 4-value form; SKMEMINFO supersedes it
      case diag_attr::kTos:
      case diag_attr::kTclass:
        if (plen >= 1) out->set_tos(p[0]);
        break;
      case diag_attr::kShutdown:
        if (plen >= 1) out->set_shutdown(p[0]);
        break;
      case diag_attr::kV6Only:
        if (plen >= 1) out->set_v6only(p[0] != 0);
        break;
      case diag_attr::kMark:
        if (plen >= 4) out->set_mark(ReadScalar<uint32_t>(p));
        break;
      default:
        break;  // attributes we do not use, or newer than us
    }
  });
}

absl::Status DiagAttributeOverrun(size_t offset, size_t length, size_t message_length) {
  return absl::InvalidArgumentError(absl::StrCat("attribute at offset ", offset, " of length ", length,
                                                 " overruns its message of ", message_length, " bytes"));
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
