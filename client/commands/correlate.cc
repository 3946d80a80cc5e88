// tcbscope correlate HOST_A HOST_B [FILTER]: both ends of each connection
// between two hosts, side by side, with what their difference means.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/command.h"
#include "client/host_args.h"
#include "client/pairing.h"
#include "client/large_blocks.h"
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

class CorrelateCommand : public Command {
 public:
  void Setup(CommandFlags* flags) override {
    flags->Option("args", &args_, "HOST_A HOST_B [FILTER]: the two hosts, then an ss filter");
    flags->Flag("-H,--no-header", &no_header_, "print no header line");
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
    if (global.output == OutputFormat::kJson) return RunJson(global, io, hf->hosts, hf->parsed_filter);
    // The table needs findings and a few fields of each end: the snapshots
    // are kept as Tcbs, not messages (common/tcb.h).
    // Their blocks are on huge pages (client/large_blocks.h).
    google::protobuf::Arena tcb_arena(LargeBlockArenaOptions());
    TcbSide a(hf->hosts[0], &tcb_arena), b(hf->hosts[1], &tcb_arena);
    FetchBoth(global, hf->parsed_filter, &a, &b);
    v1::CorrelateResult result;
    const int exit_code = RecordSideErrors(a, b, io, &result);
    if (exit_code == kExitUnreachable) return exit_code;
    PrintTable(a, b, io, &result);
    return result.findings_error() > 0 ? kExitProblem : exit_code;
  }

 private:
  int RunJson(const GlobalOptions& global, const Io& io, const std::vector<HostPort>& hosts, const Filter& filter) {
    // Snapshots and result on one arena (see PairingSide).
    google::protobuf::Arena arena(LargeBlockArenaOptions());
    PairingSide a(hosts[0], &arena), b(hosts[1], &arena);
    FetchBoth(global, &a, &b);
    v1::CorrelateResult& result = *google::protobuf::Arena::CreateMessage<v1::CorrelateResult>(&arena);
    int exit_code = RecordSideErrors(a, b, io, &result);
    if (exit_code == kExitOk) {
      PairSelected(a, b, filter, /*directions=*/true, &result);
      if (result.findings_error() > 0) exit_code = kExitProblem;
    }
    absl::Status s = PrintJsonInPieces(&result, io.out);
    if (!s.ok()) PrintError(io, s.message());
    return exit_code;
  }

  // Pairs, compares and prints; fills result's skew and finding counts.
  void PrintTable(const TcbSide& a, const TcbSide& b, const Io& io, v1::CorrelateResult* r) const {
    std::string out = absl::StrCat("A = ", r->host_a(), "    B = ", r->host_b(), "\n\n");
    fwrite(out.data(), 1, out.size(), io.out);
    out.clear();
    TextTable pairs({{"A Local"}, {"A State"}, {"B State"}, {"B Local"},
                     {"A Send-Q", TextTable::Align::kRight}, {"B Recv-Q", TextTable::Align::kRight},
                     {"B Send-Q", TextTable::Align::kRight}, {"A Recv-Q", TextTable::Align::kRight},
                     {"Findings"}});
    TextTable un({{"Side"}, {"Local"}, {"State"}, {"Peer"}, {"Findings"}});
    pairs.Reserve(std::min(a.tcbs.size(), b.tcbs.size()));  // at most this many pairs
    int pair_count = 0, only_a = 0, only_b = 0;
    PairSelected(
        a, b,
        [&](const Tcb& ta, const Tcb& tb, const Matching::Pair& m, const Findings& findings) {
          ++pair_count;
          pairs.AddRow({FormatEndpoint(ta, ta.local), StateShortName(ta.state), StateShortName(tb.state),
                        FormatEndpoint(tb, tb.local), absl::StrCat(ta.send_q), absl::StrCat(tb.recv_q),
                        absl::StrCat(tb.send_q), absl::StrCat(ta.recv_q), FindingCodes(findings)});
          std::string detail = FindingLines(findings);
          if (m.addresses_translated) {
            detail = absl::StrCat("NAT (paired by initial sequence numbers): A sees ", FormatEndpoint(ta, ta.local),
                                  " -> ", FormatEndpoint(ta, ta.remote), ", B sees ", FormatEndpoint(tb, tb.remote),
                                  " -> ", FormatEndpoint(tb, tb.local), detail.empty() ? "" : "\n\t", detail);
          }
          pairs.AddDetail(detail);
        },
        [&](const Tcb& t, bool on_a, const Findings& findings) {
          ++(on_a ? only_a : only_b);
          un.AddRow({on_a ? "only_a" : "only_b", FormatEndpoint(t, t.local), StateShortName(t.state),
                     FormatEndpoint(t, t.remote), FindingCodes(findings)});
          un.AddDetail(FindingLines(findings));
        },
        r);
    pairs.Print(io.out, !no_header_);
    if (only_a + only_b > 0) {
      out = "\nUnpaired (a TCB whose peer host has no partner for it):\n";
      fwrite(out.data(), 1, out.size(), io.out);
      un.Print(io.out, true);
    }
    out = absl::StrFormat("\n%d pairs, %d only_a, %d only_b; findings: %d error, %d warning, %d info; skew %.1f ms\n",
                          pair_count, only_a, only_b, r->findings_error(), r->findings_warning(),
                          r->findings_info(), r->skew_ms());
    fwrite(out.data(), 1, out.size(), io.out);
  }

  std::vector<std::string> args_;
  bool no_header_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeCorrelateCommand() { return std::make_unique<CorrelateCommand>(); }

}  // namespace tcbscope
