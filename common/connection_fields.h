// ConnectionFields: which fields of a v1::Connection a ListConnections caller
// asked for (ListConnectionsRequest.fields, a FieldMask).
//
// Pairing reads ~40 of a connection's ~110 values; sending only those halves
// what the agent serializes and the client receives and parses
// (docs/design-notes.md, "A request may name the fields it reads").
//
// Value type, immutable after construction, safe to share across threads.
#ifndef TCBSCOPE_COMMON_CONNECTION_FIELDS_H_
#define TCBSCOPE_COMMON_CONNECTION_FIELDS_H_

#include <bitset>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/field_mask.pb.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope {

class ConnectionFields {
 public:
  // Every field (what an empty mask means).
  ConnectionFields() = default;

  // InvalidArgument naming the first path that is neither a Connection field
  // nor "tcp_info.<a TcpInfo field>".
  static absl::StatusOr<ConnectionFields> FromMask(const google::protobuf::FieldMask& mask);

  bool all() const { return all_; }
  // `number` is a v1::Connection field number.
  bool Has(int number) const { return all_ || (number >= 0 && number < kMaxField && top_[number]); }
  // `number` is a v1::TcpInfo field number. Only named fields are had:
  // kernel_bytes, truncated and absent are metadata, which whoever fills
  // tcp_info sets whenever it fills any of it (absent naming only missing
  // fields that are had).
  bool HasTcpInfo(int number) const {
    return all_ || (number >= 0 && number < kMaxField && info_[number]);
  }

  // Clears the Connection fields not asked for (tcp_info's own fields are
  // left to whoever fills it: see HasTcpInfo).
  void Trim(v1::Connection* c) const;

 private:
  static constexpr int kMaxField = 128;
  bool all_ = true;
  std::bitset<kMaxField> top_, info_;
  std::vector<int> clear_;  // Connection fields Trim clears
};

// Clears one field of `c` by number, without reflection (Trim runs per
// connection). Returns false for a number Connection does not have.
bool ClearConnectionField(int number, v1::Connection* c);

}  // namespace tcbscope

#endif  // TCBSCOPE_COMMON_CONNECTION_FIELDS_H_
