#include "common/compare.h"

#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/seq_space.h"
#include "common/tcp_state.h"

namespace tcbscope {
namespace {

// A direction counts as quiet when nothing was sent or received on it for
// this much longer than the capture skew.
constexpr double kQuietMarginMs = 200;

struct Side {
  const Tcb* c;
  std::string name;
};

v1::Finding* Add(Findings* out, const char* code, v1::Severity sev,
                 std::string meaning) {
  v1::Finding* f = out->Add();
  f->set_code(code);
  f->set_severity(sev);
  f->set_meaning(std::move(meaning));
  return f;
}

void Evid(v1::Finding* f, const Side& s, absl::string_view field, absl::string_view value) {
  v1::Evidence* e = f->add_evidence();
  e->set_host(s.name);
  e->set_field(std::string(field));
  e->set_value(std::string(value));
}

std::string StateText(v1::TcpState s) { return StateShortName(s); }

bool FinReceived(v1::TcpState s) {
  return s == v1::TCP_STATE_CLOSE_WAIT || s == v1::TCP_STATE_LAST_ACK || s == v1::TCP_STATE_CLOSING ||
         s == v1::TCP_STATE_TIME_WAIT;
}
bool FinAcked(v1::TcpState s) { return s == v1::TCP_STATE_FIN_WAIT2 || s == v1::TCP_STATE_TIME_WAIT; }
bool Synchronized(v1::TcpState s) {
  return s != v1::TCP_STATE_SYN_SENT && s != v1::TCP_STATE_SYN_RECV && s != v1::TCP_STATE_LISTEN &&
         s != v1::TCP_STATE_CLOSE && s != v1::TCP_STATE_NEW_SYN_RECV && s != v1::TCP_STATE_UNSPECIFIED;
}

// Data bytes (SYN and FIN excluded) the sender has had acknowledged / the
// receiver has taken in order. Only the active opener's bytes_acked counts its
// SYN; when it is not known which end that is, the SYN is assumed counted,
// which can only make the acknowledged figure smaller (never a false alarm).
uint64_t AckedData(const Tcb& s, bool syn_counted) {
  uint64_t v = s.info.bytes_acked;
  uint64_t control = (syn_counted ? 1 : 0) + (FinAcked(s.state) ? 1 : 0);
  return v > control ? v - control : 0;
}
uint64_t ReceivedData(const Tcb& r) {
  uint64_t v = r.info.bytes_received;
  uint64_t control = FinReceived(r.state) ? 1 : 0;
  return v > control ? v - control : 0;
}

// The figures of one direction (sender s, receiver r) that the JSON output
// shows; the findings are decided from the connections themselves.
void FillDirectionView(const Tcb& s, const Tcb& r, bool snd_is_a, bool syn_counted, bool exact,
                       v1::DirectionView* d) {
  d->set_direction(snd_is_a ? "A->B" : "B->A");
  d->set_sender_send_q(s.send_q);
  d->set_receiver_recv_q(r.recv_q);
  if (s.has_tcp_info && r.has_tcp_info) {
    const Tcb::Info& si = s.info;
    const Tcb::Info& ri = r.info;
    d->set_sender_bytes_acked(AckedData(s, syn_counted));
    d->set_sender_bytes_sent(si.bytes_sent);
    d->set_sender_bytes_retrans(si.bytes_retrans);
    d->set_receiver_bytes_received(ReceivedData(r));
    d->set_acks_in_flight_bytes(static_cast<int64_t>(ReceivedData(r)) - static_cast<int64_t>(AckedData(s, syn_counted)));
    const int64_t sent_unique = static_cast<int64_t>(si.bytes_sent - std::min(si.bytes_sent, si.bytes_retrans));
    d->set_data_in_flight_bytes(sent_unique - static_cast<int64_t>(ReceivedData(r)));
    d->set_sender_snd_wnd(si.snd_wnd);
    d->set_receiver_rcv_wnd(ri.rcv_wnd);
    d->set_sender_rtt_us(si.rtt_us);
  }
  if (exact) {
    const Tcb::Seq& sq = s.seq;
    const Tcb::Seq& rq = r.seq;
    d->set_exact(true);
    d->set_seq_in_flight(SeqDiff(sq.snd_nxt, rq.rcv_nxt));
    d->set_seq_acks_in_flight(SeqDiff(rq.rcv_nxt, sq.snd_una));
    d->set_seq_unread(SeqDiff(rq.rcv_nxt, rq.copied_seq));
    d->set_seq_unsent(SeqDiff(sq.write_seq, sq.snd_nxt));
    d->set_seq_window_left(SeqDiff(rq.rcv_wup + rq.rcv_wnd, sq.snd_nxt));
  }
}

void Direction(const CompareContext& ctx, const Side& snd, const Side& rcv, bool snd_is_a,
               absl::string_view passive_side, Findings* findings, Directions* directions) {
  const Tcb& s = *snd.c;
  const Tcb& r = *rcv.c;
  const bool info = s.has_tcp_info && r.has_tcp_info;
  const bool syn_counted = passive_side != (snd_is_a ? "A" : "B");
  const bool exact = s.has_seq && r.has_seq && Synchronized(s.state) && Synchronized(r.state);
  if (directions != nullptr) FillDirectionView(s, r, snd_is_a, syn_counted, exact, directions->Add());
  auto dir = [&] { return absl::StrCat(snd.name, " → ", rcv.name); };

  // The receiving application is not reading: data waits in its queue while
  // the sender has more queued behind it.
  if (Synchronized(r.state) && r.recv_q > 0 && s.send_q > 0) {
    const bool window_closed = (info && s.info.has_windows && s.info.snd_wnd == 0) ||
                               s.timer_kind == v1::Timer::KIND_ZERO_WINDOW_PROBE ||
                               (info && r.info.has_windows && r.info.rcv_wnd == 0);
    v1::Finding* f = Add(findings, kReceiverNotReading, window_closed ? v1::SEVERITY_ERROR : v1::SEVERITY_WARNING,
                         absl::StrCat(dir(), ": ", rcv.name, "'s application is not reading (", r.recv_q,
                                      " bytes unread) while ", snd.name, " has ", s.send_q, " bytes queued",
                                      window_closed ? "; the window is closed" : ""));
    Evid(f, rcv, "recv_q", absl::StrCat(r.recv_q));
    Evid(f, snd, "send_q", absl::StrCat(s.send_q));
  }
  // The receiver advertises no room: the sender can only probe.
  if (Synchronized(s.state) && info &&
      ((s.info.has_windows && s.info.snd_wnd == 0) ||
       s.timer_kind == v1::Timer::KIND_ZERO_WINDOW_PROBE)) {
    v1::Finding* f = Add(findings, kZeroWindow, v1::SEVERITY_WARNING,
                         absl::StrCat(dir(), ": ", rcv.name, " advertises a zero window; ", snd.name,
                                      " cannot send and sends window probes"));
    Evid(f, snd, "tcp_info.snd_wnd", absl::StrCat(s.info.snd_wnd));
    if (s.timer_kind == v1::Timer::KIND_ZERO_WINDOW_PROBE) {
      Evid(f, snd, "timer", absl::StrCat("persist, ", s.timer_retransmits, " probes"));
    }
    Evid(f, rcv, "tcp_info.rcv_wnd", absl::StrCat(r.info.rcv_wnd));
    Evid(f, rcv, "recv_q", absl::StrCat(r.recv_q));
  }
  // Byte accounting: what the receiver took in order must lie between what
  // the sender had acknowledged and what it sent. Checked only when the
  // direction has been quiet for longer than the skew, so both numbers are
  // final whichever snapshot was taken first.
  // With sequence numbers the check is exact: the receiver's next expected
  // byte lies between the sender's oldest unacknowledged byte and its next
  // new one (snd_una <= rcv_nxt <= snd_nxt, in serial order).
  const double quiet = std::abs(ctx.skew_ms) + kQuietMarginMs;
  const bool quiet_dir = info && s.info.last_data_sent_ms > quiet &&
                         r.info.last_data_recv_ms > quiet && s.info.last_ack_recv_ms > quiet;
  if (exact && quiet_dir && !SeqBetween(s.seq.snd_una, r.seq.rcv_nxt, s.seq.snd_nxt)) {
    const Tcb::Seq& sq = s.seq;
    const Tcb::Seq& rq = r.seq;
    const bool behind = SeqBefore(rq.rcv_nxt, sq.snd_una);
    v1::Finding* f = Add(
        findings, kSeqDesync, v1::SEVERITY_ERROR,
        absl::StrCat(dir(), ": the two ends disagree in sequence space: ", rcv.name, " expects byte ", rq.rcv_nxt,
                     behind ? absl::StrCat(", ", -SeqDiff(rq.rcv_nxt, sq.snd_una), " bytes before what ",
                                           snd.name, " already had acknowledged (", sq.snd_una, ")")
                            : absl::StrCat(", ", SeqDiff(rq.rcv_nxt, sq.snd_nxt), " bytes beyond anything ",
                                           snd.name, " sent (snd_nxt ", sq.snd_nxt, ")"),
                     "; the segments between them were rewritten or the TCBs belong to different connections"));
    Evid(f, snd, "seq.snd_una", absl::StrCat(sq.snd_una));
    Evid(f, snd, "seq.snd_nxt", absl::StrCat(sq.snd_nxt));
    Evid(f, rcv, "seq.rcv_nxt", absl::StrCat(rq.rcv_nxt));
  }
  if (!exact && info && Synchronized(s.state) && Synchronized(r.state)) {
    const Tcb::Info& si = s.info;
    const Tcb::Info& ri = r.info;
    if (quiet_dir) {
      const uint64_t acked = AckedData(s, syn_counted), received = ReceivedData(r);
      const uint64_t sent_unique = si.bytes_sent - std::min(si.bytes_sent, si.bytes_retrans);
      if (received < acked || received > sent_unique) {
        v1::Finding* f = Add(findings, kSeqDesync, v1::SEVERITY_ERROR,
                             absl::StrCat(dir(), ": the two ends disagree on the byte stream: ", rcv.name, " took ",
                                          received, " bytes in order, ", snd.name, " had ", acked,
                                          " acknowledged of ", sent_unique, " sent"));
        Evid(f, snd, "tcp_info.bytes_acked", absl::StrCat(si.bytes_acked));
        Evid(f, snd, "tcp_info.bytes_sent", absl::StrCat(si.bytes_sent));
        Evid(f, rcv, "tcp_info.bytes_received", absl::StrCat(ri.bytes_received));
      }
    }
  }
}

void Options(const Side& a, const Side& b, Findings* findings) {
  if (!a.c->has_tcp_info || !b.c->has_tcp_info) return;
  if (!Synchronized(a.c->state) || !Synchronized(b.c->state)) return;
  const Tcb::Info& x = a.c->info;
  const Tcb::Info& y = b.c->info;
  if (x.opt_wscale != y.opt_wscale || x.opt_sack != y.opt_sack || x.opt_timestamps != y.opt_timestamps) {
    v1::Finding* f = Add(findings, kOptionMismatch, v1::SEVERITY_ERROR,
                         "the two ends disagree on the options negotiated in the handshake: something between "
                         "them rewrote the SYN or SYN-ACK");
    auto opts = [](const Tcb::Info& t) {
      return absl::StrCat(t.opt_wscale ? "wscale " : "", t.opt_sack ? "sack " : "",
                          t.opt_timestamps ? "ts" : "");
    };
    Evid(f, a, "tcp_info.options", opts(x));
    Evid(f, b, "tcp_info.options", opts(y));
  } else if (x.opt_wscale && (x.snd_wscale != y.rcv_wscale || x.rcv_wscale != y.snd_wscale)) {
    v1::Finding* f = Add(findings, kWscaleMismatch, v1::SEVERITY_ERROR,
                         "window scale differs between the ends: each misreads the other's window, so transfers "
                         "stall or overrun (a middlebox rewrote the handshake)");
    Evid(f, a, "tcp_info.snd_wscale/rcv_wscale", absl::StrCat(x.snd_wscale, "/", x.rcv_wscale));
    Evid(f, b, "tcp_info.snd_wscale/rcv_wscale", absl::StrCat(y.snd_wscale, "/", y.rcv_wscale));
  }
  // A sender's MSS can never legitimately exceed what the peer advertised.
  for (const auto& [s, r] : {std::pair<const Side*, const Side*>{&a, &b}, {&b, &a}}) {
    const Tcb::Info& si = s->c->info;
    const Tcb::Info& ri = r->c->info;
    if (ri.advmss > 0 && si.snd_mss > ri.advmss) {
      v1::Finding* f = Add(findings, kOptionMismatch, v1::SEVERITY_ERROR,
                           absl::StrCat(s->name, " sends segments of ", si.snd_mss, " bytes but ", r->name,
                                        " advertised an MSS of ", ri.advmss, ": the MSS option was rewritten"));
      Evid(f, *s, "tcp_info.snd_mss", absl::StrCat(si.snd_mss));
      Evid(f, *r, "tcp_info.advmss", absl::StrCat(ri.advmss));
    }
  }
}

}  // namespace

void CompareTcbs(const CompareContext& ctx, const Tcb& tcb_a, const Tcb& tcb_b, absl::string_view passive_side,
                 Findings* findings, Directions* directions) {
  const Side a{&tcb_a, ctx.name_a};
  const Side b{&tcb_b, ctx.name_b};

  // Handshake halfway: the SYN arrived (B answers from SYN_RECV) but the
  // SYN-ACK never reached A, which still waits in SYN_SENT.
  for (const auto& [x, y] : {std::pair<const Side*, const Side*>{&a, &b}, {&b, &a}}) {
    if (x->c->state == v1::TCP_STATE_SYN_SENT && y->c->state == v1::TCP_STATE_SYN_RECV) {
      v1::Finding* f = Add(findings, kHandshakeIncomplete, v1::SEVERITY_ERROR,
                           absl::StrCat(y->name, " received the SYN and answered, but ", x->name,
                                        " never got the SYN-ACK: the return path drops it"));
      Evid(f, *x, "state", "SYN-SENT");
      if (x->c->has_timer) Evid(f, *x, "timer.retransmits", absl::StrCat(x->c->timer_retransmits));
      Evid(f, *y, "state", "SYN-RECV");
      if (y->c->has_timer) Evid(f, *y, "timer.retransmits", absl::StrCat(y->c->timer_retransmits));
    }
  }
  // One side got the FIN and its application never closed.
  for (const Side* x : {&a, &b}) {
    const Side* y = x == &a ? &b : &a;
    if (x->c->state == v1::TCP_STATE_CLOSE_WAIT) {
      v1::Finding* f = Add(findings, kCloseNotCalled, v1::SEVERITY_WARNING,
                           absl::StrCat(y->name, " closed its side; ", x->name,
                                        "'s application got the end of stream but never called close()"));
      Evid(f, *x, "state", StateText(x->c->state));
      Evid(f, *y, "state", StateText(y->c->state));
      if (x->c->recv_q > 0) Evid(f, *x, "recv_q", absl::StrCat(x->c->recv_q));
    }
  }
  Direction(ctx, a, b, true, passive_side, findings, directions);
  Direction(ctx, b, a, false, passive_side, findings, directions);
  Options(a, b, findings);
}

void ComparePair(const CompareContext& ctx, v1::ConnectionPair* pair) {
  CompareTcbs(ctx, TcbOf(pair->a()), TcbOf(pair->b()), pair->passive_side(), pair->mutable_findings(),
              ctx.directions ? pair->mutable_directions() : nullptr);
}

void CompareSamples(const CompareContext& ctx, const std::vector<const v1::ConnectionPair*>& samples,
                    Findings* out) {
  if (samples.size() < 3) return;
  std::vector<std::pair<Tcb, Tcb>> tcbs;
  tcbs.reserve(samples.size());
  for (const v1::ConnectionPair* p : samples) tcbs.emplace_back(TcbOf(p->a()), TcbOf(p->b()));
  for (bool a_sends : {true, false}) {
    auto snd = [&](const std::pair<Tcb, Tcb>& p) -> const Tcb& { return a_sends ? p.first : p.second; };
    auto rcv = [&](const std::pair<Tcb, Tcb>& p) -> const Tcb& { return a_sends ? p.second : p.first; };
    bool usable = true;
    for (const auto& p : tcbs) {
      usable &= snd(p).has_seq && rcv(p).has_seq && Synchronized(snd(p).state) && Synchronized(rcv(p).state);
    }
    if (!usable) continue;
    const Tcb& s0 = snd(tcbs.front());
    const Tcb& s1 = snd(tcbs.back());
    const Tcb& r0 = rcv(tcbs.front());
    const Tcb& r1 = rcv(tcbs.back());
    // The receiver's rcv_nxt never moved while the sender had data out and
    // kept sending or retransmitting: what it sends does not arrive.
    bool receiver_still = true, outstanding = true;
    for (const auto& p : tcbs) {
      receiver_still &= rcv(p).seq.rcv_nxt == r0.seq.rcv_nxt;
      outstanding &= SeqBefore(snd(p).seq.snd_una, snd(p).seq.snd_nxt);
    }
    const bool sender_moved = SeqBefore(s0.seq.snd_nxt, s1.seq.snd_nxt) ||
                              s1.info.total_retrans > s0.info.total_retrans ||
                              s1.timer_retransmits > s0.timer_retransmits;
    if (!(receiver_still && outstanding && sender_moved)) continue;
    const std::string sn = a_sends ? ctx.name_a : ctx.name_b;
    const std::string rn = a_sends ? ctx.name_b : ctx.name_a;
    v1::Finding* f = Add(out, kPathLoss, v1::SEVERITY_ERROR,
                         absl::StrCat(sn, " → ", rn, ": over ", samples.size(), " samples ", sn,
                                      " kept sending and retransmitting but ", rn,
                                      "'s rcv_nxt never moved: the path drops what ", sn, " sends"));
    Evid(f, Side{&s1, sn}, "seq.snd_nxt", absl::StrCat(s0.seq.snd_nxt, " → ", s1.seq.snd_nxt));
    Evid(f, Side{&s1, sn}, "seq.snd_una", absl::StrCat(s0.seq.snd_una, " → ", s1.seq.snd_una));
    Evid(f, Side{&s1, sn}, "tcp_info.total_retrans",
         absl::StrCat(s0.info.total_retrans, " → ", s1.info.total_retrans));
    Evid(f, Side{&r1, rn}, "seq.rcv_nxt", absl::StrCat(r0.seq.rcv_nxt, " (unchanged)"));
  }
}

void CompareUnpairedTcb(const CompareContext& ctx, bool on_a, const Tcb& c, Findings* findings) {
  const Side self{&c, on_a ? ctx.name_a : ctx.name_b};
  const std::string other = on_a ? ctx.name_b : ctx.name_a;
  const std::string peer = c.remote.ToString();
  if (c.state == v1::TCP_STATE_SYN_SENT) {
    v1::Finding* f = Add(findings, kSynUnanswered, v1::SEVERITY_ERROR,
                         absl::StrCat(self.name, " sends SYNs to ", peer, " and ", other,
                                      " has no TCB for them: the SYN never arrived (dropped on the way or on ",
                                      other, "'s input)"));
    Evid(f, self, "state", "SYN-SENT");
    if (c.has_timer) Evid(f, self, "timer.retransmits", absl::StrCat(c.timer_retransmits));
    v1::Evidence* e = f->add_evidence();
    e->set_host(other);
    e->set_field("tcb");
    e->set_value(absl::StrCat("none for ", peer, " ← ", c.local.ToString()));
  } else if (c.state == v1::TCP_STATE_SYN_RECV) {
    v1::Finding* f = Add(findings, kHandshakeIncomplete, v1::SEVERITY_WARNING,
                         absl::StrCat(self.name, " answered a SYN from ", peer, " but ", other,
                                      " holds no matching connection (it gave up, or its SYN-ACK was lost)"));
    Evid(f, self, "state", "SYN-RECV");
  } else if (Synchronized(c.state)) {
    v1::Finding* f = Add(findings, kHalfOpen, v1::SEVERITY_ERROR,
                         absl::StrCat(self.name, " holds a connection to ", peer, " that ", other,
                                      " has no record of: half-open; ", self.name,
                                      " learns only when it next sends (then gets a reset or times out)"));
    Evid(f, self, "state", StateText(c.state));
    if (c.send_q > 0) Evid(f, self, "send_q", absl::StrCat(c.send_q));
    v1::Evidence* e = f->add_evidence();
    e->set_host(other);
    e->set_field("tcb");
    e->set_value(absl::StrCat("none for ", peer, " ← ", c.local.ToString()));
  }
}

void CompareUnpaired(const CompareContext& ctx, bool on_a, v1::UnpairedConnection* u) {
  CompareUnpairedTcb(ctx, on_a, TcbOf(u->connection()), u->mutable_findings());
}

void CountFindings(const Findings& findings, v1::CorrelateResult* result) {
  for (const v1::Finding& f : findings) {
    if (f.severity() == v1::SEVERITY_ERROR) result->set_findings_error(result->findings_error() + 1);
    if (f.severity() == v1::SEVERITY_WARNING) result->set_findings_warning(result->findings_warning() + 1);
    if (f.severity() == v1::SEVERITY_INFO) result->set_findings_info(result->findings_info() + 1);
  }
}

void CompareAll(const CompareContext& ctx, v1::CorrelateResult* result) {
  for (auto& p : *result->mutable_pairs()) ComparePair(ctx, &p);
  for (auto& u : *result->mutable_only_a()) CompareUnpaired(ctx, true, &u);
  for (auto& u : *result->mutable_only_b()) CompareUnpaired(ctx, false, &u);
  result->clear_findings_error();
  result->clear_findings_warning();
  result->clear_findings_info();
  for (const auto& p : result->pairs()) CountFindings(p.findings(), result);
  for (const auto& u : result->only_a()) CountFindings(u.findings(), result);
  for (const auto& u : result->only_b()) CountFindings(u.findings(), result);
}

}  // namespace tcbscope
