// tcbscope correlate HOST_A HOST_B [FILTER]: both ends of each connection
// between two hosts, side by side, with what their difference means.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/command.h"
#include "client/host_args.h"
#include "client/pairing.h"
#include "client/prefaulted.h"
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
    // Snapshots and result on one arena (see PairingSide).
    google::protobuf::Arena arena(PrefaultedArenaOptions());
    PairingSide a(hf->hosts[0], &arena), b(hf->hosts[1], &arena);
    FetchBoth(global, &a, &b);
    v1::CorrelateResult& result = *google::protobuf::Arena::CreateMessage<v1::CorrelateResult>(&arena);
    int exit_code = RecordSideErrors(a, b, io, &result);
    if (exit_code == kExitOk) {
      // The table shows findings and queues; only JSON has the directions.
      PairSelected(a, b, hf->parsed_filter, global.output == OutputFormat::kJson, &result);
      if (result.findings_error() > 0) exit_code = kExitProblem;
    }
    if (global.output == OutputFormat::kJson) {
      absl::Status s = PrintJsonInPieces(&result, io.out);
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
      std::string detail = FindingLines(p.findings());
      if (p.addresses_translated()) {
        detail = absl::StrCat("NAT (paired by initial sequence numbers): A sees ", FormatEndpoint(p.a(), p.a().local()),
                              " -> ", FormatEndpoint(p.a(), p.a().remote()), ", B sees ",
                              FormatEndpoint(p.b(), p.b().remote()), " -> ", FormatEndpoint(p.b(), p.b().local()),
                              detail.empty() ? "" : "\n\t", detail);
      }
      pairs.AddDetail(detail);
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
