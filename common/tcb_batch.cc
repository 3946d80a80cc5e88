#include "common/tcb_batch.h"

#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope {
namespace {

// Wire types.
constexpr uint32_t kVarint = 0, kFixed64 = 1, kLength = 2, kStartGroup = 3, kEndGroup = 4, kFixed32 = 5;

constexpr uint32_t Tag(int field, uint32_t wire_type) { return static_cast<uint32_t>(field) << 3 | wire_type; }

// Protobuf's default limit on nesting, messages and groups together. The
// batch is the top; each message or group inside takes one more level.
constexpr int kMaxDepth = 100;

// One message's bytes, read front to back the way protobuf 3.21 reads them:
// a varint has at most 10 bytes and is taken modulo 2^64 (then cut to the
// field's width), a tag at most 5 bytes modulo 2^32, a length at most 5
// bytes and under 2 GiB. Every read returns false, and goes no further than
// the message's end, when the bytes are not there or not well-formed.
class Wire {
 public:
  explicit Wire(absl::string_view bytes) : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}

  bool more() const { return p_ != end_; }

  bool Varint(uint64_t* v) {
    if (p_ != end_ && static_cast<uint8_t>(*p_) < 0x80) {
      *v = static_cast<uint8_t>(*p_++);
      return true;
    }
    uint64_t r = 0;
    for (int i = 0; i < 10 && p_ != end_; ++i) {
      const uint64_t b = static_cast<uint8_t>(*p_++);
      r |= (b & 0x7f) << (7 * i);
      if (b < 0x80) {
        *v = r;
        return true;
      }
    }
    return false;
  }

  bool Tag(uint32_t* tag) {
    uint32_t r = 0;
    for (int i = 0; i < 5 && p_ != end_; ++i) {
      const uint32_t b = static_cast<uint8_t>(*p_++);
      r |= (b & 0x7f) << (7 * i);
      if (b < 0x80) {
        *tag = r;
        return true;
      }
    }
    return false;
  }

  // A length-delimited field's bytes.
  bool Sized(absl::string_view* bytes) {
    uint32_t n = 0;
    for (int i = 0; i < 5 && p_ != end_; ++i) {
      const uint32_t b = static_cast<uint8_t>(*p_++);
      if (i == 4 && b >= 8) return false;
      n |= (b & 0x7f) << (7 * i);
      if (b < 0x80) {
        if (n > static_cast<size_t>(end_ - p_)) return false;
        *bytes = absl::string_view(p_, n);
        p_ += n;
        return true;
      }
    }
    return false;
  }

  bool U32(uint32_t* f) {
    uint64_t v;
    if (!Varint(&v)) return false;
    *f = static_cast<uint32_t>(v);
    return true;
  }
  bool U64(uint64_t* f) { return Varint(f); }
  bool Bool(bool* f) {
    uint64_t v;
    if (!Varint(&v)) return false;
    *f = v != 0;
    return true;
  }
  // Proto3 enums are open: any 32-bit value is kept, as the generated
  // enums (whose range is all of int32) allow.
  template <typename E>
  bool Enum(E* f) {
    uint64_t v;
    if (!Varint(&v)) return false;
    *f = static_cast<E>(static_cast<int32_t>(static_cast<uint32_t>(v)));
    return true;
  }

  // Skips the field whose tag was just read: one nobody reads, or a known
  // one with an unexpected wire type (which protobuf keeps as unknown).
  // `depth`: the levels left to the enclosing message.
  bool Skip(uint32_t tag, int depth) {
    if ((tag >> 3) == 0) return false;  // field 0, never valid (tag 0 ends nothing here)
    switch (tag & 7) {
      case kVarint: {
        uint64_t v;
        return Varint(&v);
      }
      case kFixed64: return Advance(8);
      case kLength: {
        absl::string_view s;
        return Sized(&s);
      }
      case kStartGroup: {
        if (--depth < 0) return false;
        for (;;) {
          uint32_t t;
          if (!Tag(&t)) return false;  // also the message's end before the group's
          if ((t & 7) == kEndGroup) return t == tag + 1;  // its own end, not another's
          if (!Skip(t, depth)) return false;
        }
      }
      case kFixed32: return Advance(4);
      default: return false;  // an end-group tag outside its group; wire types 6 and 7
    }
  }

 private:
  bool Advance(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) return false;
    p_ += n;
    return true;
  }

  const char* p_;
  const char* const end_;
};

// What a message's reader made of one field.
enum class Field { kRead, kMalformed, kNotMine };
Field FieldRead(bool ok) { return ok ? Field::kRead : Field::kMalformed; }

// Reads a message's fields in turn: `field(tag, wire)` reads one it knows
// (kRead, or kMalformed) or leaves it (kNotMine), and it is skipped.
// `depth`: the levels left at this message (protobuf's count); below zero,
// the message is nested too deep.
template <typename F>
bool ReadMessage(absl::string_view bytes, int depth, F field) {
  if (depth < 0) return false;
  Wire w(bytes);
  uint32_t tag;
  while (w.more()) {
    if (!w.Tag(&tag)) return false;
    const Field f = field(tag, w);
    if (f == Field::kMalformed || (f == Field::kNotMine && !w.Skip(tag, depth))) return false;
  }
  return true;
}

// What a connection's endpoints say, kept as protobuf merges a message field
// sent more than once: the last address and the last port.
struct EndpointText {
  absl::string_view address;
  uint32_t port = 0;
};

bool DecodeEndpoint(absl::string_view bytes, int depth, EndpointText* e) {
  using M = v1::Endpoint;
  return ReadMessage(bytes, depth, [e](uint32_t tag, Wire& w) {
    switch (tag) {
      case Tag(M::kAddressFieldNumber, kLength): return FieldRead(w.Sized(&e->address));
      case Tag(M::kPortFieldNumber, kVarint): return FieldRead(w.U32(&e->port));
      default: return Field::kNotMine;
    }
  });
}

bool DecodeTimer(absl::string_view bytes, int depth, Tcb* t) {
  using M = v1::Timer;
  return ReadMessage(bytes, depth, [t](uint32_t tag, Wire& w) {
    switch (tag) {
      case Tag(M::kKindFieldNumber, kVarint): return FieldRead(w.Enum(&t->timer_kind));
      case Tag(M::kRetransmitsFieldNumber, kVarint): return FieldRead(w.U32(&t->timer_retransmits));
      default: return Field::kNotMine;
    }
  });
}

bool DecodeTcpInfo(absl::string_view bytes, int depth, Tcb::Info* o) {
  using M = v1::TcpInfo;
  return ReadMessage(bytes, depth, [o](uint32_t tag, Wire& w) {
    switch (tag) {
      case Tag(M::kAbsentFieldNumber, kLength): {
        absl::string_view s;
        if (!w.Sized(&s)) return Field::kMalformed;
        if (s == "snd_wnd" || s == "rcv_wnd") o->has_windows = false;
        return Field::kRead;
      }
      case Tag(M::kBytesAckedFieldNumber, kVarint): return FieldRead(w.U64(&o->bytes_acked));
      case Tag(M::kBytesReceivedFieldNumber, kVarint): return FieldRead(w.U64(&o->bytes_received));
      case Tag(M::kBytesSentFieldNumber, kVarint): return FieldRead(w.U64(&o->bytes_sent));
      case Tag(M::kBytesRetransFieldNumber, kVarint): return FieldRead(w.U64(&o->bytes_retrans));
      case Tag(M::kSndWndFieldNumber, kVarint): return FieldRead(w.U32(&o->snd_wnd));
      case Tag(M::kRcvWndFieldNumber, kVarint): return FieldRead(w.U32(&o->rcv_wnd));
      case Tag(M::kLastDataSentMsFieldNumber, kVarint): return FieldRead(w.U32(&o->last_data_sent_ms));
      case Tag(M::kLastDataRecvMsFieldNumber, kVarint): return FieldRead(w.U32(&o->last_data_recv_ms));
      case Tag(M::kLastAckRecvMsFieldNumber, kVarint): return FieldRead(w.U32(&o->last_ack_recv_ms));
      case Tag(M::kSndWscaleFieldNumber, kVarint): return FieldRead(w.U32(&o->snd_wscale));
      case Tag(M::kRcvWscaleFieldNumber, kVarint): return FieldRead(w.U32(&o->rcv_wscale));
      case Tag(M::kAdvmssFieldNumber, kVarint): return FieldRead(w.U32(&o->advmss));
      case Tag(M::kSndMssFieldNumber, kVarint): return FieldRead(w.U32(&o->snd_mss));
      case Tag(M::kRttUsFieldNumber, kVarint): return FieldRead(w.U32(&o->rtt_us));
      case Tag(M::kTotalRetransFieldNumber, kVarint): return FieldRead(w.U32(&o->total_retrans));
      case Tag(M::kOptWscaleFieldNumber, kVarint): return FieldRead(w.Bool(&o->opt_wscale));
      case Tag(M::kOptSackFieldNumber, kVarint): return FieldRead(w.Bool(&o->opt_sack));
      case Tag(M::kOptTimestampsFieldNumber, kVarint): return FieldRead(w.Bool(&o->opt_timestamps));
      default: return Field::kNotMine;
    }
  });
}

bool DecodeSeq(absl::string_view bytes, int depth, Tcb::Seq* o) {
  using M = v1::SequenceSpace;
  return ReadMessage(bytes, depth, [o](uint32_t tag, Wire& w) {
    switch (tag) {
      case Tag(M::kSndUnaFieldNumber, kVarint): return FieldRead(w.U32(&o->snd_una));
      case Tag(M::kSndNxtFieldNumber, kVarint): return FieldRead(w.U32(&o->snd_nxt));
      case Tag(M::kRcvNxtFieldNumber, kVarint): return FieldRead(w.U32(&o->rcv_nxt));
      case Tag(M::kWriteSeqFieldNumber, kVarint): return FieldRead(w.U32(&o->write_seq));
      case Tag(M::kCopiedSeqFieldNumber, kVarint): return FieldRead(w.U32(&o->copied_seq));
      case Tag(M::kRcvWndFieldNumber, kVarint): return FieldRead(w.U32(&o->rcv_wnd));
      case Tag(M::kRcvWupFieldNumber, kVarint): return FieldRead(w.U32(&o->rcv_wup));
      case Tag(M::kBytesAckedFieldNumber, kVarint): return FieldRead(w.U64(&o->bytes_acked));
      case Tag(M::kBytesReceivedFieldNumber, kVarint): return FieldRead(w.U64(&o->bytes_received));
      default: return Field::kNotMine;
    }
  });
}

// A sub-message field: its bytes, read by `decode` one level deeper.
template <typename D>
Field Nested(Wire& w, int depth, D decode) {
  absl::string_view s;
  return FieldRead(w.Sized(&s) && decode(s, depth - 1));
}

// All of a Tcb but its addresses, which come back as text.
bool DecodeConnection(absl::string_view bytes, int depth, Tcb* t, EndpointText* local, EndpointText* remote) {
  using M = v1::Connection;
  return ReadMessage(bytes, depth, [&](uint32_t tag, Wire& w) {
    switch (tag) {
      case Tag(M::kFamilyFieldNumber, kVarint): return FieldRead(w.Enum(&t->family));
      case Tag(M::kStateFieldNumber, kVarint): return FieldRead(w.Enum(&t->state));
      case Tag(M::kRecvQFieldNumber, kVarint): return FieldRead(w.U32(&t->recv_q));
      case Tag(M::kSendQFieldNumber, kVarint): return FieldRead(w.U32(&t->send_q));
      case Tag(M::kV6OnlyFieldNumber, kVarint): return FieldRead(w.Bool(&t->v6only));
      case Tag(M::kLocalFieldNumber, kLength):
        return Nested(w, depth, [&](absl::string_view s, int d) { return DecodeEndpoint(s, d, local); });
      case Tag(M::kRemoteFieldNumber, kLength):
        return Nested(w, depth, [&](absl::string_view s, int d) { return DecodeEndpoint(s, d, remote); });
      case Tag(M::kTimerFieldNumber, kLength):
        t->has_timer = true;
        return Nested(w, depth, [&](absl::string_view s, int d) { return DecodeTimer(s, d, t); });
      case Tag(M::kTcpInfoFieldNumber, kLength):
        t->has_tcp_info = true;
        return Nested(w, depth, [&](absl::string_view s, int d) { return DecodeTcpInfo(s, d, &t->info); });
      case Tag(M::kSeqFieldNumber, kLength):
        t->has_seq = true;
        return Nested(w, depth, [&](absl::string_view s, int d) { return DecodeSeq(s, d, &t->seq); });
      default: return Field::kNotMine;
    }
  });
}

bool DecodeTimestamp(absl::string_view bytes, int depth, google::protobuf::Timestamp* ts) {
  using M = google::protobuf::Timestamp;
  return ReadMessage(bytes, depth, [ts](uint32_t tag, Wire& w) {
    uint64_t v = 0;
    switch (tag) {
      case Tag(M::kSecondsFieldNumber, kVarint):
        if (!w.Varint(&v)) return Field::kMalformed;
        ts->set_seconds(static_cast<int64_t>(v));
        return Field::kRead;
      case Tag(M::kNanosFieldNumber, kVarint):
        if (!w.Varint(&v)) return Field::kMalformed;
        ts->set_nanos(static_cast<int32_t>(static_cast<uint32_t>(v)));
        return Field::kRead;
      default: return Field::kNotMine;
    }
  });
}

absl::Status Malformed() {
  return absl::InvalidArgumentError("a ConnectionBatch that is not well-formed protobuf");
}

}  // namespace

absl::Status TcbBatch::Decode(absl::string_view wire) {
  status_ = Read(wire);
  return status_;
}

absl::Status TcbBatch::Read(absl::string_view wire) {
  using M = v1::ConnectionBatch;
  tcbs_.clear();
  captured_at_.Clear();
  dump_interrupted_ = false;
  last_ = false;
  total_ = 0;
  auto resolve = [this](int side, const EndpointText& e) {
    return Endpoint{last_address_[side].Of(e.address), static_cast<uint16_t>(e.port)};
  };
  // The batch is the top level: kMaxDepth levels left at it.
  const bool ok = ReadMessage(wire, kMaxDepth, [&](uint32_t tag, Wire& w) {
    switch (tag) {
      case Tag(M::kConnectionsFieldNumber, kLength): {
        Tcb& t = tcbs_.emplace_back();
        EndpointText local, remote;
        const Field f = Nested(w, kMaxDepth, [&](absl::string_view s, int d) {
          return DecodeConnection(s, d, &t, &local, &remote);
        });
        t.local = resolve(0, local);
        t.remote = resolve(1, remote);
        return f;
      }
      case Tag(M::kCapturedAtFieldNumber, kLength):
        return Nested(w, kMaxDepth, [&](absl::string_view s, int d) { return DecodeTimestamp(s, d, &captured_at_); });
      case Tag(M::kDumpInterruptedFieldNumber, kVarint): return FieldRead(w.Bool(&dump_interrupted_));
      case Tag(M::kLastFieldNumber, kVarint): return FieldRead(w.Bool(&last_));
      case Tag(M::kTotalFieldNumber, kVarint): return FieldRead(w.U64(&total_));
      default: return Field::kNotMine;
    }
  });
  if (!ok) return Malformed();
  return absl::OkStatus();
}

}  // namespace tcbscope
