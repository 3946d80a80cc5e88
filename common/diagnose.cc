#include "common/diagnose.h"

#include <map>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/compare.h"
#include "common/tcp_state.h"

namespace tcbscope {
namespace {

std::string Ep(const v1::Endpoint& e) {
  return e.address().find(':') != std::string::npos ? absl::StrCat("[", e.address(), "]:", e.port())
                                                     : absl::StrCat(e.address(), ":", e.port());
}

std::string Target(const DiagnoseInput& in) {
  return in.target.is_v6() ? absl::StrCat("[", in.target.ToString(), "]:", in.port)
                           : absl::StrCat(in.target.ToString(), ":", in.port);
}

void Evid(v1::DiagnoseResult* out, const std::string& host, const std::string& field, const std::string& value) {
  v1::Evidence* e = out->add_evidence();
  e->set_host(host);
  e->set_field(field);
  e->set_value(value);
}

IpAddress Addr(const v1::Endpoint& e) {
  absl::StatusOr<IpAddress> a = IpAddress::Parse(e.address());
  return a.ok() ? a->Folded() : IpAddress();
}

// Would this listener accept a connection to target?
bool Serves(const v1::Connection& l, const IpAddress& target) {
  const IpAddress la = Addr(l.local());
  const IpAddress t = target.Folded();
  if (la.IsUnspecified()) {
    if (l.family() == v1::FAMILY_INET) return t.is_v4();
    return t.is_v6() || !l.v6only();  // "::" takes IPv4 too unless v6only
  }
  return la == t;
}

std::string Moved(int64_t delta) { return delta >= 0 ? absl::StrCat("+", delta) : absl::StrCat(delta); }

std::string ProbeText(const v1::ProbeResult& p) {
  std::string outcome = v1::ProbeResult::Outcome_Name(p.outcome());
  if (outcome.rfind("OUTCOME_", 0) == 0) outcome = outcome.substr(8);
  std::vector<std::string> states;
  for (int s : p.states()) states.push_back(StateShortName(static_cast<v1::TcpState>(s)));
  return absl::StrCat(outcome, " after ", p.elapsed_ms(), " ms", p.detail().empty() ? "" : absl::StrCat(" (", p.detail(), ")"),
                      states.empty() ? "" : absl::StrCat("; states ", absl::StrJoin(states, " -> ")));
}

void Verdict(v1::DiagnoseResult* out, const char* code, std::string summary, std::string next) {
  out->set_verdict(code);
  out->set_summary(std::move(summary));
  out->set_next_step(std::move(next));
}

const v1::Finding* FindCode(const v1::CorrelateResult* r, const char* code, bool* on_pair = nullptr) {
  if (r == nullptr) return nullptr;
  for (const auto& p : r->pairs()) {
    for (const auto& f : p.findings()) {
      if (f.code() == code) {
        if (on_pair) *on_pair = true;
        return &f;
      }
    }
  }
  for (const auto* list : {&r->only_a(), &r->only_b()}) {
    for (const auto& u : *list) {
      for (const auto& f : u.findings()) {
        if (f.code() == code) {
          if (on_pair) *on_pair = false;
          return &f;
        }
      }
    }
  }
  return nullptr;
}

// A finding of the correlation becomes the verdict, its evidence the
// verdict's.
void FromFinding(v1::DiagnoseResult* out, const v1::Finding& f, const char* next) {
  Verdict(out, f.code().c_str(), f.meaning(), next);
  for (const auto& e : f.evidence()) Evid(out, e.host(), e.field(), e.value());
}

}  // namespace

int64_t CounterDelta(const v1::Counters* before, const v1::Counters* after, const std::string& group,
                     const std::string& name) {
  if (before == nullptr || after == nullptr) return 0;
  auto value = [&](const v1::Counters* c) -> int64_t {
    for (const auto& g : c->groups()) {
      if (g.name() != group) continue;
      auto it = g.values().find(name);
      return it == g.values().end() ? 0 : it->second;
    }
    return 0;
  };
  return value(after) - value(before);
}

void Diagnose(const DiagnoseInput& in, v1::DiagnoseResult* out) {
  const std::string target = Target(in);
  if (in.after != nullptr) {
    for (const auto& p : in.after->pairs()) {
      for (const auto& f : p.findings()) *out->add_findings() = f;
    }
    for (const auto* list : {&in.after->only_a(), &in.after->only_b()}) {
      for (const auto& u : *list) {
        for (const auto& f : u.findings()) *out->add_findings() = f;
      }
    }
  }
  auto delta = [&](bool b, const char* group, const char* name) {
    return b ? CounterDelta(in.b_before, in.b_after, group, name) : CounterDelta(in.a_before, in.a_after, group, name);
  };
  const bool counters_b = in.b_before != nullptr && in.b_after != nullptr;

  // 1. Is anything there to connect to?
  const v1::Connection* serving = nullptr;
  std::vector<std::string> elsewhere;
  for (const v1::Connection& l : in.b_listeners) {
    if (l.local().port() != in.port) continue;
    if (Serves(l, in.target)) {
      if (serving == nullptr) serving = &l;
    } else {
      elsewhere.push_back(absl::StrCat(Ep(l.local()), l.v6only() ? " (v6only)" : ""));
    }
  }
  if (serving == nullptr) {
    Verdict(out, kNoListener,
            elsewhere.empty()
                ? absl::StrCat("nothing listens on ", target, ": B refuses every connection to it")
                : absl::StrCat("nothing listens on ", target, "; B listens on port ", in.port, " only at ",
                               absl::StrJoin(elsewhere, ", ")),
            elsewhere.empty() ? absl::StrCat("start the service on B, listening on port ", in.port)
                              : absl::StrCat("make the service on B listen on ", target,
                                             " (or on the wildcard address), or connect to the address it uses"));
    Evid(out, "B", absl::StrCat("listeners on port ", in.port), elsewhere.empty() ? "none" : absl::StrJoin(elsewhere, ", "));
    if (in.probe != nullptr) {
      Evid(out, "A", "probe", ProbeText(*in.probe));
    } else {
      Evid(out, "A", absl::StrCat("connections to ", target), "none that B accepted");
    }
    if (counters_b) Evid(out, "B", "Tcp.OutRsts", Moved(delta(true, "Tcp", "OutRsts")));
    out->add_limits("B's agent reads its own network namespace: a service in another namespace on B (a container) "
                    "is not seen unless the agent reads every namespace");
    return;
  }
  out->add_checked(absl::StrCat("B listens on ", Ep(serving->local()), " (accept queue ", serving->recv_q(), " of ",
                                serving->send_q(), ")"));

  // 2. A connection that goes nowhere.
  const int64_t overflows = delta(true, "TcpExt", "ListenOverflows");
  const int64_t drops = delta(true, "TcpExt", "ListenDrops");
  const bool probe_stuck = in.probe != nullptr && (in.probe->outcome() == v1::ProbeResult::OUTCOME_TIMED_OUT ||
                                                   in.probe->outcome() == v1::ProbeResult::OUTCOME_UNREACHABLE);
  bool a_syn_sent = false;
  if (in.after != nullptr) {
    for (const auto& u : in.after->only_a()) a_syn_sent |= u.connection().state() == v1::TCP_STATE_SYN_SENT;
    for (const auto& p : in.after->pairs()) a_syn_sent |= p.a().state() == v1::TCP_STATE_SYN_SENT;
  }
  const bool stuck = probe_stuck || a_syn_sent;
  const bool at_backlog = serving->send_q() > 0 && serving->recv_q() >= serving->send_q();
  if ((at_backlog && (overflows > 0 || stuck)) || (overflows > 0 && stuck)) {
    Verdict(out, kAcceptQueueFull,
            absl::StrCat("B's listener on ", Ep(serving->local()), " has ", serving->recv_q(),
                         " connections waiting to be accepted (backlog ", serving->send_q(),
                         "): the kernel drops new SYNs until its application calls accept()"),
            "find why B's application does not accept(): a stuck accept loop, a thread pool exhausted, or a "
            "backlog too small for the load (listen(2) and net.core.somaxconn)");
    Evid(out, "B", "listener recv_q/send_q", absl::StrCat(serving->recv_q(), "/", serving->send_q()));
    if (counters_b) {
      Evid(out, "B", "TcpExt.ListenOverflows", Moved(overflows));
      Evid(out, "B", "TcpExt.ListenDrops", Moved(drops));
    }
    if (in.probe != nullptr) Evid(out, "A", "probe", ProbeText(*in.probe));
    if (a_syn_sent) Evid(out, "A", "state", absl::StrCat("SYN-SENT towards ", target));
    return;
  }
  if (counters_b) out->add_checked(absl::StrCat("B's accept queue is not overflowing (ListenOverflows ", Moved(overflows), ")"));

  // 3. What A's attempt met.
  if (in.probe != nullptr) {
    const v1::ProbeResult& p = *in.probe;
    const auto outcome = p.outcome();
    if (outcome == v1::ProbeResult::OUTCOME_REFUSED || outcome == v1::ProbeResult::OUTCOME_RESET) {
      const int64_t rsts = delta(true, "Tcp", "OutRsts");
      const bool by_b = rsts > 0;
      Verdict(out, kResetSeen,
              by_b ? absl::StrCat("A's connection to ", target, " was reset, and B's TCP sent resets meanwhile (",
                                  "Tcp.OutRsts ", Moved(rsts), "): B's kernel refused it although a listener exists")
                   : absl::StrCat("A's connection to ", target,
                                  " was reset, but B's TCP sent no reset (Tcp.OutRsts +0): a firewall on B or "
                                  "between the hosts answers for it"),
              by_b ? "look at B: the listener's namespace or address, SO_REUSEPORT groups, or a socket filter"
                   : "look for a reject rule (nft/iptables 'reject with tcp reset') on B's input or on the path");
      Evid(out, "A", "probe", ProbeText(p));
      Evid(out, "B", "listener", Ep(serving->local()));
      if (counters_b) Evid(out, "B", "Tcp.OutRsts", Moved(rsts));
      if (!counters_b) out->add_limits("B's counters were not read: who sent the reset cannot be told");
      if (by_b) {
        out->add_limits("Tcp.OutRsts counts every reset B sent in the interval, also to other peers");
      }
      return;
    }
    if (probe_stuck) {
      const IpAddress a_addr = Addr(p.local());
      const v1::Connection* half = nullptr;  // the look that saw the most SYN-ACKs resent
      for (const v1::Connection& c : in.b_syn_recv) {
        if (c.local().port() == in.port && c.remote().port() == p.local().port() && Addr(c.remote()) == a_addr &&
            (half == nullptr || c.timer().retransmits() > half->timer().retransmits())) {
          half = &c;
        }
      }
      if (half != nullptr) {
        Verdict(out, kHandshakeIncomplete,
                absl::StrCat("B got A's SYN and answers it (SYN-RECV), but A never gets the SYN-ACK: the path "
                             "from B back to A drops it"),
                "look at B's output firewall and the route from B to A (asymmetric routing, a stateful filter "
                "that saw only one direction)");
        Evid(out, "A", "probe", ProbeText(p));
        Evid(out, "B", "state", absl::StrCat("SYN-RECV for ", Ep(half->remote())));
        if (half->timer().retransmits() > 0) {
          Evid(out, "B", "timer.retransmits", absl::StrCat(half->timer().retransmits(), " SYN-ACKs resent"));
        }
        const int64_t synack_retrans = delta(true, "TcpExt", "TCPSynRetrans");
        if (synack_retrans > 0) Evid(out, "B", "TcpExt.TCPSynRetrans", Moved(synack_retrans));
        return;
      }
      Verdict(out, kSynUnanswered,
              absl::StrCat("A's SYNs to ", target, " never reach B's TCP: B has no trace of them"),
              "look for a drop on the way: B's input firewall, a firewall or security group between them, a route");
      Evid(out, "A", "probe", ProbeText(p));
      Evid(out, "B", "SYN-RECV", absl::StrCat("none for ", Ep(p.local())));
      Evid(out, "B", "listener accept queue", absl::StrCat(serving->recv_q(), " of ", serving->send_q(), " (not full)"));
      if (counters_b) Evid(out, "B", "TcpExt.ListenDrops", Moved(drops));
      out->add_limits("a drop on the path and a drop in B's own input firewall leave the same trace: none on B");
      return;
    }
    out->add_checked(absl::StrCat("A connected to ", target, " (", ProbeText(p), ")"));
  }

  // 4. What the existing connections say.
  if (const v1::Finding* f = FindCode(in.after, kHalfOpen)) {
    FromFinding(out, *f, "the end that still holds the connection keeps waiting: restart it, or enable keepalives");
    return;
  }
  if (in.probe == nullptr) {
    if (const v1::Finding* f = FindCode(in.after, kHandshakeIncomplete)) {
      FromFinding(out, *f, "look at the path from B back to A: B's output firewall, the route");
      return;
    }
    if (const v1::Finding* f = FindCode(in.after, kSynUnanswered)) {
      FromFinding(out, *f, "look for a drop on the way to B: B's input firewall, a firewall between them");
      out->add_limits("a drop on the path and a drop in B's own input firewall leave the same trace: none on B");
      return;
    }
  }
  // Large segments vanish, small ones pass: the handshake completed, some
  // data arrived, and now the sender retransmits full-size segments while
  // the receiver takes in nothing more.
  if (in.after != nullptr) {
    absl::flat_hash_map<std::pair<uint64_t, uint64_t>, const v1::ConnectionPair*> earlier;
    if (in.before != nullptr) {
      for (const auto& p : in.before->pairs()) earlier[{p.a().cookie(), p.b().cookie()}] = &p;
    }
    for (const auto& p : in.after->pairs()) {
      auto it = earlier.find({p.a().cookie(), p.b().cookie()});
      if (it == earlier.end()) continue;
      for (bool a_sends : {true, false}) {
        const v1::Connection& x1 = a_sends ? p.a() : p.b();
        const v1::Connection& y1 = a_sends ? p.b() : p.a();
        const v1::Connection& x0 = a_sends ? it->second->a() : it->second->b();
        const v1::Connection& y0 = a_sends ? it->second->b() : it->second->a();
        const v1::TcpInfo& xi = x1.tcp_info();
        const v1::TcpInfo& yi = y1.tcp_info();
        const bool retransmitting = xi.total_retrans() > x0.tcp_info().total_retrans() ||
                                    (x1.timer().kind() == v1::Timer::KIND_RETRANSMIT && x1.timer().retransmits() > 0);
        const bool stalled = yi.bytes_received() == y0.tcp_info().bytes_received() && x1.send_q() > 0;
        const bool small_only = yi.rcv_mss() > 0 && yi.rcv_mss() < xi.snd_mss();
        if (!(retransmitting && stalled && small_only && yi.bytes_received() > 0)) continue;
        const std::string sn = a_sends ? "A" : "B", rn = a_sends ? "B" : "A";
        Verdict(out, kMtuBlackhole,
                absl::StrCat(sn, " sends full-size segments (", xi.snd_mss(), " bytes) that never reach ", rn,
                             ", while small ones pass: a path MTU black hole (ICMP 'fragmentation needed' lost or "
                             "blocked)"),
                absl::StrCat("find the link with the smaller MTU between them and let ICMP through, or clamp the MSS "
                             "(or set net.ipv4.tcp_mtu_probing=1 on ", sn, ")"));
        Evid(out, sn, "tcp_info.snd_mss / pmtu", absl::StrCat(xi.snd_mss(), " / ", xi.pmtu()));
        Evid(out, sn, "tcp_info.total_retrans",
             absl::StrCat(x0.tcp_info().total_retrans(), " -> ", xi.total_retrans()));
        Evid(out, sn, "send_q", absl::StrCat(x1.send_q()));
        Evid(out, rn, "tcp_info.bytes_received", absl::StrCat(yi.bytes_received(), " (unchanged)"));
        Evid(out, rn, "tcp_info.rcv_mss", absl::StrCat(yi.rcv_mss(), " (the largest segment it has seen is smaller)"));
        out->add_limits("a filter that drops only large segments looks the same from both ends as an MTU black hole");
        return;
      }
    }
  }
  if (const v1::Finding* f = FindCode(in.after, kReceiverNotReading)) {
    FromFinding(out, *f, "the receiving application is stuck or slow: look at what it is doing (its stack, its "
                         "event loop), not at the network");
    return;
  }
  if (const v1::Finding* f = FindCode(in.after, kCloseNotCalled)) {
    FromFinding(out, *f, "the application that holds CLOSE-WAIT sockets leaks them: it must close() when read() "
                         "returns 0");
    return;
  }

  // 5. Nothing wrong found.
  int established = 0;
  if (in.after != nullptr) {
    for (const auto& p : in.after->pairs()) {
      established += p.a().state() == v1::TCP_STATE_ESTABLISHED && p.b().state() == v1::TCP_STATE_ESTABLISHED;
    }
  }
  if (established > 0) out->add_checked(absl::StrCat(established, " established connection(s) between them, both ends agree"));
  Verdict(out, kReachable,
          absl::StrCat("A can reach ", target, in.probe != nullptr ? ": the probe connected" : "", established > 0 ?
                       absl::StrCat("; ", established, " connection(s) healthy on both ends") : ""),
          "nothing to fix between the hosts; if the application still fails, look above TCP (TLS, the protocol)");
  Evid(out, "B", "listener", Ep(serving->local()));
  if (in.probe != nullptr) Evid(out, "A", "probe", ProbeText(*in.probe));
  if (in.probe == nullptr && established == 0) {
    Evid(out, "A", absl::StrCat("connections to ", target), "none at the moment");
    out->add_limits("no connection attempt was seen: run with --probe to make one");
  }
}

}  // namespace tcbscope
