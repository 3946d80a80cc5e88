// The kernel's struct tcp_info (uapi linux/tcp.h) as of Linux 6.18, declared
// here so the agent reads every field a newer kernel gives even when built
// against older headers. The layout is ABI: fields are only ever appended, so
// a shorter struct from an older kernel is a prefix of this one.
#ifndef TCBSCOPE_AGENT_KERNEL_TCP_INFO_WIRE_H_
#define TCBSCOPE_AGENT_KERNEL_TCP_INFO_WIRE_H_

#include <cstddef>
#include <cstdint>

namespace tcbscope::kernel {

struct TcpInfoWire {
  uint8_t state;
  uint8_t ca_state;
  uint8_t retransmits;
  uint8_t probes;
  uint8_t backoff;
  uint8_t options;
  uint8_t wscale;  // low nibble: snd_wscale, high nibble: rcv_wscale
  uint8_t flags;   // bit 0: delivery_rate_app_limited, bits 1-2: fastopen_client_fail

  uint32_t rto;
  uint32_t ato;
  uint32_t snd_mss;
  uint32_t rcv_mss;

  uint32_t unacked;
  uint32_t sacked;
  uint32_t lost;
  uint32_t retrans;
  uint32_t fackets;

  uint32_t last_data_sent;
  uint32_t last_ack_sent;
  uint32_t last_data_recv;
  uint32_t last_ack_recv;

  uint32_t pmtu;
  uint32_t rcv_ssthresh;
  uint32_t rtt;
  uint32_t rttvar;
  uint32_t snd_ssthresh;
  uint32_t snd_cwnd;
  uint32_t advmss;
  uint32_t reordering;

  uint32_t rcv_rtt;
  uint32_t rcv_space;

  uint32_t total_retrans;

  uint64_t pacing_rate;
  uint64_t max_pacing_rate;
  uint64_t bytes_acked;
  uint64_t bytes_received;
  uint32_t segs_out;
  uint32_t segs_in;

  uint32_t notsent_bytes;
  uint32_t min_rtt;
  uint32_t data_segs_in;
  uint32_t data_segs_out;

  uint64_t delivery_rate;

  uint64_t busy_time;
  uint64_t rwnd_limited;
  uint64_t sndbuf_limited;

  uint32_t delivered;
  uint32_t delivered_ce;

  uint64_t bytes_sent;
  uint64_t bytes_retrans;
  uint32_t dsack_dups;
  uint32_t reord_seen;

  uint32_t rcv_ooopack;

  uint32_t snd_wnd;
  uint32_t rcv_wnd;

  uint32_t rehash;

  uint16_t total_rto;
  uint16_t total_rto_recoveries;
  uint32_t total_rto_time;
  uint32_t received_ce;
  uint32_t delivered_e1_bytes;
  uint32_t delivered_e0_bytes;
  uint32_t delivered_ce_bytes;
  uint32_t received_e1_bytes;
  uint32_t received_e0_bytes;
  uint32_t received_ce_bytes;
  // bits 0-1 ecn_mode, 2-3 accecn_opt_seen, 4-7 accecn_fail_mode, 8-31 options2
  uint32_t ecn_bits;
};

// Offsets fixed by the ABI; a mistake here would silently shift every field.
static_assert(offsetof(TcpInfoWire, rto) == 8);
static_assert(offsetof(TcpInfoWire, last_data_sent) == 44);
static_assert(offsetof(TcpInfoWire, total_retrans) == 100);
static_assert(offsetof(TcpInfoWire, pacing_rate) == 104);
static_assert(offsetof(TcpInfoWire, segs_out) == 136);
static_assert(offsetof(TcpInfoWire, delivery_rate) == 160);
static_assert(offsetof(TcpInfoWire, delivered) == 192);
static_assert(offsetof(TcpInfoWire, bytes_sent) == 200);
static_assert(offsetof(TcpInfoWire, rcv_ooopack) == 224);
static_assert(offsetof(TcpInfoWire, snd_wnd) == 228);
static_assert(offsetof(TcpInfoWire, rehash) == 236);
static_assert(offsetof(TcpInfoWire, total_rto_time) == 244);
static_assert(offsetof(TcpInfoWire, ecn_bits) == 276);
static_assert(sizeof(TcpInfoWire) == 280);

// Kernel releases' struct sizes, for the "absent" list: each entry is the
// first byte offset a field starts at and its name, in order.
struct TcpInfoField {
  size_t offset;
  size_t size;
  const char* name;
  // The v1::TcpInfo field numbers it fills (ecn_bits fills four in a row).
  int first_proto_field, last_proto_field;
};
// All fields after the fixed 104-byte core (present since Linux 2.6), i.e.
// the ones an older kernel may lack.
extern const TcpInfoField kTcpInfoLateFields[];
extern const size_t kTcpInfoLateFieldCount;

// tcpi_options bits.
constexpr uint8_t kTcpiOptTimestamps = 1;
constexpr uint8_t kTcpiOptSack = 2;
constexpr uint8_t kTcpiOptWscale = 4;
constexpr uint8_t kTcpiOptEcn = 8;
constexpr uint8_t kTcpiOptEcnSeen = 16;
constexpr uint8_t kTcpiOptSynData = 32;
constexpr uint8_t kTcpiOptUsecTs = 64;


// Every v1::TcpInfo field filled from the struct, in field-number order:
// X(proto_field, ProtoField, value), the value read from the TcpInfoWire `w`
// and converted to the field's type by whoever expands it (a bool field is
// set when its bit is).
// The one list both the message parser and the wire encoder expand, so the
// two cannot disagree on a field (inet_diag_parser.cc, inet_diag_wire.cc).
#define TCB_TCP_INFO_FIELDS(X, w) \
  X(state, State, (w).state) \
  X(ca_state, CaState, (w).ca_state) \
  X(retransmits, Retransmits, (w).retransmits) \
  X(probes, Probes, (w).probes) \
  X(backoff, Backoff, (w).backoff) \
  X(options, Options, (w).options) \
  X(opt_timestamps, OptTimestamps, (w).options & kTcpiOptTimestamps) \
  X(opt_sack, OptSack, (w).options & kTcpiOptSack) \
  X(opt_wscale, OptWscale, (w).options & kTcpiOptWscale) \
  X(opt_ecn, OptEcn, (w).options & kTcpiOptEcn) \
  X(opt_ecn_seen, OptEcnSeen, (w).options & kTcpiOptEcnSeen) \
  X(opt_syn_data, OptSynData, (w).options & kTcpiOptSynData) \
  X(opt_usec_ts, OptUsecTs, (w).options & kTcpiOptUsecTs) \
  X(snd_wscale, SndWscale, (w).wscale & 0x0f) \
  X(rcv_wscale, RcvWscale, (w).wscale >> 4) \
  X(delivery_rate_app_limited, DeliveryRateAppLimited, (w).flags & 1) \
  X(fastopen_client_fail, FastopenClientFail, ((w).flags >> 1) & 3) \
  X(rto_us, RtoUs, (w).rto) \
  X(ato_us, AtoUs, (w).ato) \
  X(snd_mss, SndMss, (w).snd_mss) \
  X(rcv_mss, RcvMss, (w).rcv_mss) \
  X(unacked, Unacked, (w).unacked) \
  X(sacked, Sacked, (w).sacked) \
  X(lost, Lost, (w).lost) \
  X(retrans, Retrans, (w).retrans) \
  X(fackets, Fackets, (w).fackets) \
  X(last_data_sent_ms, LastDataSentMs, (w).last_data_sent) \
  X(last_ack_sent_ms, LastAckSentMs, (w).last_ack_sent) \
  X(last_data_recv_ms, LastDataRecvMs, (w).last_data_recv) \
  X(last_ack_recv_ms, LastAckRecvMs, (w).last_ack_recv) \
  X(pmtu, Pmtu, (w).pmtu) \
  X(rcv_ssthresh, RcvSsthresh, (w).rcv_ssthresh) \
  X(rtt_us, RttUs, (w).rtt) \
  X(rttvar_us, RttvarUs, (w).rttvar) \
  X(snd_ssthresh, SndSsthresh, (w).snd_ssthresh) \
  X(snd_cwnd, SndCwnd, (w).snd_cwnd) \
  X(advmss, Advmss, (w).advmss) \
  X(reordering, Reordering, (w).reordering) \
  X(rcv_rtt_us, RcvRttUs, (w).rcv_rtt) \
  X(rcv_space, RcvSpace, (w).rcv_space) \
  X(total_retrans, TotalRetrans, (w).total_retrans) \
  X(pacing_rate_bytes_per_s, PacingRateBytesPerS, (w).pacing_rate) \
  X(max_pacing_rate_bytes_per_s, MaxPacingRateBytesPerS, (w).max_pacing_rate) \
  X(bytes_acked, BytesAcked, (w).bytes_acked) \
  X(bytes_received, BytesReceived, (w).bytes_received) \
  X(segs_out, SegsOut, (w).segs_out) \
  X(segs_in, SegsIn, (w).segs_in) \
  X(notsent_bytes, NotsentBytes, (w).notsent_bytes) \
  X(min_rtt_us, MinRttUs, (w).min_rtt) \
  X(data_segs_in, DataSegsIn, (w).data_segs_in) \
  X(data_segs_out, DataSegsOut, (w).data_segs_out) \
  X(delivery_rate_bytes_per_s, DeliveryRateBytesPerS, (w).delivery_rate) \
  X(busy_time_us, BusyTimeUs, (w).busy_time) \
  X(rwnd_limited_us, RwndLimitedUs, (w).rwnd_limited) \
  X(sndbuf_limited_us, SndbufLimitedUs, (w).sndbuf_limited) \
  X(delivered, Delivered, (w).delivered) \
  X(delivered_ce, DeliveredCe, (w).delivered_ce) \
  X(bytes_sent, BytesSent, (w).bytes_sent) \
  X(bytes_retrans, BytesRetrans, (w).bytes_retrans) \
  X(dsack_dups, DsackDups, (w).dsack_dups) \
  X(reord_seen, ReordSeen, (w).reord_seen) \
  X(rcv_ooopack, RcvOoopack, (w).rcv_ooopack) \
  X(snd_wnd, SndWnd, (w).snd_wnd) \
  X(rcv_wnd, RcvWnd, (w).rcv_wnd) \
  X(rehash, Rehash, (w).rehash) \
  X(total_rto, TotalRto, (w).total_rto) \
  X(total_rto_recoveries, TotalRtoRecoveries, (w).total_rto_recoveries) \
  X(total_rto_time_ms, TotalRtoTimeMs, (w).total_rto_time) \
  X(received_ce, ReceivedCe, (w).received_ce) \
  X(delivered_e1_bytes, DeliveredE1Bytes, (w).delivered_e1_bytes) \
  X(delivered_e0_bytes, DeliveredE0Bytes, (w).delivered_e0_bytes) \
  X(delivered_ce_bytes, DeliveredCeBytes, (w).delivered_ce_bytes) \
  X(received_e1_bytes, ReceivedE1Bytes, (w).received_e1_bytes) \
  X(received_e0_bytes, ReceivedE0Bytes, (w).received_e0_bytes) \
  X(received_ce_bytes, ReceivedCeBytes, (w).received_ce_bytes) \
  X(ecn_mode, EcnMode, (w).ecn_bits & 3) \
  X(accecn_opt_seen, AccecnOptSeen, ((w).ecn_bits >> 2) & 3) \
  X(accecn_fail_mode, AccecnFailMode, ((w).ecn_bits >> 4) & 0xf) \
  X(options2, Options2, (w).ecn_bits >> 8)

}  // namespace tcbscope::kernel

#endif  // TCBSCOPE_AGENT_KERNEL_TCP_INFO_WIRE_H_
