#include "client/render/connection_text.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tcbscope {
namespace {

const char* TimerName(v1::Timer::Kind k) {
  switch (k) {
    case v1::Timer::KIND_RETRANSMIT: return "on";
    case v1::Timer::KIND_KEEPALIVE: return "keepalive";
    case v1::Timer::KIND_TIME_WAIT: return "timewait";
    case v1::Timer::KIND_ZERO_WINDOW_PROBE: return "persist";
    case v1::Timer::KIND_DELAYED_ACK: return "delack";
    default: return "off";
  }
}

std::string Ms(uint32_t us) { return absl::StrFormat("%.3g", us / 1000.0); }

void AppendEndpoint(v1::Family family, bool v6only, absl::string_view address, uint32_t port_number,
                    std::string* out) {
  const absl::AlphaNum port = port_number == 0 ? absl::AlphaNum("*") : absl::AlphaNum(port_number);
  if (family != v1::FAMILY_INET6) {
    absl::StrAppend(out, address, ":", port);
  } else if (address == "::" && !v6only) {
    absl::StrAppend(out, "*:", port);
  } else {
    absl::StrAppend(out, "[", address, "]:", port);
  }
}

}  // namespace

void AppendEndpoint(const v1::Connection& c, const v1::Endpoint& e, std::string* out) {
  AppendEndpoint(c.family(), c.v6only(), e.address(), e.port(), out);
}

std::string FormatEndpoint(const Tcb& t, const Endpoint& e) {
  std::string s;
  AppendEndpoint(t.family, t.v6only, e.address.ToString(), e.port, &s);
  return s;
}

std::string FormatEndpoint(const v1::Connection& c, const v1::Endpoint& e) {
  std::string s;
  AppendEndpoint(c, e, &s);
  return s;
}

void AppendOwners(const v1::Connection& c, std::string* out) {
  if (c.owners().empty()) return;
  out->append("users:(");
  for (int i = 0; i < c.owners_size(); ++i) {
    const v1::Owner& o = c.owners(i);
    absl::StrAppend(out, i ? "," : "", "(\"", o.comm(), "\",pid=", o.pid(), ",fd=", o.fd(), ")");
  }
  out->push_back(')');
}

std::string FormatOwners(const v1::Connection& c) {
  std::string s;
  AppendOwners(c, &s);
  return s;
}

std::string FormatTcpInfo(const v1::Connection& c) {
  std::string s;
  AppendTcpInfo(c, &s);
  return s;
}

void AppendTcpInfo(const v1::Connection& c, std::string* out) {
  // Appended after whatever *out holds; trimming stops at that start.
  std::string& s = *out;
  const size_t start = s.size();
  if (!c.congestion().empty()) absl::StrAppend(&s, c.congestion(), " ");
  if (c.has_timer() && c.timer().kind() != v1::Timer::KIND_NONE) {
    absl::StrAppend(&s, "timer:(", TimerName(c.timer().kind()), ",", c.timer().expires_ms(), "ms,",
                    c.timer().retransmits(), ") ");
  }
  if (!c.has_tcp_info()) {
    while (s.size() > start && s.back() == ' ') s.pop_back();
    return;
  }
  const v1::TcpInfo& t = c.tcp_info();
  if (t.opt_timestamps()) absl::StrAppend(&s, "ts ");
  if (t.opt_sack()) absl::StrAppend(&s, "sack ");
  if (t.opt_ecn()) absl::StrAppend(&s, "ecn ");
  if (t.opt_wscale()) absl::StrAppend(&s, "wscale:", t.snd_wscale(), ",", t.rcv_wscale(), " ");
  absl::StrAppend(&s, "rto:", t.rto_us() / 1000, " rtt:", Ms(t.rtt_us()), "/", Ms(t.rttvar_us()));
  if (t.ato_us()) absl::StrAppend(&s, " ato:", t.ato_us() / 1000);
  absl::StrAppend(&s, " mss:", t.snd_mss(), " pmtu:", t.pmtu(), " rcvmss:", t.rcv_mss(), " advmss:", t.advmss(),
                  " cwnd:", t.snd_cwnd());
  if (t.snd_ssthresh() < 0xffff) absl::StrAppend(&s, " ssthresh:", t.snd_ssthresh());
  if (t.bytes_sent()) absl::StrAppend(&s, " bytes_sent:", t.bytes_sent());
  if (t.bytes_retrans()) absl::StrAppend(&s, " bytes_retrans:", t.bytes_retrans());
  if (t.bytes_acked()) absl::StrAppend(&s, " bytes_acked:", t.bytes_acked());
  if (t.bytes_received()) absl::StrAppend(&s, " bytes_received:", t.bytes_received());
  absl::StrAppend(&s, " segs_out:", t.segs_out(), " segs_in:", t.segs_in());
  if (t.data_segs_out()) absl::StrAppend(&s, " data_segs_out:", t.data_segs_out());
  if (t.data_segs_in()) absl::StrAppend(&s, " data_segs_in:", t.data_segs_in());
  absl::StrAppend(&s, " lastsnd:", t.last_data_sent_ms(), " lastrcv:", t.last_data_recv_ms(),
                  " lastack:", t.last_ack_recv_ms());
  if (t.unacked()) absl::StrAppend(&s, " unacked:", t.unacked());
  if (t.retrans() || t.total_retrans()) absl::StrAppend(&s, " retrans:", t.retrans(), "/", t.total_retrans());
  if (t.lost()) absl::StrAppend(&s, " lost:", t.lost());
  if (t.notsent_bytes()) absl::StrAppend(&s, " notsent:", t.notsent_bytes());
  absl::StrAppend(&s, " rcv_space:", t.rcv_space(), " rcv_ssthresh:", t.rcv_ssthresh());
  if (t.min_rtt_us()) absl::StrAppend(&s, " minrtt:", Ms(t.min_rtt_us()));
  absl::StrAppend(&s, " snd_wnd:", t.snd_wnd(), " rcv_wnd:", t.rcv_wnd());
  if (t.truncated()) absl::StrAppend(&s, " (kernel tcp_info: ", t.kernel_bytes(), " bytes)");
}

}  // namespace tcbscope
