#include "client/pairing.h"

#include "absl/strings/str_cat.h"
#include "client/fan_out.h"
#include "common/compare.h"
#include "common/correlate.h"
#include "common/proto_time.h"
#include "common/tcp_state.h"

namespace tcbscope {
namespace {

void Fetch(const GlobalOptions& global, PairingSide* side) {
  absl::StatusOr<std::unique_ptr<AgentClient>> client = AgentClient::Create(side->host, global.client);
  if (!client.ok()) {
    side->status = client.status();
    return;
  }
  if (side->info.boot_id().empty()) {
    side->status = (*client)->GetHostInfo(&side->info);
    if (!side->status.ok()) return;
  }
  v1::ListConnectionsRequest req;
  req.set_all(true);
  req.set_tcp_info(true);
  req.set_sequence(true);
  side->conns->Clear();
  side->status = (*client)->ListConnections(req, side->conns);
}

bool Selected(const Filter& f, StateMask states, const v1::Connection& c) {
  return (states & StateBit(c.state())) && f.Matches(c);
}

}  // namespace

bool SameAgent(const PairingSide& a, const PairingSide& b) {
  return a.host.host == b.host.host && a.host.port == b.host.port;
}

void FetchBoth(const GlobalOptions& global, PairingSide* a, PairingSide* b) {
  if (SameAgent(*a, *b)) {
    Fetch(global, a);
    return;
  }
  PairingSide* sides[2] = {a, b};
  ForEachConcurrently(2, [&](size_t i) { Fetch(global, sides[i]); });
}

int RecordSideErrors(PairingSide& a, PairingSide& b, const Io& io, v1::CorrelateResult* result) {
  result->set_host_a(a.host.ToString());
  result->set_host_b(b.host.ToString());
  const bool one = SameAgent(a, b);
  int exit_code = kExitOk;
  for (auto [side, err] : {std::pair<PairingSide*, v1::HostError*>{&a, result->mutable_error_a()},
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
