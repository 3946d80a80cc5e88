#include "common/tcb.h"

namespace tcbscope {
namespace {

// Each side and thread keeps its last address (LastAddress).
enum Side { kLocal, kRemote };

Endpoint EndpointOf(const v1::Endpoint& e, Side side) {
  thread_local LastAddress last[2];
  return Endpoint{last[side].Of(e.address()), static_cast<uint16_t>(e.port())};
}

}  // namespace

const IpAddress& LastAddress::Of(absl::string_view text) {
  if (text != text_) {
    absl::StatusOr<IpAddress> a = IpAddress::Parse(text);
    text_.assign(text.data(), text.size());
    address_ = a.ok() ? *a : IpAddress();
  }
  return address_;
}

const std::vector<std::string>& TcbFieldPaths() {
  static const auto* const kPaths = new std::vector<std::string>{
      "local", "remote", "state", "family", "v6only", "send_q", "recv_q", "timer", "seq",
      // tcp_info's absent comes with any of these (ListConnectionsRequest).
      "tcp_info.bytes_acked", "tcp_info.bytes_received", "tcp_info.bytes_sent", "tcp_info.bytes_retrans",
      "tcp_info.snd_wnd", "tcp_info.rcv_wnd", "tcp_info.last_data_sent_ms", "tcp_info.last_data_recv_ms",
      "tcp_info.last_ack_recv_ms", "tcp_info.snd_wscale", "tcp_info.rcv_wscale", "tcp_info.advmss",
      "tcp_info.snd_mss", "tcp_info.rtt_us", "tcp_info.total_retrans", "tcp_info.opt_wscale",
      "tcp_info.opt_sack", "tcp_info.opt_timestamps"};
  return *kPaths;
}

Tcb TcbOf(const v1::Connection& c) {
  Tcb t;
  t.local = EndpointOf(c.local(), kLocal);
  t.remote = EndpointOf(c.remote(), kRemote);
  t.state = c.state();
  t.family = c.family();
  t.v6only = c.v6only();
  t.send_q = c.send_q();
  t.recv_q = c.recv_q();
  t.has_timer = c.has_timer();
  t.timer_kind = c.timer().kind();
  t.timer_retransmits = c.timer().retransmits();
  t.has_tcp_info = c.has_tcp_info();
  if (t.has_tcp_info) {
    const v1::TcpInfo& i = c.tcp_info();
    Tcb::Info& o = t.info;
    o.bytes_acked = i.bytes_acked();
    o.bytes_received = i.bytes_received();
    o.bytes_sent = i.bytes_sent();
    o.bytes_retrans = i.bytes_retrans();
    o.snd_wnd = i.snd_wnd();
    o.rcv_wnd = i.rcv_wnd();
    o.last_data_sent_ms = i.last_data_sent_ms();
    o.last_data_recv_ms = i.last_data_recv_ms();
    o.last_ack_recv_ms = i.last_ack_recv_ms();
    o.snd_wscale = i.snd_wscale();
    o.rcv_wscale = i.rcv_wscale();
    o.advmss = i.advmss();
    o.snd_mss = i.snd_mss();
    o.rtt_us = i.rtt_us();
    o.total_retrans = i.total_retrans();
    o.opt_wscale = i.opt_wscale();
    o.opt_sack = i.opt_sack();
    o.opt_timestamps = i.opt_timestamps();
    for (const std::string& f : i.absent()) {
      if (f == "snd_wnd" || f == "rcv_wnd") o.has_windows = false;
    }
  }
  t.has_seq = c.has_seq();
  if (t.has_seq) {
    const v1::SequenceSpace& q = c.seq();
    Tcb::Seq& o = t.seq;
    o.bytes_acked = q.bytes_acked();
    o.bytes_received = q.bytes_received();
    o.snd_una = q.snd_una();
    o.snd_nxt = q.snd_nxt();
    o.rcv_nxt = q.rcv_nxt();
    o.write_seq = q.write_seq();
    o.copied_seq = q.copied_seq();
    o.rcv_wnd = q.rcv_wnd();
    o.rcv_wup = q.rcv_wup();
  }
  return t;
}

void TcbList::NewBlock() {
  constexpr size_t kBytes = kBlock * sizeof(Tcb);
  if (arena_ != nullptr) {
    blocks_.push_back(reinterpret_cast<Tcb*>(google::protobuf::Arena::CreateArray<char>(arena_, kBytes)));
  } else {
    std::unique_ptr<Tcb, Free> block(static_cast<Tcb*>(::operator new(kBytes)));
    blocks_.push_back(block.get());
    owned_.push_back(std::move(block));
  }
}

}  // namespace tcbscope
