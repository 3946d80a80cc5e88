#include "common/correlate.h"

#include <optional>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "common/ip_address.h"
#include "common/seq_space.h"

namespace tcbscope {
namespace {

// A folded endpoint; an address that does not parse keys as unspecified.
Endpoint Fold(const v1::Endpoint& e) {
  absl::StatusOr<IpAddress> a = IpAddress::Parse(e.address());
  return Endpoint{a.ok() ? a->Folded() : IpAddress(), static_cast<uint16_t>(e.port())};
}

struct Key {
  Endpoint local, remote;
  friend bool operator==(const Key& x, const Key& y) { return x.local == y.local && x.remote == y.remote; }
  template <typename H>
  friend H AbslHashValue(H h, const Key& k) {
    return H::combine(std::move(h), k.local, k.remote);
  }
};

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

Listeners ListenersOf(const google::protobuf::RepeatedPtrField<v1::Connection>& list) {
  Listeners out;
  for (const v1::Connection& c : list) {
    if (c.state() != v1::TCP_STATE_LISTEN) continue;
    Endpoint e = Fold(c.local());
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
bool IsOwnTraffic(const v1::Connection& c, uint32_t port_a, uint32_t port_b) {
  for (uint32_t p : {port_a, port_b}) {
    if (p != 0 && (c.local().port() == p || c.remote().port() == p)) return true;
  }
  return false;
}

int64_t ToMs(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

}  // namespace

bool SameHost(const v1::HostInfo& a, const v1::HostInfo& b) {
  return !a.boot_id().empty() && a.boot_id() == b.boot_id() && a.netns() == b.netns();
}

void Correlate(const HostSnapshot& a, const HostSnapshot& b, v1::CorrelateResult* result) {
  result->set_skew_ms(static_cast<double>(ToMs(b.captured_at - a.captured_at)));
  const bool same = a.info != nullptr && b.info != nullptr && SameHost(*a.info, *b.info);
  auto& ca = *a.connections;
  auto& cb = *b.connections;

  // Each connection's folded endpoints, parsed once; nullopt for sockets
  // that take no part (listeners, the tool's own calls).
  auto keys_of = [&](const google::protobuf::RepeatedPtrField<v1::Connection>& list) {
    std::vector<std::optional<Key>> keys(list.size());
    for (int i = 0; i < list.size(); ++i) {
      if (!Pairable(list[i].state()) || IsOwnTraffic(list[i], a.agent_port, b.agent_port)) continue;
      keys[i] = Key{Fold(list[i].local()), Fold(list[i].remote())};
    }
    return keys;
  };
  const std::vector<std::optional<Key>> keys_b = keys_of(cb);
  const std::vector<std::optional<Key>> keys_a = same ? keys_b : keys_of(ca);
  const Listeners listeners = ListenersOf(cb);
  const Listeners listeners_a = same ? listeners : ListenersOf(ca);
  absl::flat_hash_map<Key, int> index_b;
  index_b.reserve(cb.size());
  for (int i = 0; i < cb.size(); ++i) {
    if (keys_b[i]) index_b.emplace(*keys_b[i], i);
  }

  // Decide first, move after: in one-host mode A's and B's lists are one
  // list, and every element is reported at most once.
  struct Match {
    int a, b;
    const char* passive;
    bool by_isn = false;
  };
  std::vector<Match> matches;
  std::vector<bool> b_used(cb.size(), false);
  std::vector<bool> a_used(ca.size(), false);
  // Records A's element i paired with B's element j. In one-host mode both
  // ends are in the one list, so neither is looked at again on either side
  // (the sequence-number pass would otherwise try every server end).
  auto pair = [&](Match m) {
    matches.push_back(m);
    a_used[m.a] = true;
    b_used[m.b] = true;
    if (same) {
      a_used[m.b] = true;
      b_used[m.a] = true;
    }
  };
  for (int i = 0; i < ca.size(); ++i) {
    if (!keys_a[i]) continue;
    const Key& kx = *keys_a[i];
    if (kx.local == kx.remote) continue;  // a socket connected to itself
    if (same && !IsClientSide(kx, listeners)) continue;
    auto it = index_b.find(Key{kx.remote, kx.local});
    if (it == index_b.end()) continue;
    const char* passive = Listens(listeners, kx.remote) ? "B" : Listens(listeners_a, kx.local) ? "A" : "";
    pair({i, it->second, passive});
  }

  // Through NAT the addresses do not mirror each other, but the handshake
  // does: A's initial sequence number is B's initial receive number and the
  // reverse. Two 32-bit equalities at once do not happen by chance.
  struct Isn {
    int index;
    InitialSequence isn;
  };
  absl::flat_hash_map<uint32_t, std::vector<Isn>> b_by_irs;
  for (int j = 0; j < cb.size(); ++j) {
    if (b_used[j] || !keys_b[j]) continue;
    if (std::optional<InitialSequence> s = InitialSequenceOf(cb[j])) b_by_irs[s->irs].push_back({j, *s});
  }
  if (!b_by_irs.empty()) {
    for (int i = 0; i < ca.size(); ++i) {
      if (a_used[i] || !keys_a[i]) continue;
      std::optional<InitialSequence> sa = InitialSequenceOf(ca[i]);
      if (!sa) continue;
      const Isn* found = nullptr;
      bool a_active = false;
      for (uint32_t iss : {sa->iss_if_active, sa->iss_if_passive}) {
        auto it = b_by_irs.find(iss);
        if (it == b_by_irs.end()) continue;
        for (const Isn& cand : it->second) {
          if (cand.index == i || b_used[cand.index] || (same && a_used[cand.index])) continue;
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
      pair({i, found->index, a_active ? "B" : "A", true});
    }
  }

  const absl::flat_hash_set<IpAddress> addrs_a = AddressesOf(a.info, same);
  const absl::flat_hash_set<IpAddress> addrs_b = AddressesOf(b.info, same);
  auto unpaired = [&](const google::protobuf::RepeatedPtrField<v1::Connection>& list,
                      const std::vector<std::optional<Key>>& keys, const std::vector<bool>& used,
                      const absl::flat_hash_set<IpAddress>& peer, std::vector<int>* out) {
    for (size_t i = 0; i < keys.size(); ++i) {
      if (used[i] || !keys[i] || !CanBeUnpaired(list[static_cast<int>(i)].state())) continue;
      const Key& k = *keys[i];
      if (!peer.contains(k.remote.address)) continue;
      // Within one host the partner would be in this same list; it exists
      // unless this end is alone (e.g. a SYN_SENT that got no answer).
      if (same && index_b.contains(Key{k.remote, k.local})) continue;
      out->push_back(static_cast<int>(i));
    }
  };
  std::vector<int> only_a, only_b;
  unpaired(ca, keys_a, a_used, addrs_b, &only_a);
  if (!same) unpaired(cb, keys_b, b_used, addrs_a, &only_b);

  result->mutable_pairs()->Reserve(static_cast<int>(matches.size()));
  std::vector<v1::ConnectionPair*> pairs;
  pairs.reserve(matches.size());
  for (const Match& m : matches) {
    v1::ConnectionPair* p = result->add_pairs();
    p->set_matched_by(m.by_isn ? "isn" : "addresses");
    p->set_passive_side(m.passive);
    pairs.push_back(p);
  }
  std::vector<v1::UnpairedConnection*> unpaired_a(only_a.size()), unpaired_b(only_b.size());
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
    std::vector<v1::Connection*> eb_own = &ca == &cb ? std::vector<v1::Connection*>() : take(cb);
    std::vector<v1::Connection*>& eb = &ca == &cb ? ea : eb_own;
    auto release = [](std::vector<v1::Connection*>& v, int i) { return std::exchange(v[static_cast<size_t>(i)], nullptr); };
    for (size_t k = 0; k < matches.size(); ++k) {
      pairs[k]->unsafe_arena_set_allocated_a(release(ea, matches[k].a));
      pairs[k]->unsafe_arena_set_allocated_b(release(eb, matches[k].b));
    }
    for (size_t k = 0; k < only_a.size(); ++k) {
      unpaired_a[k]->unsafe_arena_set_allocated_connection(release(ea, only_a[k]));
    }
    for (size_t k = 0; k < only_b.size(); ++k) {
      unpaired_b[k]->unsafe_arena_set_allocated_connection(release(eb, only_b[k]));
    }
    auto put_back = [](google::protobuf::RepeatedPtrField<v1::Connection>& list, std::vector<v1::Connection*>& v) {
      for (v1::Connection* c : v) {
        if (c != nullptr) list.UnsafeArenaAddAllocated(c);
      }
    };
    put_back(ca, ea);
    if (&ca != &cb) put_back(cb, eb_own);
  } else {
    // Different arenas: swapping contents is the only safe move.
    for (size_t k = 0; k < matches.size(); ++k) {
      pairs[k]->mutable_a()->Swap(ca.Mutable(matches[k].a));
      pairs[k]->mutable_b()->Swap(cb.Mutable(matches[k].b));
    }
    for (size_t k = 0; k < only_a.size(); ++k) unpaired_a[k]->mutable_connection()->Swap(ca.Mutable(only_a[k]));
    for (size_t k = 0; k < only_b.size(); ++k) unpaired_b[k]->mutable_connection()->Swap(cb.Mutable(only_b[k]));
  }
  for (size_t k = 0; k < matches.size(); ++k) {
    if (!matches[k].by_isn) continue;
    v1::ConnectionPair* p = pairs[k];
    const Key ka{Fold(p->a().local()), Fold(p->a().remote())};
    const Key kb{Fold(p->b().local()), Fold(p->b().remote())};
    p->set_addresses_translated(!(ka.local == kb.remote && ka.remote == kb.local));
  }
}

}  // namespace tcbscope
