// Sequence-space records from BPF iter/tcp passes, found by socket cookie for
// the rows of a sock_diag dump.
//
// The iterator and sock_diag walk the kernel's socket tables in the same
// order: listeners first, then the established table bucket by bucket; each
// gives both families mixed (a dump asked per family, on a kernel without the
// one-walk request, gives one at a time), so the records are kept in four
// lists (family, listening or not), each in the iterator's order. The record
// of the next row a dump reports is then almost always the next in its list,
// or a few further on: Find looks there first.
// A row whose record is not there (several namespaces read in another order)
// or that has none (a socket opened after the pass) takes an index by cookie,
// built the first time one is needed; on a host that opens connections while
// it is listed, that is most listings, but the rows in order still skip it.
// Request sockets (SYN_RECV rows) never build it: their record can only be
// one of the few the pass saw opening. Building a hash table of 100,000
// records and probing it for every row had been a third of what sequence
// numbers cost a listing (docs/performance.md).
//
// A record is returned only for its own cookie, so the order is a matter of
// speed, never of which record a row gets.
//
// Not thread-safe: Find moves cursors.
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
  // dropped. Pointers Find returned before are no longer valid.
  void Add(const tcb_seq_record& r);

  // The record of the socket `cookie`, whose row says `family` (AF_INET or
  // AF_INET6) and `state` (the kernel's TCP_* numbering), or null when the
  // pass did not see it. Valid until the next Add.
  const tcb_seq_record* Find(uint64_t cookie, int family, int state);

  size_t size() const;
  // How many Finds looked past the window into the index: rows whose record
  // is elsewhere or who have none. For tests.
  uint64_t index_lookups() const { return index_lookups_; }

 private:
  struct List {
    std::vector<tcb_seq_record> records;
    size_t next = 0;  // where the next row's record is expected
  };
  // The list a socket's record is in; -1 for a family not kept.
  static int ListOf(int family, bool listening);
  // The record at `at` (list << 32 | position); moves that list's cursor
  // past it when it is the list the row's record was expected in.
  const tcb_seq_record* Take(uint64_t at, int expected_list);
  void BuildIndex();

  std::array<List, 4> lists_;
  // cookie -> list << 32 | position. Of every record, built on first need;
  // of the records in SYN_SENT or SYN_RECV at the pass, kept as they come.
  absl::flat_hash_map<uint64_t, uint64_t> index_, opening_;
  bool indexed_ = false;
  uint64_t index_lookups_ = 0;
};

}  // namespace tcbscope

#endif  // TCBSCOPE_AGENT_SEQ_TABLE_H_
