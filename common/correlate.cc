#include "common/correlate.h"

#include <algorithm>
#include <optional>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "common/ip_address.h"
#include "common/seq_space.h"

namespace tcbscope {
namespace {

Endpoint Fold(const Endpoint& e) { return Endpoint{e.address.Folded(), e.port}; }

struct Key {
  Endpoint local, remote;
  template <typename H>
  friend H AbslHashValue(H h, const Key& k) {
    return H::combine(std::move(h), k.local, k.remote);
  }
};

Key FoldedKey(const Tcb& t) { return Key{Fold(t.local), Fold(t.remote)}; }

bool Pairable(v1::TcpState s) { return s != v1::TCP_STATE_LISTEN && s != v1::TCP_STATE_CLOSE; }
bool CanBeUnpaired(v1::TcpState s) { return Pairable(s) && s != v1::TCP_STATE_TIME_WAIT; }

absl::flat_hash_set<IpAddress> AddressesOf(const v1::HostInfo* info, bool include_loopback) {
  absl::flat_hash_set<IpAddress> out;
  if (info == nullptr) return out;
  for (const auto& ia : info->addresses()) {
    absl::StatusOr<IpAddress> a = IpAddress::Parse(ia.address());
    if (!a.ok()) continue;
    const IpAddress f = a->Folded();
    if (f.IsLoopback() && !include_loopback) continue;
    out.insert(f);
  }
  return out;
}

// Listening (address, port)s of a snapshot; the unspecified address stands
// for a wildcard listener.
using Listeners = absl::flat_hash_set<Endpoint>;

Listeners ListenersOf(const TcbList& list) {
  Listeners out;
  for (size_t i = 0; i < list.size(); ++i) {
    const Tcb& c = list[i];
    if (c.state != v1::TCP_STATE_LISTEN) continue;
    Endpoint e = Fold(c.local);
    if (e.address.IsUnspecified()) e.address = IpAddress();
    out.insert(e);
  }
  return out;
}

bool Listens(const Listeners& l, const Endpoint& e) {
  return l.contains(e) || l.contains(Endpoint{IpAddress(), e.port});
}

// Client side first: the end without a listener on its local port is A;
// without listeners to go by, the higher local port (ephemeral) is.
bool IsClientSide(const Key& k, const Listeners& listeners) {
  const bool local_listens = Listens(listeners, k.local), remote_listens = Listens(listeners, k.remote);
  if (local_listens != remote_listens) return remote_listens;
  if (k.local.port != k.remote.port) return k.local.port > k.remote.port;
  return k.remote.address < k.local.address;
}

// The CLI's own calls to either agent are not what the user asked about.
bool IsOwnTraffic(const Tcb& c, uint32_t port_a, uint32_t port_b) {
  for (uint32_t p : {port_a, port_b}) {
    if (p != 0 && (c.local.port == p || c.remote.port == p)) return true;
  }
  return false;
}

int64_t ToMs(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

}  // namespace

bool SameHost(const v1::HostInfo& a, const v1::HostInfo& b) {
  return !a.boot_id().empty() && a.boot_id() == b.boot_id() && a.netns() == b.netns();
}

Matching Match(const TcbSnapshot& a, const TcbSnapshot& b) {
  Matching m;
  // One list: the infos say one host, or the caller gave one list twice (the
  // same agent asked once, whatever its info says). Its sockets then take
  // both roles, and a socket must never pair with itself.
  const bool same =
      (a.info != nullptr && b.info != nullptr && SameHost(*a.info, *b.info)) || a.tcbs == b.tcbs;
  m.one_list = same;
  const TcbList& ca = *a.tcbs;
  const TcbList& cb = same ? *a.tcbs : *b.tcbs;

  // A TCB's folded endpoints; nullopt for sockets that take no part
  // (listeners, the tool's own calls). Made again where needed rather than
  // kept: 200k keys would be 10 MB of new memory.
  auto key_of = [&](const Tcb& t) -> std::optional<Key> {
    if (!Pairable(t.state) || IsOwnTraffic(t, a.agent_port, b.agent_port)) return std::nullopt;
    return FoldedKey(t);
  };
  const Listeners listeners = ListenersOf(cb);
  const Listeners listeners_a_own = same ? Listeners() : ListenersOf(ca);
  const Listeners& listeners_a = same ? listeners : listeners_a_own;
  // B's pairable TCBs by key, held as positions in B's list.
  struct PositionHash {
    using is_transparent = void;
    const TcbList* list;
    size_t operator()(const Key& k) const { return absl::Hash<Key>()(k); }
    size_t operator()(int i) const { return (*this)(FoldedKey((*list)[static_cast<size_t>(i)])); }
  };
  struct PositionEq {
    using is_transparent = void;
    const TcbList* list;
    bool operator()(const Key& k, int i) const {
      const Key o = FoldedKey((*list)[static_cast<size_t>(i)]);
      return k.local == o.local && k.remote == o.remote;
    }
    bool operator()(int i, const Key& k) const { return (*this)(k, i); }
    bool operator()(int i, int j) const { return (*this)(FoldedKey((*list)[static_cast<size_t>(i)]), j); }
  };
  absl::flat_hash_set<int, PositionHash, PositionEq> index_b(cb.size(), PositionHash{&cb}, PositionEq{&cb});
  for (size_t i = 0; i < cb.size(); ++i) {
    if (key_of(cb[i])) index_b.insert(static_cast<int>(i));
  }

  std::vector<bool> b_used(cb.size(), false);
  std::vector<bool> a_used(ca.size(), false);
  // Records A's element i paired with B's element j. In one-host mode both
  // ends are in the one list, so neither is looked at again on either side
  // (the sequence-number pass would otherwise try every server end).
  auto pair = [&](Matching::Pair p) {
    m.pairs.push_back(p);
    a_used[p.a] = true;
    b_used[p.b] = true;
    if (same) {
      a_used[p.b] = true;
      b_used[p.a] = true;
    }
  };
  m.pairs.reserve(std::min(ca.size(), cb.size()));
  for (size_t i = 0; i < ca.size(); ++i) {
    const std::optional<Key> key = key_of(ca[i]);
    if (!key) continue;
    const Key& kx = *key;
    if (kx.local == kx.remote) continue;  // a socket connected to itself
    if (same && !IsClientSide(kx, listeners)) continue;
    auto it = index_b.find(Key{kx.remote, kx.local});
    if (it == index_b.end()) continue;
    const char* passive = Listens(listeners, kx.remote) ? "B" : Listens(listeners_a, kx.local) ? "A" : "";
    pair({static_cast<int>(i), *it, passive});
  }

  // Through NAT the addresses do not mirror each other, but the handshake
  // does: A's initial sequence number is B's initial receive number and the
  // reverse. Two 32-bit equalities at once do not happen by chance.
  struct Isn {
    int index;
    InitialSequence isn;
  };
  absl::flat_hash_map<uint32_t, std::vector<Isn>> b_by_irs;
  for (size_t j = 0; j < cb.size(); ++j) {
    if (b_used[j] || !key_of(cb[j])) continue;
    if (std::optional<InitialSequence> s = InitialSequenceOf(cb[j])) {
      b_by_irs[s->irs].push_back({static_cast<int>(j), *s});
    }
  }
  if (!b_by_irs.empty()) {
    for (size_t i = 0; i < ca.size(); ++i) {
      if (a_used[i] || !key_of(ca[i])) continue;
      std::optional<InitialSequence> sa = InitialSequenceOf(ca[i]);
      if (!sa) continue;
      const Isn* found = nullptr;
      bool a_active = false;
      for (uint32_t iss : {sa->iss_if_active, sa->iss_if_passive}) {
        auto it = b_by_irs.find(iss);
        if (it == b_by_irs.end()) continue;
        for (const Isn& cand : it->second) {
          // A socket cannot pair with itself, which only one list (one host)
          // can offer: across two lists, equal positions are two sockets.
          if ((same && cand.index == static_cast<int>(i)) || b_used[cand.index] || (same && a_used[cand.index])) {
            continue;
          }
          if (cand.isn.IssMatches(sa->irs)) {
            found = &cand;
            a_active = iss == sa->iss_if_active;
            break;
          }
        }
        if (found) break;
      }
      if (!found) continue;
      // In one-host mode both ends sit in one list: keep the pair once,
      // oriented client (the active opener) first.
      if (same && !a_active) continue;
      const Key ka = *key_of(ca[i]);
      const Key kb = *key_of(cb[static_cast<size_t>(found->index)]);
      const bool translated = !(ka.local == kb.remote && ka.remote == kb.local);
      pair({static_cast<int>(i), found->index, a_active ? "B" : "A", true, translated});
    }
  }

  const absl::flat_hash_set<IpAddress> addrs_a = AddressesOf(a.info, same);
  const absl::flat_hash_set<IpAddress> addrs_b = AddressesOf(b.info, same);
  auto unpaired = [&](const TcbList& list, const std::vector<bool>& used, const absl::flat_hash_set<IpAddress>& peer,
                      std::vector<int>* out) {
    for (size_t i = 0; i < list.size(); ++i) {
      if (used[i] || !CanBeUnpaired(list[i].state)) continue;
      const std::optional<Key> key = key_of(list[i]);
      if (!key) continue;
      const Key& k = *key;
      if (!peer.contains(k.remote.address)) continue;
      // Within one host the partner would be in this same list; it exists
      // unless this end is alone (e.g. a SYN_SENT that got no answer).
      if (same && index_b.contains(Key{k.remote, k.local})) continue;
      out->push_back(static_cast<int>(i));
    }
  };
  unpaired(ca, a_used, addrs_b, &m.only_a);
  if (!same) unpaired(cb, b_used, addrs_a, &m.only_b);
  return m;
}

void Correlate(const HostSnapshot& a, const HostSnapshot& b, v1::CorrelateResult* result) {
  result->set_skew_ms(static_cast<double>(ToMs(b.captured_at - a.captured_at)));
  auto tcbs_of = [](const google::protobuf::RepeatedPtrField<v1::Connection>& list) {
    TcbList out;
    for (const v1::Connection& c : list) out.Add(TcbOf(c));
    return out;
  };
  auto& ca = *a.connections;
  const TcbList ta = tcbs_of(ca);
  const bool same = a.info != nullptr && b.info != nullptr && SameHost(*a.info, *b.info);
  const bool one_list = same || a.connections == b.connections;
  // One host: B's list is not read (see Match); A's serves both roles.
  auto& cb = one_list ? ca : *b.connections;
  const TcbList tb = one_list ? TcbList() : tcbs_of(cb);
  const Matching m = Match(TcbSnapshot{a.info, &ta, a.agent_port}, TcbSnapshot{b.info, one_list ? &ta : &tb, b.agent_port});

  result->mutable_pairs()->Reserve(static_cast<int>(m.pairs.size()));
  std::vector<v1::ConnectionPair*> pairs;
  pairs.reserve(m.pairs.size());
  for (const Matching::Pair& mp : m.pairs) {
    v1::ConnectionPair* p = result->add_pairs();
    p->set_matched_by(mp.by_isn ? "isn" : "addresses");
    p->set_passive_side(mp.passive_side);
    if (mp.by_isn) p->set_addresses_translated(mp.addresses_translated);
    pairs.push_back(p);
  }
  std::vector<v1::UnpairedConnection*> unpaired_a(m.only_a.size()), unpaired_b(m.only_b.size());
  for (auto& u : unpaired_a) u = result->add_only_a();
  for (auto& u : unpaired_b) u = result->add_only_b();

  google::protobuf::Arena* arena = result->GetArena();
  if (ca.GetArena() == arena && cb.GetArena() == arena) {
    // Every element leaves its list as a pointer (no copy, nothing new
    // made); the reported ones go to the result, the rest go back in order.
    auto take = [](google::protobuf::RepeatedPtrField<v1::Connection>& list) {
      std::vector<v1::Connection*> v(static_cast<size_t>(list.size()));
      list.UnsafeArenaExtractSubrange(0, list.size(), v.data());
      return v;
    };
    std::vector<v1::Connection*> ea = take(ca);
    std::vector<v1::Connection*> eb_own = one_list ? std::vector<v1::Connection*>() : take(cb);
    std::vector<v1::Connection*>& eb = one_list ? ea : eb_own;
    auto release = [](std::vector<v1::Connection*>& v, int i) { return std::exchange(v[static_cast<size_t>(i)], nullptr); };
    for (size_t k = 0; k < m.pairs.size(); ++k) {
      pairs[k]->unsafe_arena_set_allocated_a(release(ea, m.pairs[k].a));
      pairs[k]->unsafe_arena_set_allocated_b(release(eb, m.pairs[k].b));
    }
    for (size_t k = 0; k < m.only_a.size(); ++k) {
      unpaired_a[k]->unsafe_arena_set_allocated_connection(release(ea, m.only_a[k]));
    }
    for (size_t k = 0; k < m.only_b.size(); ++k) {
      unpaired_b[k]->unsafe_arena_set_allocated_connection(release(eb, m.only_b[k]));
    }
    auto put_back = [](google::protobuf::RepeatedPtrField<v1::Connection>& list, std::vector<v1::Connection*>& v) {
      for (v1::Connection* c : v) {
        if (c != nullptr) list.UnsafeArenaAddAllocated(c);
      }
    };
    put_back(ca, ea);
    if (!one_list) put_back(cb, eb_own);
  } else {
    // Different arenas: swapping contents is the only safe move.
    for (size_t k = 0; k < m.pairs.size(); ++k) {
      pairs[k]->mutable_a()->Swap(ca.Mutable(m.pairs[k].a));
      pairs[k]->mutable_b()->Swap(cb.Mutable(m.pairs[k].b));
    }
    for (size_t k = 0; k < m.only_a.size(); ++k) unpaired_a[k]->mutable_connection()->Swap(ca.Mutable(m.only_a[k]));
    for (size_t k = 0; k < m.only_b.size(); ++k) unpaired_b[k]->mutable_connection()->Swap(cb.Mutable(m.only_b[k]));
  }
}

}  // namespace tcbscope
