// Sequence-space records from BPF iter/tcp passes, found by socket cookie for
// the rows of a sock_diag dump.
//
// The iterator and sock_diag walk the kernel's socket tables in the same
// order: listeners first, then the established table bucket by bucket. The
// dump asks for one family at a time, the iterator gives both at once, so the
// records are kept in four lists (family, listening or not), each in the
// iterator's order. The record of the next row a dump reports is then almost
// always the next in its list, or a few further on: Find looks there first.
// Only a record found elsewhere (a socket opened or closed between the two
// passes, several namespaces read in another order) takes an index by
// cookie, built the first time one is needed. A hash probe per row into a
// table of 100,000 records was a tenth of the agent's CPU for such a listing
// (docs/performance.md).
//
// A record is returned only for its own cookie, so the order is a matter of
// speed, never of which record a row gets.
//
// Not thread-safe: Find moves cursors. REQUIRES: every Add before the first
// Find.
#ifndef TCBSCOPE_AGENT_SEQ_TABLE_H_
#define TCBSCOPE_AGENT_SEQ_TABLE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "agent/kernel/bpf/tcb_records.h"

namespace tcbscope {

class SeqTable {
 public:
  // How far past the cursor Find looks before it takes the index.
  static constexpr size_t kLookahead = 64;

  // Keeps `r`; a record of a family other than AF_INET and AF_INET6 is
  // dropped.
  void Add(const tcb_seq_record& r);

  // The record of the socket `cookie` (of `family`, AF_INET or AF_INET6, as
  // the dump reported it; `listening` when its state is LISTEN), or null when
  // the pass did not see it. The pointer lives as long as the table.
  const tcb_seq_record* Find(uint64_t cookie, int family, bool listening);

  size_t size() const;
  // How many Finds took the index: a measure of how well the two walks'
  // orders agreed, for tests.
  uint64_t index_lookups() const { return index_lookups_; }

 private:
  struct List {
    std::vector<tcb_seq_record> records;
    size_t next = 0;  // where the next row's record is expected
  };
  // The list a socket's record is in; -1 for a family not kept.
  static int ListOf(int family, bool listening);
  void BuildIndex();

  std::array<List, 4> lists_;
  // cookie -> list << 32 | position; empty until the first Find that needs it.
  absl::flat_hash_map<uint64_t, uint64_t> index_;
  bool indexed_ = false;
  uint64_t index_lookups_ = 0;
};

}  // namespace tcbscope

#endif  // TCBSCOPE_AGENT_SEQ_TABLE_H_
