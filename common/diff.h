// What changed between two snapshots of one host's sockets: the polling
// source of the live change stream diffs each dump against the previous one.
//
// Sockets are matched by their kernel cookie (stable for a socket's life,
// never reused while the socket exists). A change lists the fields that
// moved, by their proto path ("state", "tcp_info.bytes_acked"); fields that
// move on every dump of a live socket — the last_*_ms ages, the timer's time
// to expiry, RTT and rate estimates — are not changes. Pure logic; the
// returned pointers point into the two snapshots passed in.
#ifndef TCBSCOPE_COMMON_DIFF_H_
#define TCBSCOPE_COMMON_DIFF_H_

#include <string>
#include <vector>

#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope {

struct ConnectionChange {
  const v1::Connection* before = nullptr;
  const v1::Connection* after = nullptr;
  std::vector<std::string> fields;  // in a fixed order: state first
};

struct SnapshotDiff {
  std::vector<const v1::Connection*> added;    // in `after` only
  std::vector<const v1::Connection*> removed;  // in `before` only
  std::vector<ConnectionChange> changed;
  bool empty() const { return added.empty() && removed.empty() && changed.empty(); }
};

// Sockets without a cookie (0: request sockets on some kernels) are matched by
// their endpoints and state instead.
SnapshotDiff DiffSnapshots(const google::protobuf::RepeatedPtrField<v1::Connection>& before,
                           const google::protobuf::RepeatedPtrField<v1::Connection>& after);

// The fields of one socket that changed (empty when none did).
std::vector<std::string> ChangedFields(const v1::Connection& before, const v1::Connection& after);

}  // namespace tcbscope

#endif  // TCBSCOPE_COMMON_DIFF_H_
