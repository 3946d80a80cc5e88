// tcbscope diagnose HOST_A HOST_B:PORT [--probe]: why can't A reach B:PORT.
// Reads both hosts twice, some time apart (counters, listeners, connections),
// optionally makes A try one connection while B is watched, and gives one
// verdict with the evidence from each host (common/diagnose).
#include <netdb.h>
#include <sys/socket.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/command.h"
#include "client/fan_out.h"
#include "client/pairing.h"
#include "client/large_blocks.h"
#include "client/render/json_output.h"
#include "common/compare.h"
#include "common/diagnose.h"
#include "common/filter.h"

namespace tcbscope {
namespace {

// The probe's own connection is the tool's doing, not the hosts': whatever
// its TCBs look like afterwards (B's application may never accept it) is not
// evidence.
void DropProbe(const v1::Endpoint& local, v1::CorrelateResult* r) {
  auto is_probe = [&](const v1::Endpoint& e) { return e.port() == local.port() && e.address() == local.address(); };
  auto* pairs = r->mutable_pairs();
  for (int i = pairs->size() - 1; i >= 0; --i) {
    if (is_probe(pairs->Get(i).a().local()) || is_probe(pairs->Get(i).b().remote())) pairs->DeleteSubrange(i, 1);
  }
  for (auto* list : {r->mutable_only_a(), r->mutable_only_b()}) {
    for (int i = list->size() - 1; i >= 0; --i) {
      const v1::Connection& c = list->Get(i).connection();
      if (is_probe(c.local()) || is_probe(c.remote())) list->DeleteSubrange(i, 1);
    }
  }
}

// The address A will connect to: B's host as given, resolved once.
absl::StatusOr<IpAddress> Resolve(const std::string& host) {
  absl::StatusOr<IpAddress> literal = IpAddress::Parse(host);
  if (literal.ok()) return literal;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("'", host, "': cannot resolve the name"));
  }
  char buf[NI_MAXHOST] = {};
  getnameinfo(res->ai_addr, res->ai_addrlen, buf, sizeof(buf), nullptr, 0, NI_NUMERICHOST);
  freeaddrinfo(res);
  return IpAddress::Parse(buf);
}

class DiagnoseCommand : public Command {
 public:
  void Setup(CommandFlags* flags) override {
    flags->Option("host_a", &host_a_, "HOST_A: the host that cannot connect (its agent)", CommandFlags::kRequired);
    flags->Option("target", &target_, "HOST_B:PORT: the host and port it should reach", CommandFlags::kRequired);
    flags->Flag("--probe", &probe_, "make A try one connection while B is watched (A's agent needs --allow-probe)");
    flags->Option("--wait", &wait_text_, "time between the two looks at both hosts", CommandFlags::kShowDefault);
    flags->Option("--probe-timeout", &probe_timeout_text_, "how long A's attempt may take", CommandFlags::kShowDefault);
    flags->Option("--agent-port-b", &agent_port_b_, "port of B's agent", CommandFlags::kShowDefault);
  }

  int Run(const GlobalOptions& global, const Io& io) override {
    absl::StatusOr<HostPort> a_host = ParseHostPort(host_a_, kDefaultAgentPort);
    if (!a_host.ok()) {
      PrintError(io, absl::StrCat("HOST_A: ", a_host.status().message()));
      return kExitUsage;
    }
    absl::StatusOr<HostPort> target = ParseHostPort(target_, 0);
    if (!target.ok() || target->port == 0) {
      PrintError(io, absl::StrCat("HOST_B:PORT: ", target.ok() ? "give the port A should reach, e.g. db1:5432"
                                                              : target.status().message()));
      return kExitUsage;
    }
    absl::Duration wait, probe_timeout;
    if (!absl::ParseDuration(wait_text_, &wait) || wait < absl::ZeroDuration() || wait > absl::Minutes(5)) {
      PrintError(io, absl::StrCat("--wait: '", wait_text_, "' is not a duration up to 5m"));
      return kExitUsage;
    }
    if (!absl::ParseDuration(probe_timeout_text_, &probe_timeout) || probe_timeout <= absl::ZeroDuration() ||
        probe_timeout > absl::Seconds(30)) {
      PrintError(io, absl::StrCat("--probe-timeout: '", probe_timeout_text_, "' is not a duration up to 30s"));
      return kExitUsage;
    }
    // A host named in the configuration file is reached at its address.
    std::string b_address = target->host;
    if (global.client.config != nullptr) {
      if (auto it = global.client.config->hosts.find(b_address); it != global.client.config->hosts.end()) {
        b_address = it->second.address.host;
      }
    }
    absl::StatusOr<IpAddress> target_addr = Resolve(b_address);
    if (!target_addr.ok()) {
      PrintError(io, absl::StrCat("HOST_B: ", target_addr.status().message()));
      return kExitUsage;
    }
    const uint16_t port = target->port;

    v1::DiagnoseResult result;
    google::protobuf::Arena arena(LargeBlockArenaOptions());  // both looks' snapshots (see PairingSide)
    PairingSide a(*a_host, &arena), b(HostPort{target->host, agent_port_b_}, &arena);
    result.set_host_a(a.host.ToString());
    result.set_host_b(b.host.ToString());
    result.set_target(HostPort{target_addr->ToString(), port}.ToString());

    v1::Counters ca0, ca1, cb0, cb1;
    absl::Status counters_a = absl::OkStatus(), counters_b = absl::OkStatus();
    auto read_counters = [&](v1::Counters* ta, v1::Counters* tb) {
      PairingSide* sides[2] = {&a, &b};
      v1::Counters* outs[2] = {ta, tb};
      absl::Status* st[2] = {&counters_a, &counters_b};
      ForEachConcurrently(2, [&](size_t i) {
        absl::StatusOr<std::unique_ptr<AgentClient>> c = AgentClient::Create(sides[i]->host, global.client);
        if (c.ok()) {
          absl::Status s = (*c)->GetCounters(outs[i]);
          if (!s.ok()) *st[i] = s;
        }
      });
    };
    const std::string filter_text = absl::StrCat("sport = :", port, " or dport = :", port);
    absl::StatusOr<Filter> filter = Filter::Parse(filter_text);

    // First look.
    read_counters(&ca0, &cb0);
    FetchBoth(global, &a, &b);
    v1::CorrelateResult before;
    if (int rc = RecordSideErrors(a, b, io, &before); rc != kExitOk) return Fail(rc, before, global, io, &result);
    PairSelected(a, b, *filter, /*directions=*/true, &before);

    // A's attempt, with B looked at while it runs; or just time.
    std::vector<v1::Connection> syn_recv;
    v1::ProbeResult probe;
    bool probed = false;
    if (probe_) {
      absl::StatusOr<std::unique_ptr<AgentClient>> client_a = AgentClient::Create(a.host, global.client);
      absl::StatusOr<std::unique_ptr<AgentClient>> client_b = AgentClient::Create(b.host, global.client);
      if (!client_a.ok() || !client_b.ok()) {
        PrintError(io, (client_a.ok() ? client_b : client_a).status().message());
        return kExitUsage;
      }
      v1::ProbeRequest req;
      req.mutable_target()->set_address(target_addr->ToString());
      req.mutable_target()->set_port(port);
      req.set_timeout_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(probe_timeout)));
      absl::Status probe_status;
      std::atomic<bool> done{false};
      std::thread t([&] {
        probe_status = (*client_a)->Probe(req, &probe);
        done = true;
      });
      v1::ListConnectionsRequest look;
      look.set_filter(absl::StrCat("state syn-recv sport = :", port));
      while (!done) {
        v1::HostConnections hc;
        if ((*client_b)->ListConnections(look, &hc).ok()) {
          for (auto& c : *hc.mutable_connections()) syn_recv.push_back(std::move(c));
        }
        absl::SleepFor(absl::Milliseconds(250));
      }
      t.join();
      if (!probe_status.ok()) {
        PrintError(io, absl::StrCat(a.host.ToString(), ": probe: ", probe_status.message()));
        return absl::IsUnavailable(probe_status) || absl::IsDeadlineExceeded(probe_status) ? kExitUnreachable
                                                                                           : kExitUsage;
      }
      probed = true;
      *result.mutable_probe() = probe;
    } else {
      absl::SleepFor(wait);
    }

    // Second look.
    read_counters(&ca1, &cb1);
    FetchBoth(global, &a, &b);
    v1::CorrelateResult after;
    if (int rc = RecordSideErrors(a, b, io, &after); rc != kExitOk) return Fail(rc, after, global, io, &result);
    DiagnoseInput in;
    in.target = *target_addr;
    in.port = port;
    PairingSide& bb = SameAgent(a, b) ? a : b;
    for (const v1::Connection& c : bb.conns->connections()) {
      if (c.local().port() != port) continue;
      if (c.state() == v1::TCP_STATE_LISTEN) in.b_listeners.push_back(c);
      if (c.state() == v1::TCP_STATE_SYN_RECV) in.b_syn_recv.push_back(c);
    }
    for (auto& c : syn_recv) in.b_syn_recv.push_back(std::move(c));
    PairSelected(a, b, *filter, /*directions=*/true, &after);
    if (probed) DropProbe(probe.local(), &after);
    if (counters_a.ok()) {
      in.a_before = &ca0;
      in.a_after = &ca1;
    }
    if (counters_b.ok()) {
      in.b_before = &cb0;
      in.b_after = &cb1;
    }
    in.before = &before;
    in.after = &after;
    in.probe = probed ? &probe : nullptr;
    Diagnose(in, &result);
    if (!counters_b.ok()) result.add_limits(absl::StrCat("B's counters could not be read: ", counters_b.message()));

    const int exit_code = result.verdict() == kReachable ? kExitOk : kExitProblem;
    if (global.output == OutputFormat::kJson) {
      absl::Status s = PrintJson(result, io.out);
      if (!s.ok()) PrintError(io, s.message());
      return exit_code;
    }
    std::string out = absl::StrCat(result.verdict(), ": ", result.summary(), "\n");
    absl::StrAppend(&out, "next step: ", result.next_step(), "\n\nA = ", result.host_a(), "    B = ", result.host_b(),
                    "    target = ", result.target(), "\n\nevidence:\n");
    for (const auto& e : result.evidence()) absl::StrAppend(&out, "  ", e.host(), "  ", e.field(), " = ", e.value(), "\n");
    if (!result.checked().empty()) {
      absl::StrAppend(&out, "\nchecked and fine:\n");
      for (const auto& c : result.checked()) absl::StrAppend(&out, "  ", c, "\n");
    }
    if (!result.limits().empty()) {
      absl::StrAppend(&out, "\ncannot tell apart:\n");
      for (const auto& l : result.limits()) absl::StrAppend(&out, "  ", l, "\n");
    }
    fwrite(out.data(), 1, out.size(), io.out);
    return exit_code;
  }

 private:
  int Fail(int rc, const v1::CorrelateResult& r, const GlobalOptions& global, const Io& io, v1::DiagnoseResult* result) {
    if (r.has_error_a()) *result->mutable_error_a() = r.error_a();
    if (r.has_error_b()) *result->mutable_error_b() = r.error_b();
    if (global.output == OutputFormat::kJson) {
      absl::Status s = PrintJson(*result, io.out);
      if (!s.ok()) PrintError(io, s.message());
    }
    return rc;
  }

  std::string host_a_, target_;
  bool probe_ = false;
  std::string wait_text_ = "2s";
  std::string probe_timeout_text_ = "3s";
  uint16_t agent_port_b_ = kDefaultAgentPort;
};

}  // namespace

std::unique_ptr<Command> MakeDiagnoseCommand() { return std::make_unique<DiagnoseCommand>(); }

}  // namespace tcbscope
