#include "common/diff.h"

#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace tcbscope {
namespace {

// The fields a change is made of. Everything not listed either identifies
// the socket (endpoints, inode, cookie) or moves on every dump.
struct Field {
  const char* name;
  uint64_t (*get)(const v1::Connection&);
};

#define TCB_FIELD(path, expr) {path, [](const v1::Connection& c) -> uint64_t { return static_cast<uint64_t>(expr); }}
const Field kFields[] = {
    TCB_FIELD("state", c.state()),
    TCB_FIELD("recv_q", c.recv_q()),
    TCB_FIELD("send_q", c.send_q()),
    TCB_FIELD("shutdown", c.shutdown()),
    TCB_FIELD("timer.kind", c.timer().kind()),
    TCB_FIELD("timer.retransmits", c.timer().retransmits()),
    TCB_FIELD("tcp_info.ca_state", c.tcp_info().ca_state()),
    TCB_FIELD("tcp_info.retransmits", c.tcp_info().retransmits()),
    TCB_FIELD("tcp_info.probes", c.tcp_info().probes()),
    TCB_FIELD("tcp_info.backoff", c.tcp_info().backoff()),
    TCB_FIELD("tcp_info.options", c.tcp_info().options()),
    TCB_FIELD("tcp_info.snd_mss", c.tcp_info().snd_mss()),
    TCB_FIELD("tcp_info.pmtu", c.tcp_info().pmtu()),
    TCB_FIELD("tcp_info.unacked", c.tcp_info().unacked()),
    TCB_FIELD("tcp_info.lost", c.tcp_info().lost()),
    TCB_FIELD("tcp_info.retrans", c.tcp_info().retrans()),
    TCB_FIELD("tcp_info.total_retrans", c.tcp_info().total_retrans()),
    TCB_FIELD("tcp_info.snd_cwnd", c.tcp_info().snd_cwnd()),
    TCB_FIELD("tcp_info.snd_ssthresh", c.tcp_info().snd_ssthresh()),
    TCB_FIELD("tcp_info.bytes_sent", c.tcp_info().bytes_sent()),
    TCB_FIELD("tcp_info.bytes_retrans", c.tcp_info().bytes_retrans()),
    TCB_FIELD("tcp_info.bytes_acked", c.tcp_info().bytes_acked()),
    TCB_FIELD("tcp_info.bytes_received", c.tcp_info().bytes_received()),
    TCB_FIELD("tcp_info.segs_out", c.tcp_info().segs_out()),
    TCB_FIELD("tcp_info.segs_in", c.tcp_info().segs_in()),
    TCB_FIELD("tcp_info.snd_wnd", c.tcp_info().snd_wnd()),
    TCB_FIELD("tcp_info.rcv_wnd", c.tcp_info().rcv_wnd()),
    TCB_FIELD("tcp_info.total_rto", c.tcp_info().total_rto()),
};
#undef TCB_FIELD

// The identity of a socket without a cookie.
std::string EndpointKey(const v1::Connection& c) {
  return absl::StrCat(c.local().address(), "|", c.local().port(), "|", c.remote().address(), "|", c.remote().port(),
                      "|", c.state());
}

}  // namespace

std::vector<std::string> ChangedFields(const v1::Connection& before, const v1::Connection& after) {
  std::vector<std::string> out;
  // A socket that loses its tcp_info (an orphan turning into a TIME-WAIT
  // mini-socket) has not had its counters reset: what cannot be seen on
  // either side is not a change.
  const bool both_info = before.has_tcp_info() && after.has_tcp_info();
  for (const Field& f : kFields) {
    if (!both_info && absl::string_view(f.name).substr(0, 9) == "tcp_info.") continue;
    if (f.get(before) != f.get(after)) out.emplace_back(f.name);
  }
  if (!before.congestion().empty() && !after.congestion().empty() && before.congestion() != after.congestion()) {
    out.emplace_back("congestion");
  }
  if (before.owners_size() != after.owners_size()) out.emplace_back("owners");
  return out;
}

SnapshotDiff DiffSnapshots(const google::protobuf::RepeatedPtrField<v1::Connection>& before,
                           const google::protobuf::RepeatedPtrField<v1::Connection>& after) {
  SnapshotDiff d;
  absl::flat_hash_map<uint64_t, const v1::Connection*> by_cookie;
  absl::flat_hash_map<std::string, const v1::Connection*> by_endpoints;
  by_cookie.reserve(before.size());
  for (const v1::Connection& c : before) {
    if (c.cookie() != 0) {
      by_cookie.emplace(c.cookie(), &c);
    } else {
      by_endpoints.emplace(EndpointKey(c), &c);
    }
  }
  for (const v1::Connection& c : after) {
    const v1::Connection* prev = nullptr;
    if (c.cookie() != 0) {
      auto it = by_cookie.find(c.cookie());
      if (it != by_cookie.end()) {
        prev = it->second;
        by_cookie.erase(it);
      }
    } else {
      auto it = by_endpoints.find(EndpointKey(c));
      if (it != by_endpoints.end()) {
        prev = it->second;
        by_endpoints.erase(it);
      }
    }
    if (prev == nullptr) {
      d.added.push_back(&c);
      continue;
    }
    std::vector<std::string> fields = ChangedFields(*prev, c);
    if (!fields.empty()) d.changed.push_back(ConnectionChange{prev, &c, std::move(fields)});
  }
  // What is left of `before` is gone; report it in snapshot order.
  for (const v1::Connection& c : before) {
    if ((c.cookie() != 0 && by_cookie.contains(c.cookie())) ||
        (c.cookie() == 0 && by_endpoints.contains(EndpointKey(c)))) {
      d.removed.push_back(&c);
    }
  }
  return d;
}

}  // namespace tcbscope
