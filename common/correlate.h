// Pairs both ends of each TCP connection across two hosts' snapshots.
//
// Pure logic over protos: no I/O, no clock. A connection on A pairs with one
// on B when A.local == B.remote and A.remote == B.local, IPv4-mapped IPv6
// addresses folded to IPv4. A TCB whose peer address belongs to the other
// host but that has no partner there is unpaired (only_a / only_b): that
// asymmetry is a finding in itself (see common/compare.h).
//
// Connections left over that carry sequence numbers (Connection.seq) are then
// paired by their handshake, whatever their addresses say: A's ISS equals B's
// IRS and B's ISS equals A's IRS (common/seq_space.h). That finds both ends
// through a NAT; such pairs say matched_by "isn" and whether the addresses
// were translated.
//
// When both snapshots come from the same host (same boot id, or the same
// agent given twice), every loopback connection has both ends in one list;
// each pair is reported once, oriented client → server: B is the end whose
// local port has a listener; failing that, A has the higher (ephemeral) port.
#ifndef TCBSCOPE_COMMON_CORRELATE_H_
#define TCBSCOPE_COMMON_CORRELATE_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/tcb.h"
#include "tcbscope/v1/inspector.pb.h"
#include "tcbscope/v1/results.pb.h"

namespace tcbscope {

// One host's side of the input. The referenced protos must outlive the call.
struct HostSnapshot {
  std::string name;                 // as the user named it, for evidence
  const v1::HostInfo* info = nullptr;
  // Consumed: every connection the result reports is moved into it (a 100k
  // snapshot is not copied). When both lists and the result share an arena
  // (or are all on the heap) the reported ones leave the list as pointers and
  // the others stay in their order; otherwise their contents are swapped out,
  // leaving empty elements. A and B may be the same list. When the infos say
  // one host, B's list is not read (A's holds both ends of everything).
  google::protobuf::RepeatedPtrField<v1::Connection>* connections = nullptr;
  absl::Time captured_at;
  // The port this host's agent serves on. Connections to or from either
  // host's agent port are the tool's own calls and are left out; 0 = none.
  uint32_t agent_port = 0;
};

// One host's side as Tcbs (common/tcb.h), for a caller that keeps no
// messages. The referenced data must outlive the call.
struct TcbSnapshot {
  const v1::HostInfo* info = nullptr;
  const TcbList* tcbs = nullptr;
  uint32_t agent_port = 0;  // as HostSnapshot::agent_port
};

// Which TCBs of two snapshots are the two ends of one connection, and which
// have no partner, as indices into the two lists; ordered as Correlate
// reports them.
struct Matching {
  struct Pair {
    int a = 0, b = 0;
    const char* passive_side = "";  // as ConnectionPair.passive_side
    bool by_isn = false;            // matched_by "isn" (else "addresses")
    bool addresses_translated = false;
  };
  std::vector<Pair> pairs;
  std::vector<int> only_a, only_b;
  // The infos said one host, or one list was given for both: B's list was
  // not read, and every index (b's too) is into A's list. only_b is then
  // empty.
  bool one_list = false;
};

// The pairing Correlate does, without moving anything.
Matching Match(const TcbSnapshot& a, const TcbSnapshot& b);

// Fills result->pairs, only_a, only_b and skew_ms (B's capture minus A's).
// Findings are not computed here (see CompareAll in common/compare.h).
// LISTEN, CLOSE and TIME_WAIT sockets are never unpaired: a listener has no
// peer, and TIME_WAIT outliving its peer's TCB is TCP working as designed.
void Correlate(const HostSnapshot& a, const HostSnapshot& b, v1::CorrelateResult* result);

// True when the two infos describe the same running kernel and network
// namespace (so both snapshots hold the same sockets).
bool SameHost(const v1::HostInfo& a, const v1::HostInfo& b);

}  // namespace tcbscope

#endif  // TCBSCOPE_COMMON_CORRELATE_H_
