// What correlate and compare share: fetching two hosts' snapshots (at once),
// pairing them, keeping what the filter selects, and printing findings.
#ifndef TCBSCOPE_CLIENT_PAIRING_H_
#define TCBSCOPE_CLIENT_PAIRING_H_

#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "client/command.h"
#include "common/compare.h"
#include "common/correlate.h"
#include "common/filter.h"
#include "common/tcb.h"
#include "google/protobuf/arena.h"
#include "tcbscope/v1/results.pb.h"

namespace tcbscope {

// What every kind of side has: the host as named, its info, and how fetching
// its snapshot went.
struct FetchedSide {
  explicit FetchedSide(HostPort h) : host(std::move(h)) {}
  HostPort host;
  v1::HostInfo info;
  absl::Status status;
};

// One host's contribution as messages: its info and an unfiltered snapshot
// of every state, with tcp_info and (when the agent has them) sequence
// numbers. For output that shows whole connections (JSON).
//
// The snapshot lives on `arena` (REQUIRES: not null, outlives the side).
// A command keeps both sides and its result on one arena: then pairing moves
// each connection into the result by swapping pointers, and the end of the
// command frees a few large blocks instead of a million small objects (that
// was a third of `correlate`'s CPU at 100k connections).
struct PairingSide : FetchedSide {
  PairingSide(HostPort h, google::protobuf::Arena* arena)
      : FetchedSide(std::move(h)), conns(google::protobuf::Arena::CreateMessage<v1::HostConnections>(arena)) {}
  // The next snapshot goes on `arena` (REQUIRES: not null); the last one
  // stays where it was. For a command that takes many snapshots and wants
  // each one's memory back when it is done with it.
  void UseArena(google::protobuf::Arena* arena) {
    conns = google::protobuf::Arena::CreateMessage<v1::HostConnections>(arena);
  }

  v1::HostConnections* conns;  // owned by the arena
};

// The same snapshot kept as Tcbs (common/tcb.h), made batch by batch as it
// arrives, each marked with whether the filter selects it: for output that
// shows findings and a few fields of each end (the table), in a quarter of
// the memory.
//
// The Tcbs' blocks come from `arena` when one is given (see TcbList).
struct TcbSide : FetchedSide {
  explicit TcbSide(HostPort h, google::protobuf::Arena* arena = nullptr)
      : FetchedSide(std::move(h)), tcbs(arena) {}
  TcbList tcbs;
  std::vector<bool> selected;  // one per tcb
  absl::Time captured_at;
};

// Fetches both sides concurrently; the same agent given twice is asked once
// (one snapshot serves both roles: no skew, no double count). `info` is
// fetched only when the side has none yet.
void FetchBoth(const GlobalOptions& global, PairingSide* a, PairingSide* b);
// The same into Tcbs, marking those `filter` selects.
void FetchBoth(const GlobalOptions& global, const Filter& filter, TcbSide* a, TcbSide* b);
bool SameAgent(const FetchedSide& a, const FetchedSide& b);

// Fills result's hosts and errors (one line each to io.err). Returns
// kExitUnreachable when either side failed, else kExitOk.
int RecordSideErrors(const FetchedSide& a, const FetchedSide& b, const Io& io, v1::CorrelateResult* result);

// Pairs the two snapshots (consuming them) and keeps the pairs the filter
// selects by either end and the unpaired TCBs it selects; computes findings.
// Moving connections into `result` is cheapest when it is on the sides'
// arena; elsewhere they are copied. `directions`: see CompareContext.
void PairSelected(PairingSide& a, PairingSide& b, const Filter& filter, bool directions,
                  v1::CorrelateResult* result);

// The same over Tcbs: calls on_pair for each selected pair and on_unpaired
// for each selected TCB without a partner, in Correlate's order, with the
// findings (valid during the call only); sets result's skew and counts.
void PairSelected(const TcbSide& a, const TcbSide& b,
                  absl::FunctionRef<void(const Tcb& a, const Tcb& b, const Matching::Pair& m, const Findings& f)> on_pair,
                  absl::FunctionRef<void(const Tcb& t, bool on_a, const Findings& f)> on_unpaired,
                  v1::CorrelateResult* result);

const char* SeverityName(v1::Severity s);
// Each finding's severity, code and meaning, then its evidence, one per line.
std::string FindingLines(const google::protobuf::RepeatedPtrField<v1::Finding>& findings);
// The codes, comma-separated, or "-".
std::string FindingCodes(const google::protobuf::RepeatedPtrField<v1::Finding>& findings);

}  // namespace tcbscope

#endif  // TCBSCOPE_CLIENT_PAIRING_H_
