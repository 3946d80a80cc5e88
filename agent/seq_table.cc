#include "agent/seq_table.h"

#include <sys/socket.h>
#include <netinet/tcp.h>

#include <algorithm>

namespace tcbscope {

int SeqTable::ListOf(int family, bool listening) {
  const int base = listening ? 2 : 0;
  if (family == AF_INET) return base;
  if (family == AF_INET6) return base + 1;
  return -1;
}

void SeqTable::Add(const tcb_seq_record& r) {
  const int list = ListOf(r.family, r.state == TCP_LISTEN);
  if (list >= 0) lists_[list].records.push_back(r);
}

size_t SeqTable::size() const {
  size_t n = 0;
  for (const List& l : lists_) n += l.records.size();
  return n;
}

void SeqTable::BuildIndex() {
  index_.reserve(size());
  for (size_t list = 0; list < lists_.size(); ++list) {
    const std::vector<tcb_seq_record>& records = lists_[list].records;
    for (size_t i = 0; i < records.size(); ++i) {
      index_.emplace(records[i].cookie, static_cast<uint64_t>(list) << 32 | i);
    }
  }
  indexed_ = true;
}

const tcb_seq_record* SeqTable::Find(uint64_t cookie, int family, bool listening) {
  const int list = ListOf(family, listening);
  if (list < 0) return nullptr;
  List& l = lists_[list];
  const size_t end = std::min(l.records.size(), l.next + kLookahead);
  for (size_t i = l.next; i < end; ++i) {
    if (l.records[i].cookie == cookie) {
      l.next = i + 1;
      return &l.records[i];
    }
  }
  // Elsewhere, or nowhere. The socket may have left its list since the pass
  // (a listener closing), so the index covers all four.
  if (!indexed_) BuildIndex();
  ++index_lookups_;
  auto it = index_.find(cookie);
  if (it == index_.end()) return nullptr;
  List& found = lists_[it->second >> 32];
  const size_t at = it->second & 0xffffffffu;
  found.next = at + 1;
  return &found.records[at];
}

}  // namespace tcbscope
