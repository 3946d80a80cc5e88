// How gRPC hands a received ConnectionBatch to a TcbBatch (common/tcb_batch.h),
// for a call whose response type is TcbBatch: the message's bytes, joined
// when they came in more than one slice, are decoded in one pass.
//
// Deserialize never fails. A batch that does not decode, or whose buffer
// cannot be read, is still a successful read, whose TcbBatch::status() says
// why: a failed read would leave the call open until the agent had sent the
// rest of the stream (which no one reads) or the deadline passed, where the
// reader, seeing the status, ends the call at once (client/agent_client.cc).
#ifndef TCBSCOPE_CLIENT_TCB_BATCH_TRAITS_H_
#define TCBSCOPE_CLIENT_TCB_BATCH_TRAITS_H_

#include <string>
#include <vector>

#include "common/tcb_batch.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/impl/codegen/serialization_traits.h"
#include "grpcpp/support/status.h"

template <>
class grpc::SerializationTraits<tcbscope::TcbBatch> {
 public:
  static grpc::Status Serialize(const tcbscope::TcbBatch&, grpc::ByteBuffer*, bool*) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "a TcbBatch is only ever received");
  }
  static grpc::Status Deserialize(grpc::ByteBuffer* buffer, tcbscope::TcbBatch* batch) {
    std::vector<grpc::Slice> slices;
    grpc::Status s = buffer->Dump(&slices);
    buffer->Clear();
    if (!s.ok()) {
      batch->SetUnreadable(absl::InternalError(s.error_message()));
      return grpc::Status::OK;
    }
    absl::string_view wire;
    if (slices.size() == 1) {
      wire = absl::string_view(reinterpret_cast<const char*>(slices[0].begin()), slices[0].size());
    } else {
      std::string* joined = batch->scratch();
      joined->clear();
      for (const grpc::Slice& slice : slices) joined->append(reinterpret_cast<const char*>(slice.begin()), slice.size());
      wire = *joined;
    }
    (void)batch->Decode(wire);  // kept in batch->status()
    return grpc::Status::OK;
  }
};

#endif  // TCBSCOPE_CLIENT_TCB_BATCH_TRAITS_H_
