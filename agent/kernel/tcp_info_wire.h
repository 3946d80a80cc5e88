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

}  // namespace tcbscope::kernel

#endif  // TCBSCOPE_AGENT_KERNEL_TCP_INFO_WIRE_H_
