#include "client/pairing.h"

#include <functional>
#include <memory>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/fan_out.h"
#include "client/process_end.h"
#include "common/compare.h"
#include "common/correlate.h"
#include "common/proto_time.h"
#include "common/tcb_batch.h"
#include "common/tcp_state.h"

namespace tcbscope {
namespace {

// Fills side->info (unless it has one) and the snapshot: `list` makes the
// ListConnections call (with tcp_info and sequence numbers for every
// connection, and `fields` if not null) and its status is the side's.
void Fetch(const GlobalOptions& global, FetchedSide* side, const google::protobuf::FieldMask* fields,
           const std::function<absl::Status(AgentClient&, const v1::ListConnectionsRequest&)>& list) {
  absl::StatusOr<std::unique_ptr<AgentClient>> client = AgentClient::Create(side->host, global.client);
  if (!client.ok()) {
    side->status = client.status();
    return;
  }
  absl::Status status;
  if (side->info.boot_id().empty()) status = (*client)->GetHostInfo(&side->info);
  if (status.ok()) {
    v1::ListConnectionsRequest req;
    req.set_all(true);
    req.set_tcp_info(true);
    req.set_sequence(true);
    if (fields != nullptr) *req.mutable_fields() = *fields;
    status = list(**client, req);
  }
  side->status = std::move(status);
  Retire(std::shared_ptr<AgentClient>(*std::move(client)));
}

// Runs fetch on both sides at once; the same agent given twice is asked once.
template <typename Side, typename F>
void FetchEach(Side* a, Side* b, const F& fetch) {
  if (SameAgent(*a, *b)) {
    fetch(a);
    return;
  }
  Side* sides[2] = {a, b};
  ForEachConcurrently(2, [&](size_t i) { fetch(sides[i]); });
}

bool Selected(const Filter& f, StateMask states, const v1::Connection& c) {
  return (states & StateBit(c.state())) && f.Matches(c);
}

}  // namespace

bool SameAgent(const FetchedSide& a, const FetchedSide& b) {
  return a.host.host == b.host.host && a.host.port == b.host.port;
}

void FetchBoth(const GlobalOptions& global, PairingSide* a, PairingSide* b) {
  FetchEach(a, b, [&](PairingSide* s) {
    Fetch(global, s, nullptr, [&](AgentClient& client, const v1::ListConnectionsRequest& req) {
      s->conns->Clear();
      return client.ListConnections(req, s->conns);
    });
  });
}

void FetchBoth(const GlobalOptions& global, const Filter& filter, TcbSide* a, TcbSide* b) {
  const StateMask states = filter.States(kAllStates);
  // Only what the Tcbs and the filter read (the filter: state and endpoints,
  // which Tcbs have, and the namespace).
  google::protobuf::FieldMask fields;
  for (const std::string& p : TcbFieldPaths()) fields.add_paths(p);
  if (!filter.MatchesEverything()) {
    fields.add_paths("netns");
    fields.add_paths("netns_name");
  }
  FetchEach(a, b, [&](TcbSide* s) {
    v1::HostConnections out;
    Fetch(global, s, &fields, [&](AgentClient& client, const v1::ListConnectionsRequest& req) {
      if (filter.MatchesEverything()) {
        // Only the states to select by, which a Tcb has: the batches are
        // read straight into Tcbs, and no message is built.
        return client.ListConnectionTcbs(req, &out, [&](TcbBatch* batch) {
          for (const Tcb& t : batch->tcbs()) {
            s->tcbs.Add(t);
            s->selected.push_back((states & StateBit(t.state)) != 0);
          }
        });
      }
      return client.ListConnections(req, &out, [&](v1::ConnectionBatch* batch) {
        for (const v1::Connection& c : batch->connections()) {
          s->tcbs.Add(TcbOf(c));
          s->selected.push_back(Selected(filter, states, c));
        }
      });
    });
    s->captured_at = FromTimestamp(out.captured_at());
  });
}

int RecordSideErrors(const FetchedSide& a, const FetchedSide& b, const Io& io, v1::CorrelateResult* result) {
  result->set_host_a(a.host.ToString());
  result->set_host_b(b.host.ToString());
  const bool one = SameAgent(a, b);
  int exit_code = kExitOk;
  for (auto [side, err] : {std::pair<const FetchedSide*, v1::HostError*>{&a, result->mutable_error_a()},
                           {&b, result->mutable_error_b()}}) {
    if (one && side == &b) break;
    if (side->status.ok()) continue;
    SetHostError(side->status, err);
    PrintError(io, absl::StrCat(side->host.ToString(), ": ", side->status.message()));
    exit_code = kExitUnreachable;
  }
  if (one && !a.status.ok()) *result->mutable_error_b() = result->error_a();
  if (!result->has_error_a()) result->clear_error_a();
  if (!result->has_error_b()) result->clear_error_b();
  return exit_code;
}

void PairSelected(PairingSide& a, PairingSide& b, const Filter& filter, bool directions,
                  v1::CorrelateResult* result) {
  const StateMask states = filter.States(kAllStates);
  PairingSide& bb = SameAgent(a, b) ? a : b;
  HostSnapshot sa{a.host.ToString(), &a.info, a.conns->mutable_connections(), FromTimestamp(a.conns->captured_at()),
                  a.host.port};
  HostSnapshot sb{bb.host.ToString(), &bb.info, bb.conns->mutable_connections(),
                  FromTimestamp(bb.conns->captured_at()), bb.host.port};
  // On the snapshots' arena, so that Correlate's moves are pointer swaps.
  v1::CorrelateResult& all = *google::protobuf::Arena::CreateMessage<v1::CorrelateResult>(a.conns->GetArena());
  Correlate(sa, sb, &all);
  result->set_skew_ms(all.skew_ms());
  for (auto& p : *all.mutable_pairs()) {
    if (Selected(filter, states, p.a()) || Selected(filter, states, p.b())) result->add_pairs()->Swap(&p);
  }
  for (auto& u : *all.mutable_only_a()) {
    if (Selected(filter, states, u.connection())) result->add_only_a()->Swap(&u);
  }
  for (auto& u : *all.mutable_only_b()) {
    if (Selected(filter, states, u.connection())) result->add_only_b()->Swap(&u);
  }
  CompareContext ctx;
  ctx.skew_ms = result->skew_ms();
  ctx.directions = directions;
  CompareAll(ctx, result);
}

void PairSelected(const TcbSide& a, const TcbSide& b,
                  absl::FunctionRef<void(const Tcb& a, const Tcb& b, const Matching::Pair& m, const Findings& f)> on_pair,
                  absl::FunctionRef<void(const Tcb& t, bool on_a, const Findings& f)> on_unpaired,
                  v1::CorrelateResult* result) {
  const TcbSide& bb = SameAgent(a, b) ? a : b;
  result->set_skew_ms(static_cast<double>(absl::ToInt64Milliseconds(bb.captured_at - a.captured_at)));
  const Matching m = Match(TcbSnapshot{&a.info, &a.tcbs, a.host.port}, TcbSnapshot{&bb.info, &bb.tcbs, bb.host.port});
  const TcbSide& mb = m.one_list ? a : bb;
  CompareContext ctx;
  ctx.skew_ms = result->skew_ms();
  // One message for every pair's findings: most pairs have none, and a
  // cleared field keeps its elements for the next.
  Findings findings;
  for (const Matching::Pair& p : m.pairs) {
    if (!a.selected[static_cast<size_t>(p.a)] && !mb.selected[static_cast<size_t>(p.b)]) continue;
    findings.Clear();
    const Tcb& ta = a.tcbs[static_cast<size_t>(p.a)];
    const Tcb& tb = mb.tcbs[static_cast<size_t>(p.b)];
    CompareTcbs(ctx, ta, tb, p.passive_side, &findings, nullptr);
    CountFindings(findings, result);
    on_pair(ta, tb, p, findings);
  }
  for (const auto& [side, on_a, list] : {std::tuple<const TcbSide*, bool, const std::vector<int>*>{&a, true, &m.only_a},
                                         {&mb, false, &m.only_b}}) {
    for (int i : *list) {
      if (!side->selected[static_cast<size_t>(i)]) continue;
      findings.Clear();
      const Tcb& t = side->tcbs[static_cast<size_t>(i)];
      CompareUnpairedTcb(ctx, on_a, t, &findings);
      CountFindings(findings, result);
      on_unpaired(t, on_a, findings);
    }
  }
}

const char* SeverityName(v1::Severity s) {
  switch (s) {
    case v1::SEVERITY_ERROR: return "error";
    case v1::SEVERITY_WARNING: return "warning";
    case v1::SEVERITY_INFO: return "info";
    default: return "?";
  }
}

std::string FindingLines(const google::protobuf::RepeatedPtrField<v1::Finding>& findings) {
  std::string out;
  for (const auto& f : findings) {
    absl::StrAppend(&out, out.empty() ? "" : "\n\t", SeverityName(f.severity()), " ", f.code(), ": ", f.meaning());
    for (const auto& e : f.evidence()) absl::StrAppend(&out, "\n\t    ", e.host(), " ", e.field(), " = ", e.value());
  }
  return out;
}

std::string FindingCodes(const google::protobuf::RepeatedPtrField<v1::Finding>& findings) {
  std::string codes;
  for (const auto& f : findings) absl::StrAppend(&codes, codes.empty() ? "" : ",", f.code());
  return codes.empty() ? "-" : codes;
}

}  // namespace tcbscope
