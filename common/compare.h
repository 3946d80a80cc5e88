// Compares the two TCBs of each pair and turns what disagrees into findings
// with stable codes (docs/findings.md).
//
// Pure logic. Comparisons that depend on time allow for the capture skew
// between the two snapshots: a byte-count check is made only on a direction
// that has been quiet for longer than the skew, when both counts are final.
#ifndef TCBSCOPE_COMMON_COMPARE_H_
#define TCBSCOPE_COMMON_COMPARE_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/tcb.h"
#include "tcbscope/v1/results.pb.h"

namespace tcbscope {

using Findings = google::protobuf::RepeatedPtrField<v1::Finding>;
using Directions = google::protobuf::RepeatedPtrField<v1::DirectionView>;

// Finding codes (DESIGN.md). Their meaning never changes once released.
inline constexpr char kHalfOpen[] = "HALF_OPEN";
inline constexpr char kSynUnanswered[] = "SYN_UNANSWERED";
inline constexpr char kHandshakeIncomplete[] = "HANDSHAKE_INCOMPLETE";
inline constexpr char kCloseNotCalled[] = "CLOSE_NOT_CALLED";
inline constexpr char kReceiverNotReading[] = "RECEIVER_NOT_READING";
inline constexpr char kZeroWindow[] = "ZERO_WINDOW";
inline constexpr char kSeqDesync[] = "SEQ_DESYNC";
inline constexpr char kWscaleMismatch[] = "WSCALE_MISMATCH";
inline constexpr char kOptionMismatch[] = "OPTION_MISMATCH";
inline constexpr char kPathLoss[] = "PATH_LOSS";

struct CompareContext {
  // How findings name each host; the result names the hosts behind A and B.
  std::string name_a = "A";
  std::string name_b = "B";
  double skew_ms = 0;        // B's capture time minus A's
  // Whether to fill pair->directions, the per-direction figures that only
  // the JSON output shows; findings do not depend on them. Leaving them out
  // of a 100k-pair table saves ~35 MB of messages.
  bool directions = true;
};

// Fills pair->findings and (if ctx.directions) pair->directions.
void ComparePair(const CompareContext& ctx, v1::ConnectionPair* pair);

// The same for a pair kept as Tcbs (common/tcb.h), for a caller that keeps
// no messages: appends the findings to `findings` and, when `directions` is
// not null, the per-direction figures (ctx.directions is not read).
// `passive_side` is as ConnectionPair.passive_side: "A", "B" or "".
void CompareTcbs(const CompareContext& ctx, const Tcb& a, const Tcb& b, absl::string_view passive_side,
                 Findings* findings, Directions* directions);

// Findings across samples of one pair (oldest first), appended to `out`:
// PATH_LOSS when, in a direction, the sender keeps sending or retransmitting
// with data outstanding while the receiver's rcv_nxt never moves. Needs
// sequence numbers on both ends and at least three samples.
void CompareSamples(const CompareContext& ctx, const std::vector<const v1::ConnectionPair*>& samples,
                    Findings* out);

// Findings for a TCB with no partner on the other host. `on_a` says which
// host holds it.
void CompareUnpaired(const CompareContext& ctx, bool on_a, v1::UnpairedConnection* u);
// The same for a Tcb; appends to `findings`.
void CompareUnpairedTcb(const CompareContext& ctx, bool on_a, const Tcb& t, Findings* findings);

// Adds each finding to result's count for its severity.
void CountFindings(const Findings& findings, v1::CorrelateResult* result);

// Runs ComparePair and CompareUnpaired over a whole correlation and sets the
// severity counts.
void CompareAll(const CompareContext& ctx, v1::CorrelateResult* result);

}  // namespace tcbscope

#endif  // TCBSCOPE_COMMON_COMPARE_H_
