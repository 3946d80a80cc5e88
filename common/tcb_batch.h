// TcbBatch: one ListConnections batch (a tcbscope.v1.ConnectionBatch) read
// from its wire bytes straight into Tcbs (common/tcb.h), without building a
// message.
//
// `correlate` keeps nothing of a connection but its Tcb. Parsing each batch
// into messages (a Connection, two Endpoints, a TcpInfo and a SequenceSpace,
// two address strings) and then copying out what a Tcb holds was about a
// quarter of the command's CPU at 2 x 100k connections; this reads the same
// bytes once (docs/performance.md).
//
// The contract, checked by tests/common/tcb_batch_test.cc and by a fuzzer
// that compares the two on arbitrary input (tests/fuzz/tcb_batch_fuzzer.cc):
// for every input protobuf's parser accepts as a ConnectionBatch, Decode
// accepts it too, and each Tcb equals TcbOf of the parsed connection (with
// protobuf's rules: the last value of a field repeated wins, a message field
// repeated is merged, unknown fields and groups are skipped, nesting is
// limited to 100). Decode checks the structure of everything (tags, wire
// types, lengths, groups) but not the content of what a Tcb does not read:
// a string it skips is not checked for UTF-8, nor a message it skips for its
// inner structure, so it accepts some inputs protobuf refuses.
//
// Not thread-safe; one per stream, reused batch after batch.
#ifndef TCBSCOPE_COMMON_TCB_BATCH_H_
#define TCBSCOPE_COMMON_TCB_BATCH_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/tcb.h"
#include "google/protobuf/timestamp.pb.h"

namespace tcbscope {

class TcbBatch {
 public:
  // Replaces what the batch held with the batch encoded in `wire`.
  // InvalidArgument when `wire` is not a well-formed encoding; the batch's
  // contents are then unspecified.
  absl::Status Decode(absl::string_view wire);
  // What the last Decode returned (OK before the first), or what the last
  // SetUnreadable said.
  const absl::Status& status() const { return status_; }
  // The batch's bytes could not even be had: holds nothing, and says why.
  void SetUnreadable(absl::Status why) {
    tcbs_.clear();
    status_ = std::move(why);
  }

  // One per connection, in the order sent.
  const std::vector<Tcb>& tcbs() const { return tcbs_; }
  // The rest of ConnectionBatch, as its accessors give it.
  const google::protobuf::Timestamp& captured_at() const { return captured_at_; }
  bool dump_interrupted() const { return dump_interrupted_; }
  bool last() const { return last_; }
  uint64_t total() const { return total_; }

  // Where a caller may join a message that arrived in pieces before
  // decoding it, so that its memory is reused batch after batch.
  std::string* scratch() { return &scratch_; }

 private:
  absl::Status Read(absl::string_view wire);

  absl::Status status_;
  std::vector<Tcb> tcbs_;
  google::protobuf::Timestamp captured_at_;
  bool dump_interrupted_ = false;
  bool last_ = false;
  uint64_t total_ = 0;
  std::string scratch_;
  LastAddress last_address_[2];  // local, remote
};

}  // namespace tcbscope

#endif  // TCBSCOPE_COMMON_TCB_BATCH_H_
