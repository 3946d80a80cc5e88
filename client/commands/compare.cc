// tcbscope compare HOST_A HOST_B FILTER [--samples N --interval D] [--svg F]:
// every field of both TCBs of each selected pair, side by side, with how the
// two relate; over several samples, how they moved; a picture of both ends'
// sequence space on request.
#include <fstream>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "client/command.h"
#include "client/host_args.h"
#include "client/pairing.h"
#include "client/large_blocks.h"
#include "client/render/connection_text.h"
#include "client/render/json_output.h"
#include "client/render/seq_svg.h"
#include "client/render/text_table.h"
#include "common/compare.h"
#include "common/proto_time.h"
#include "common/seq_space.h"
#include "common/tcp_state.h"

namespace tcbscope {
namespace {

constexpr int kMaxSamples = 1000;

// One line of the side-by-side table.
struct Row {
  std::string field, a, b, relation;
  bool disagree = false;
};

std::string Options(const v1::TcpInfo& t) {
  std::string s = absl::StrCat(t.opt_wscale() ? "wscale " : "", t.opt_sack() ? "sack " : "",
                               t.opt_timestamps() ? "ts " : "", t.opt_ecn() ? "ecn " : "");
  if (!s.empty()) s.pop_back();
  return s.empty() ? "none" : s;
}

std::string TimerText(const v1::Connection& c) {
  if (!c.has_timer() || c.timer().kind() == v1::Timer::KIND_NONE) return "off";
  static const char* kNames[] = {"off", "retransmit", "keepalive", "time-wait", "persist", "delayed-ack"};
  const int k = c.timer().kind();
  return absl::StrCat(k >= 0 && k < 6 ? kNames[k] : "?", " in ", c.timer().expires_ms(), "ms, ",
                      c.timer().retransmits(), " fired");
}

std::vector<std::pair<std::string, std::vector<Row>>> Rows(const v1::ConnectionPair& p) {
  const v1::Connection& a = p.a();
  const v1::Connection& b = p.b();
  std::vector<std::pair<std::string, std::vector<Row>>> groups;
  auto eq = [](const std::string& x, const std::string& y) { return x == y ? "=" : "differ"; };

  std::vector<Row> id;
  const std::string al = FormatEndpoint(a, a.local()), ar = FormatEndpoint(a, a.remote());
  const std::string bl = FormatEndpoint(b, b.local()), br = FormatEndpoint(b, b.remote());
  id.push_back({"this end (A.local | B.remote)", al, br, al == br ? "=" : "differ: translated", al != br});
  id.push_back({"other end (A.remote | B.local)", ar, bl, ar == bl ? "=" : "differ: translated", ar != bl});
  id.push_back({"cookie", absl::StrCat(a.cookie()), absl::StrCat(b.cookie()), "", false});
  if (a.owners_size() + b.owners_size() > 0) id.push_back({"owner", FormatOwners(a), FormatOwners(b), "", false});
  id.push_back({"matched by", p.matched_by(), p.matched_by(), p.passive_side().empty() ? "" :
                absl::StrCat(p.passive_side(), " opened passively"), false});
  groups.emplace_back("identity", std::move(id));

  std::vector<Row> st;
  st.push_back({"state", StateShortName(a.state()), StateShortName(b.state()), "", false});
  st.push_back({"timer", TimerText(a), TimerText(b), "", false});
  st.push_back({"shutdown", absl::StrCat(a.shutdown()), absl::StrCat(b.shutdown()), "", false});
  groups.emplace_back("state and timers", std::move(st));

  for (bool a_sends : {true, false}) {
    const v1::Connection& s = a_sends ? a : b;
    const v1::Connection& r = a_sends ? b : a;
    const char* sn = a_sends ? "A" : "B";
    const char* rn = a_sends ? "B" : "A";
    std::vector<Row> q;
    // Each row names the sender's field then the receiver's; the columns stay
    // A | B, so the cells swap for B -> A.
    // Rows name the sender's field and the receiver's; labels and cells
    // follow the A | B columns, so for B -> A the receiver's comes first.
    auto row = [&](const std::string& sf, const std::string& rf, const std::string& sv, const std::string& rv,
                   const std::string& rel, bool bad) {
      const std::string label =
          a_sends ? absl::StrCat(sn, ".", sf, " | ", rn, ".", rf) : absl::StrCat(rn, ".", rf, " | ", sn, ".", sf);
      q.push_back({label, a_sends ? sv : rv, a_sends ? rv : sv, rel, bad});
    };
    if (s.has_seq() && r.has_seq()) {
      const v1::SequenceSpace& x = s.seq();
      const v1::SequenceSpace& y = r.seq();
      const bool inside = SeqBetween(x.snd_una(), y.rcv_nxt(), x.snd_nxt());
      row("snd_una", "rcv_nxt", absl::StrCat(x.snd_una()), absl::StrCat(y.rcv_nxt()),
          absl::StrCat(SeqDiff(y.rcv_nxt(), x.snd_una()), " bytes acknowledged in flight"),
          SeqBefore(y.rcv_nxt(), x.snd_una()));
      row("snd_nxt", "rcv_nxt", absl::StrCat(x.snd_nxt()), absl::StrCat(y.rcv_nxt()),
          inside ? absl::StrCat(SeqDiff(x.snd_nxt(), y.rcv_nxt()), " bytes in flight")
                 : "rcv_nxt outside snd_una..snd_nxt",
          !inside);
      row("write_seq", "copied_seq", absl::StrCat(x.write_seq()),
          absl::StrCat(y.copied_seq()),
          absl::StrCat(SeqDiff(x.write_seq(), x.snd_nxt()), " unsent, ", SeqDiff(y.rcv_nxt(), y.copied_seq()),
                       " unread"),
          false);
      row("snd_wnd", "rcv_wnd", absl::StrCat(x.snd_wnd()), absl::StrCat(y.rcv_wnd()),
          eq(absl::StrCat(x.snd_wnd()), absl::StrCat(y.rcv_wnd())), false);
      row("bytes_acked", "bytes_received", absl::StrCat(x.bytes_acked()),
          absl::StrCat(y.bytes_received()), "", false);
      if (auto is = InitialSequenceOf(s), ir = InitialSequenceOf(r); is && ir) {
        const bool match = is->IssMatches(ir->irs);
        row("ISS", "IRS",
            absl::StrCat(ir->irs == is->iss_if_active ? is->iss_if_active : is->iss_if_passive),
            absl::StrCat(ir->irs), match ? "=" : "differ", !match);
      }
    } else {
      q.push_back({"sequence numbers", "-", "-", "none (an agent without BPF iter/tcp)", false});
    }
    row("send_q", "recv_q", absl::StrCat(s.send_q()), absl::StrCat(r.recv_q()), "",
        false);
    groups.emplace_back(absl::StrCat("sequence space ", sn, " -> ", rn), std::move(q));
  }

  if (a.has_tcp_info() && b.has_tcp_info()) {
    const v1::TcpInfo& x = a.tcp_info();
    const v1::TcpInfo& y = b.tcp_info();
    std::vector<Row> o;
    o.push_back({"options", Options(x), Options(y), eq(Options(x), Options(y)), Options(x) != Options(y)});
    const bool ws_ok = !x.opt_wscale() || (x.snd_wscale() == y.rcv_wscale() && x.rcv_wscale() == y.snd_wscale());
    o.push_back({"wscale snd/rcv", absl::StrCat(x.snd_wscale(), "/", x.rcv_wscale()),
                 absl::StrCat(y.snd_wscale(), "/", y.rcv_wscale()), ws_ok ? "crosswise equal" : "differ", !ws_ok});
    o.push_back({"snd_mss | peer advmss", absl::StrCat(x.snd_mss(), " | ", x.advmss()),
                 absl::StrCat(y.snd_mss(), " | ", y.advmss()),
                 x.snd_mss() <= y.advmss() && y.snd_mss() <= x.advmss() ? "each within the other's advmss"
                                                                         : "an MSS above the peer's advmss",
                 !(x.snd_mss() <= y.advmss() && y.snd_mss() <= x.advmss())});
    o.push_back({"pmtu", absl::StrCat(x.pmtu()), absl::StrCat(y.pmtu()), "", false});
    groups.emplace_back("options", std::move(o));

    std::vector<Row> c;
    c.push_back({"congestion", a.congestion(), b.congestion(), "", false});
    c.push_back({"cwnd | ssthresh", absl::StrCat(x.snd_cwnd(), " | ", x.snd_ssthresh()),
                 absl::StrCat(y.snd_cwnd(), " | ", y.snd_ssthresh()), "", false});
    c.push_back({"rtt (us)", absl::StrCat(x.rtt_us()), absl::StrCat(y.rtt_us()), "", false});
    c.push_back({"ca_state", absl::StrCat(x.ca_state()), absl::StrCat(y.ca_state()), "", false});
    groups.emplace_back("congestion", std::move(c));

    std::vector<Row> n;
    n.push_back({"bytes_sent | retrans", absl::StrCat(x.bytes_sent(), " | ", x.bytes_retrans()),
                 absl::StrCat(y.bytes_sent(), " | ", y.bytes_retrans()), "", false});
    n.push_back({"segs_out | segs_in", absl::StrCat(x.segs_out(), " | ", x.segs_in()),
                 absl::StrCat(y.segs_out(), " | ", y.segs_in()), "", false});
    n.push_back({"total_retrans | lost", absl::StrCat(x.total_retrans(), " | ", x.lost()),
                 absl::StrCat(y.total_retrans(), " | ", y.lost()), "", false});
    groups.emplace_back("counters", std::move(n));
  }
  return groups;
}

class CompareCommand : public Command {
 public:
  void Setup(CommandFlags* flags) override {
    flags->Option("args", &args_, "HOST_A HOST_B FILTER: the two hosts, then an ss filter selecting the connections");
    flags->Option("--samples", &samples_, "take this many samples of each pair", CommandFlags::kShowDefault);
    flags->Option("--interval", &interval_text_, "time between samples", CommandFlags::kShowDefault);
    flags->Option("--svg", &svg_path_, "draw both ends' sequence space into this SVG file");
  }

  int Run(const GlobalOptions& global, const Io& io) override {
    absl::StatusOr<HostsAndFilter> hf = SplitHostsAndFilter(args_);
    if (!hf.ok()) {
      PrintError(io, hf.status().message());
      return kExitUsage;
    }
    if (hf->hosts.size() != 2) {
      PrintError(io, absl::StrCat("compare takes exactly two hosts (HOST_A HOST_B), got ", hf->hosts.size()));
      return kExitUsage;
    }
    if (hf->filter.empty()) {
      PrintError(io, "compare needs a FILTER selecting the connections to compare (e.g. dport = :443)");
      return kExitUsage;
    }
    if (samples_ < 1 || samples_ > kMaxSamples) {
      PrintError(io, absl::StrCat("--samples must be from 1 to ", kMaxSamples));
      return kExitUsage;
    }
    absl::Duration interval;
    if (!absl::ParseDuration(interval_text_, &interval) || interval < absl::ZeroDuration() ||
        interval > absl::Hours(1)) {
      PrintError(io, absl::StrCat("--interval: '", interval_text_, "' is not a duration up to 1h (e.g. 200ms)"));
      return kExitUsage;
    }

    v1::CompareResult result;
    result.set_samples(static_cast<uint32_t>(samples_));
    result.set_interval_ms(absl::ToDoubleMilliseconds(interval));
    // Pairs are followed across samples by both ends' cookies.
    absl::flat_hash_map<std::pair<uint64_t, uint64_t>, int> index;
    google::protobuf::Arena first;
    PairingSide a(hf->hosts[0], &first), b(hf->hosts[1], &first);
    int exit_code = kExitOk;
    for (int k = 0; k < samples_; ++k) {
      if (k > 0) absl::SleepFor(interval);
      // Each sample's snapshots are freed once its selected pairs are kept.
      google::protobuf::Arena sample(LargeBlockArenaOptions());
      a.UseArena(&sample);
      b.UseArena(&sample);
      FetchBoth(global, &a, &b);
      v1::CorrelateResult r;
      exit_code = RecordSideErrors(a, b, io, &r);
      result.set_host_a(r.host_a());
      result.set_host_b(r.host_b());
      if (exit_code != kExitOk) {
        *result.mutable_error_a() = r.error_a();
        *result.mutable_error_b() = r.error_b();
        break;
      }
      PairSelected(a, b, hf->parsed_filter, /*directions=*/true, &r);
      for (v1::ConnectionPair& p : *r.mutable_pairs()) {
        auto key = std::make_pair(p.a().cookie(), p.b().cookie());
        auto [it, fresh] = index.emplace(key, result.pairs_size());
        if (fresh) result.add_pairs();
        result.mutable_pairs(it->second)->add_samples()->Swap(&p);
      }
    }
    if (exit_code == kExitOk) {
      for (const auto* side : {&a, &b}) {
        if (side->info.capabilities().seq_source() != v1::Capabilities::SEQ_SOURCE_BPF) {
          std::string why = absl::StrCat(side->host.ToString(), ": no sequence numbers");
          for (const std::string& n : side->info.capabilities().notes()) {
            if (n.rfind("sequence numbers", 0) == 0) why = absl::StrCat(side->host.ToString(), ": ", n);
          }
          result.add_notes(why);
        }
        if (SameAgent(a, b)) break;
      }
      CompareContext ctx;
      for (v1::PairSamples& ps : *result.mutable_pairs()) {
        std::vector<const v1::ConnectionPair*> samples;
        for (const auto& p : ps.samples()) samples.push_back(&p);
        CompareSamples(ctx, samples, ps.mutable_findings());
        bool error = false;
        for (const auto& f : ps.findings()) error |= f.severity() == v1::SEVERITY_ERROR;
        for (const auto& f : ps.samples(ps.samples_size() - 1).findings()) error |= f.severity() == v1::SEVERITY_ERROR;
        if (error) exit_code = kExitProblem;
      }
      if (!svg_path_.empty()) {
        std::ofstream out(svg_path_, std::ios::binary | std::ios::trunc);
        out << SequenceSvg(result);
        if (!out.good()) {
          PrintError(io, absl::StrCat("--svg ", svg_path_, ": cannot write"));
          return kExitUsage;
        }
      }
    }
    if (global.output == OutputFormat::kJson) {
      absl::Status s = PrintJsonInPieces(&result, io.out);
      if (!s.ok()) PrintError(io, s.message());
      return exit_code;
    }
    if (exit_code != kExitUnreachable) PrintText(result, io);
    return exit_code;
  }

 private:
  void PrintText(const v1::CompareResult& r, const Io& io) const {
    std::string out = absl::StrCat("A = ", r.host_a(), "    B = ", r.host_b(), "\n");
    for (const std::string& n : r.notes()) absl::StrAppend(&out, "note: ", n, "\n");
    if (r.pairs().empty()) absl::StrAppend(&out, "\nno connection between them matches the filter\n");
    fwrite(out.data(), 1, out.size(), io.out);
    for (const v1::PairSamples& ps : r.pairs()) {
      const v1::ConnectionPair& p = ps.samples(ps.samples_size() - 1);
      out = absl::StrCat("\nA ", FormatEndpoint(p.a(), p.a().local()), " ", StateShortName(p.a().state()),
                         "  <->  B ", FormatEndpoint(p.b(), p.b().local()), " ", StateShortName(p.b().state()),
                         ps.samples_size() > 1 ? absl::StrCat("   (latest of ", ps.samples_size(), " samples)") : "",
                         "\n");
      fwrite(out.data(), 1, out.size(), io.out);
      TextTable t({{"  field"}, {"A"}, {"B"}, {"relation"}});
      for (const auto& [group, rows] : Rows(p)) {
        t.AddRow({group, "", "", ""});
        for (const Row& row : rows) t.AddRow({absl::StrCat(row.disagree ? "! " : "  ", row.field), row.a, row.b,
                                              row.relation});
      }
      t.Print(io.out, true);
      if (ps.samples_size() > 1) PrintSamples(ps, io);
      std::string findings = FindingLines(p.findings());
      const std::string across = FindingLines(ps.findings());
      if (!across.empty()) absl::StrAppend(&findings, findings.empty() ? "" : "\n\t", across);
      out = findings.empty() ? "findings: none\n" : absl::StrCat("findings:\n\t", findings, "\n");
      fwrite(out.data(), 1, out.size(), io.out);
    }
  }

  static void PrintSamples(const v1::PairSamples& ps, const Io& io) {
    const std::string head = "\nsamples (sequence numbers relative to the first sample's A.snd_una / B.snd_una):\n";
    fwrite(head.data(), 1, head.size(), io.out);
    using A = TextTable::Align;
    TextTable t({{"#", A::kRight}, {"A.snd_una", A::kRight}, {"A.snd_nxt", A::kRight},
                 {"B.rcv_nxt", A::kRight}, {"B unread", A::kRight}, {"B.snd_una", A::kRight},
                 {"B.snd_nxt", A::kRight}, {"A.rcv_nxt", A::kRight}, {"A unread", A::kRight},
                 {"A retrans", A::kRight}, {"B retrans", A::kRight}});
    const v1::ConnectionPair& first = ps.samples(0);
    const uint32_t oa = first.a().seq().snd_una(), ob = first.b().seq().snd_una();
    for (int i = 0; i < ps.samples_size(); ++i) {
      const v1::ConnectionPair& p = ps.samples(i);
      const v1::SequenceSpace& x = p.a().seq();
      const v1::SequenceSpace& y = p.b().seq();
      const bool seq = p.a().has_seq() && p.b().has_seq();
      auto rel = [&](uint32_t v, uint32_t o) { return seq ? absl::StrCat(SeqDiff(v, o)) : std::string("-"); };
      t.AddRow({absl::StrCat(i + 1), rel(x.snd_una(), oa), rel(x.snd_nxt(), oa),
                rel(y.rcv_nxt(), oa), seq ? absl::StrCat(SeqDiff(y.rcv_nxt(), y.copied_seq())) : "-",
                rel(y.snd_una(), ob), rel(y.snd_nxt(), ob), rel(x.rcv_nxt(), ob),
                seq ? absl::StrCat(SeqDiff(x.rcv_nxt(), x.copied_seq())) : "-",
                absl::StrCat(p.a().tcp_info().total_retrans()), absl::StrCat(p.b().tcp_info().total_retrans())});
    }
    t.Print(io.out, true);
  }

  std::vector<std::string> args_;
  int samples_ = 1;
  std::string interval_text_ = "1s";
  std::string svg_path_;
};

}  // namespace

std::unique_ptr<Command> MakeCompareCommand() { return std::make_unique<CompareCommand>(); }

}  // namespace tcbscope
