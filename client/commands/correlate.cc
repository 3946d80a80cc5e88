// tcbscope correlate HOST_A HOST_B [FILTER]: both ends of each connection
// between two hosts, side by side, with what their difference means.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/command.h"
#include "client/fan_out.h"
#include "client/host_args.h"
#include "client/render/connection_text.h"
#include "client/render/json_output.h"
#include "client/render/text_table.h"
#include "common/compare.h"
#include "common/correlate.h"
#include "common/filter.h"
#include "common/proto_time.h"
#include "common/tcp_state.h"

namespace tcbscope {
namespace {

const char* SeverityName(v1::Severity s) {
  switch (s) {
    case v1::SEVERITY_ERROR: return "error";
    case v1::SEVERITY_WARNING: return "warning";
    case v1::SEVERITY_INFO: return "info";
    default: return "?";
  }
}

// Each finding's severity, code and meaning, then its evidence, one per line
// (printed under the row the findings belong to).
std::string FindingLines(const google::protobuf::RepeatedPtrField<v1::Finding>& findings) {
  std::string out;
  for (const auto& f : findings) {
    absl::StrAppend(&out, out.empty() ? "" : "\n\t", SeverityName(f.severity()), " ", f.code(), ": ", f.meaning());
    for (const auto& e : f.evidence()) absl::StrAppend(&out, "\n\t    ", e.host(), " ", e.field(), " = ", e.value());
  }
  return out;
}

// The codes, comma-separated, or "-".
std::string FindingCodes(const google::protobuf::RepeatedPtrField<v1::Finding>& findings) {
  std::string codes;
  for (const auto& f : findings) absl::StrAppend(&codes, codes.empty() ? "" : ",", f.code());
  return codes.empty() ? "-" : codes;
}

// What one host contributes: its info and an unfiltered snapshot.
struct Side {
  HostPort host;
  v1::HostInfo info;
  v1::HostConnections conns;
  absl::Status status;
};

void Fetch(const GlobalOptions& global, Side* side) {
  absl::StatusOr<std::unique_ptr<AgentClient>> client = AgentClient::Create(side->host, global.client);
  if (!client.ok()) {
    side->status = client.status();
    return;
  }
  side->status = (*client)->GetHostInfo(&side->info);
  if (!side->status.ok()) return;
  v1::ListConnectionsRequest req;
  req.set_all(true);
  req.set_tcp_info(true);
  side->status = (*client)->ListConnections(req, &side->conns);
}

bool Selected(const Filter& f, StateMask states, const v1::Connection& c) {
  return (states & StateBit(c.state())) && f.Matches(c);
}

class CorrelateCommand : public Command {
 public:
  void Setup(CLI::App* sub) override {
    sub->add_option("args", args_, "HOST_A HOST_B [FILTER]: the two hosts, then an ss filter");
    sub->add_flag("-H,--no-header", no_header_, "print no header line");
    sub->positionals_at_end(false);
  }

  int Run(const GlobalOptions& global, const Io& io) override {
    absl::StatusOr<HostsAndFilter> hf = SplitHostsAndFilter(args_);
    if (!hf.ok()) {
      PrintError(io, hf.status().message());
      return kExitUsage;
    }
    if (hf->hosts.size() != 2) {
      PrintError(io, absl::StrCat("correlate takes exactly two hosts (HOST_A HOST_B), got ", hf->hosts.size()));
      return kExitUsage;
    }
    const Filter* filter = &hf->parsed_filter;
    const StateMask states = filter->States(kAllStates);

    Side a{hf->hosts[0], {}, {}, {}}, b{hf->hosts[1], {}, {}, {}};
    const bool one_agent = a.host.host == b.host.host && a.host.port == b.host.port;
    if (one_agent) {
      Fetch(global, &a);  // one snapshot serves both roles: no skew, no double count
    } else {
      Side* sides[2] = {&a, &b};
      ForEachConcurrently(2, [&](size_t i) { Fetch(global, sides[i]); });
    }

    v1::CorrelateResult result;
    result.set_host_a(a.host.ToString());
    result.set_host_b(b.host.ToString());
    int exit_code = kExitOk;
    for (auto [side, err] : {std::pair<Side*, v1::HostError*>{&a, result.mutable_error_a()},
                             {&b, result.mutable_error_b()}}) {
      if (one_agent && side == &b) break;
      if (side->status.ok()) continue;
      SetHostError(side->status, err);
      PrintError(io, absl::StrCat(side->host.ToString(), ": ", side->status.message()));
      exit_code = kExitUnreachable;
    }
    if (one_agent && !a.status.ok()) *result.mutable_error_b() = result.error_a();
    if (!result.has_error_a()) result.clear_error_a();
    if (!result.has_error_b()) result.clear_error_b();
    if (exit_code == kExitOk) {
      Side& bb = one_agent ? a : b;
      HostSnapshot sa{a.host.ToString(), &a.info, a.conns.mutable_connections(), FromTimestamp(a.conns.captured_at()),
                      a.host.port};
      HostSnapshot sb{bb.host.ToString(), &bb.info, bb.conns.mutable_connections(), FromTimestamp(bb.conns.captured_at()),
                      bb.host.port};
      v1::CorrelateResult all;
      Correlate(sa, sb, &all);
      // The filter selects pairs by either end, unpaired TCBs by themselves.
      result.set_skew_ms(all.skew_ms());
      for (auto& p : *all.mutable_pairs()) {
        if (Selected(*filter, states, p.a()) || Selected(*filter, states, p.b())) result.add_pairs()->Swap(&p);
      }
      for (auto& u : *all.mutable_only_a()) {
        if (Selected(*filter, states, u.connection())) result.add_only_a()->Swap(&u);
      }
      for (auto& u : *all.mutable_only_b()) {
        if (Selected(*filter, states, u.connection())) result.add_only_b()->Swap(&u);
      }
      CompareContext ctx;
      ctx.skew_ms = result.skew_ms();
      CompareAll(ctx, &result);
      if (result.findings_error() > 0) exit_code = kExitProblem;
    }
    if (global.output == OutputFormat::kJson) {
      absl::Status s = PrintJson(result, io.out);
      if (!s.ok()) PrintError(io, s.message());
      return exit_code;
    }
    if (exit_code != kExitUnreachable) PrintTable(result, io);
    return exit_code;
  }

 private:
  void PrintTable(const v1::CorrelateResult& r, const Io& io) const {
    std::string out = absl::StrCat("A = ", r.host_a(), "    B = ", r.host_b(), "\n\n");
    fwrite(out.data(), 1, out.size(), io.out);
    out.clear();
    TextTable pairs({{"A Local"}, {"A State"}, {"B State"}, {"B Local"},
                     {"A Send-Q", TextTable::Align::kRight}, {"B Recv-Q", TextTable::Align::kRight},
                     {"B Send-Q", TextTable::Align::kRight}, {"A Recv-Q", TextTable::Align::kRight},
                     {"Findings"}});
    for (const v1::ConnectionPair& p : r.pairs()) {
      pairs.AddRow({FormatEndpoint(p.a(), p.a().local()), StateShortName(p.a().state()),
                    StateShortName(p.b().state()), FormatEndpoint(p.b(), p.b().local()),
                    absl::StrCat(p.a().send_q()), absl::StrCat(p.b().recv_q()), absl::StrCat(p.b().send_q()),
                    absl::StrCat(p.a().recv_q()), FindingCodes(p.findings())});
      pairs.AddDetail(FindingLines(p.findings()));
    }
    pairs.Print(io.out, !no_header_);
    if (r.only_a_size() + r.only_b_size() > 0) {
      out = "\nUnpaired (a TCB whose peer host has no partner for it):\n";
      fwrite(out.data(), 1, out.size(), io.out);
      TextTable un({{"Side"}, {"Local"}, {"State"}, {"Peer"}, {"Findings"}});
      auto add = [&](const v1::UnpairedConnection& u, const char* side) {
        un.AddRow({side, FormatEndpoint(u.connection(), u.connection().local()),
                   StateShortName(u.connection().state()), FormatEndpoint(u.connection(), u.connection().remote()),
                   FindingCodes(u.findings())});
        un.AddDetail(FindingLines(u.findings()));
      };
      for (const auto& u : r.only_a()) add(u, "only_a");
      for (const auto& u : r.only_b()) add(u, "only_b");
      un.Print(io.out, true);
    }
    out = absl::StrFormat("\n%d pairs, %d only_a, %d only_b; findings: %d error, %d warning, %d info; skew %.1f ms\n",
                          r.pairs_size(), r.only_a_size(), r.only_b_size(), r.findings_error(), r.findings_warning(),
                          r.findings_info(), r.skew_ms());
    fwrite(out.data(), 1, out.size(), io.out);
  }

  std::vector<std::string> args_;
  bool no_header_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeCorrelateCommand() { return std::make_unique<CorrelateCommand>(); }

}  // namespace tcbscope
