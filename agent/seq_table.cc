#include "agent/seq_table.h"

#include <netinet/tcp.h>
#include <sys/socket.h>

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
  if (list < 0) return;
  std::vector<tcb_seq_record>& records = lists_[list].records;
  const uint64_t at = static_cast<uint64_t>(list) << 32 | records.size();
  records.push_back(r);
  // A socket the dump reports in SYN_RECV was in one of these at the pass
  // (a Fast Open child starts in SYN_RECV, a simultaneous open comes from
  // SYN_SENT), or it is newer than the pass.
  if (r.state == TCP_SYN_SENT || r.state == TCP_SYN_RECV) opening_.emplace(r.cookie, at);
  if (indexed_) {
    index_.clear();
    indexed_ = false;
  }
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

const tcb_seq_record* SeqTable::Take(uint64_t at, int expected_list) {
  const int list = static_cast<int>(at >> 32);
  const size_t position = at & 0xffffffffu;
  // A record found in another list (which no real walk gives) leaves that
  // list's cursor where its own rows expect it.
  if (list == expected_list) lists_[list].next = position + 1;
  return &lists_[list].records[position];
}

const tcb_seq_record* SeqTable::Find(uint64_t cookie, int family, int state) {
  const int list = ListOf(family, state == TCP_LISTEN);
  if (list < 0) return nullptr;
  List& l = lists_[list];
  const size_t end = std::min(l.records.size(), l.next + kLookahead);
  for (size_t i = l.next; i < end; ++i) {
    if (l.records[i].cookie == cookie) {
      l.next = i + 1;
      return &l.records[i];
    }
  }
  if (state == TCP_SYN_RECV) {
    // Mostly request sockets, which have no record; a full socket's can only
    // be among the opening ones.
    auto it = opening_.find(cookie);
    return it == opening_.end() ? nullptr : Take(it->second, list);
  }
  // Elsewhere, or nowhere. The index covers all four lists: the row's family
  // and state are as the dump saw them.
  if (!indexed_) BuildIndex();
  ++index_lookups_;
  auto it = index_.find(cookie);
  return it == index_.end() ? nullptr : Take(it->second, list);
}

}  // namespace tcbscope
