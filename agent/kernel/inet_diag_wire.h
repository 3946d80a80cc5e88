// Writes sock_diag (inet_diag) socket messages straight into the protobuf wire
// format of a v1::ConnectionBatch, without building a v1::Connection.
//
// A full listing's agent CPU was about two parts the kernel's dump and one
// part the agent's own, and of the agent's own the largest share was
// building each socket's Connection message only to serialize it and throw it
// away (docs/performance.md). AppendConnectionWire does both in one pass.
//
// The contract, which the tests and the inet_diag fuzzer hold it to: for any
// message, what it appends is byte for byte the serialization of the
// Connection that ParseInetDiagMessage fills (then given the same sequence
// record and the netns name, then ConnectionFields::Trim), framed as field 1
// of a ConnectionBatch; and it refuses exactly the messages the parser
// refuses. Pure functions over bytes, like the parser: arbitrary bytes give
// an outcome, never a crash.
#ifndef TCBSCOPE_AGENT_KERNEL_INET_DIAG_WIRE_H_
#define TCBSCOPE_AGENT_KERNEL_INET_DIAG_WIRE_H_

#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "agent/kernel/bpf/tcb_records.h"
#include "common/connection_fields.h"
#include "google/protobuf/message_lite.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope::kernel {

// A growable byte buffer in malloc'd memory whose bytes can be handed over
// (Release) to whoever will free() them: gRPC sends a batch that way, without
// copying it. Move-only; not thread-safe.
class WireBuffer {
 public:
  WireBuffer() = default;
  WireBuffer(const WireBuffer&) = delete;
  WireBuffer& operator=(const WireBuffer&) = delete;
  WireBuffer(WireBuffer&& other) noexcept;
  WireBuffer& operator=(WireBuffer&& other) noexcept;
  ~WireBuffer() { std::free(data_); }

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  absl::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }

  // At least `n` writable bytes past size(); returns where they start. The
  // pointer is valid until the next Reserve or Release.
  uint8_t* Reserve(size_t n);
  // Marks the bytes up to `end` (within what Reserve gave) as written.
  void Commit(uint8_t* end) { size_ = static_cast<size_t>(end - data_); }
  // Drops the bytes from `size` on. REQUIRES: size <= size().
  void Truncate(size_t size) { size_ = size; }
  // Hands the bytes over (null when there are none; free() them) and leaves
  // the buffer empty. The next Reserve starts with as much room as this
  // buffer had, so a stream of like batches does not regrow each one.
  uint8_t* Release();

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
  size_t last_capacity_ = 0;
};

// Appends `message` as field `number` (tag, length, bytes) of the message
// being written in `out`; the serialization protobuf itself gives.
void AppendMessageField(int number, const google::protobuf::MessageLite& message, WireBuffer* out);

// Appends `message`'s own fields, unframed (a ConnectionBatch's fields after
// its connections, say).
void AppendMessageBytes(const google::protobuf::MessageLite& message, WireBuffer* out);

enum class WireOutcome {
  kEncoded,       // the connection was appended
  kMalformed,     // ParseInetDiagMessage refuses the message; nothing appended
  kNeedsMessage,  // the message repeats its tcp_info attribute, which the
                  // parser merges in a way not worth copying: build the
                  // Connection instead; nothing appended
};

// The sequence record of the row (cookie, family as AF_*, state as TCP_*),
// or null. Asked only for rows that can have one (not time-wait rows), and
// only when `fields` has Connection.seq.
using SeqLookup = absl::FunctionRef<const tcb_seq_record*(uint64_t cookie, int family, int state)>;

// Appends the connection `msg` reports as ConnectionBatch field 1. `netns`
// and `netns_name` tag it as ParseFromSource does; only the fields `fields`
// has are written.
WireOutcome AppendConnectionWire(const nlmsghdr* msg, uint64_t netns, absl::string_view netns_name,
                                 const ConnectionFields& fields, SeqLookup seq, WireBuffer* out);

// The v1::SequenceSpace fields a sequence record fills, in field-number
// order: X(proto_field, ProtoField, value), the value read from record `r`.
#define TCB_SEQUENCE_FIELDS(X, r)                      \
  X(snd_una, SndUna, (r).snd_una)                      \
  X(snd_nxt, SndNxt, (r).snd_nxt)                      \
  X(rcv_nxt, RcvNxt, (r).rcv_nxt)                      \
  X(write_seq, WriteSeq, (r).write_seq)                \
  X(copied_seq, CopiedSeq, (r).copied_seq)             \
  X(snd_wnd, SndWnd, (r).snd_wnd)                      \
  X(rcv_wnd, RcvWnd, (r).rcv_wnd)                      \
  X(rcv_wup, RcvWup, (r).rcv_wup)                      \
  X(bytes_acked, BytesAcked, (r).bytes_acked)          \
  X(bytes_received, BytesReceived, (r).bytes_received)

// Sets the fields of `out` that the record `r` fills: what a built Connection
// gets where the encoder writes TCB_SEQUENCE_FIELDS.
inline void FillSequenceSpace(const tcb_seq_record& r, v1::SequenceSpace* out) {
#define TCB_SET(name, Name, value) out->set_##name(value);
  TCB_SEQUENCE_FIELDS(TCB_SET, r)
#undef TCB_SET
}

}  // namespace tcbscope::kernel

#endif  // TCBSCOPE_AGENT_KERNEL_INET_DIAG_WIRE_H_
