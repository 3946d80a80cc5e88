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

// What a connection's endpoints say, kept as protobuf merges a message field
// sent more than once: the last address and the last port.
struct EndpointText {
  absl::string_view address;
  uint32_t port = 0;
};

bool DecodeEndpoint(absl::string_view bytes, int depth, EndpointText* e) {
  using M = v1::Endpoint;
  if (depth < 0) return false;
  Wire w(bytes);
  uint32_t tag;
  while (w.more()) {
    if (!w.Tag(&tag)) return false;
    bool ok;
    switch (tag) {
      case Tag(M::kAddressFieldNumber, kLength): ok = w.Sized(&e->address); break;
      case Tag(M::kPortFieldNumber, kVarint): ok = w.U32(&e->port); break;
      default: ok = w.Skip(tag, depth);
    }
    if (!ok) return false;
  }
  return true;
}

bool DecodeTimer(absl::string_view bytes, int depth, Tcb* t) {
  using M = v1::Timer;
  if (depth < 0) return false;
  Wire w(bytes);
  uint32_t tag;
  while (w.more()) {
    if (!w.Tag(&tag)) return false;
    bool ok;
    switch (tag) {
      case Tag(M::kKindFieldNumber, kVarint): ok = w.Enum(&t->timer_kind); break;
      case Tag(M::kRetransmitsFieldNumber, kVarint): ok = w.U32(&t->timer_retransmits); break;
      default: ok = w.Skip(tag, depth);
    }
    if (!ok) return false;
  }
  return true;
}

bool DecodeTcpInfo(absl::string_view bytes, int depth, Tcb::Info* o) {
  using M = v1::TcpInfo;
  if (depth < 0) return false;
  Wire w(bytes);
  uint32_t tag;
  absl::string_view s;
  while (w.more()) {
    if (!w.Tag(&tag)) return false;
    bool ok;
    switch (tag) {
      case Tag(M::kAbsentFieldNumber, kLength):
        ok = w.Sized(&s);
        if (s == "snd_wnd" || s == "rcv_wnd") o->has_windows = false;
        break;
      case Tag(M::kBytesAckedFieldNumber, kVarint): ok = w.U64(&o->bytes_acked); break;
      case Tag(M::kBytesReceivedFieldNumber, kVarint): ok = w.U64(&o->bytes_received); break;
      case Tag(M::kBytesSentFieldNumber, kVarint): ok = w.U64(&o->bytes_sent); break;
      case Tag(M::kBytesRetransFieldNumber, kVarint): ok = w.U64(&o->bytes_retrans); break;
      case Tag(M::kSndWndFieldNumber, kVarint): ok = w.U32(&o->snd_wnd); break;
      case Tag(M::kRcvWndFieldNumber, kVarint): ok = w.U32(&o->rcv_wnd); break;
      case Tag(M::kLastDataSentMsFieldNumber, kVarint): ok = w.U32(&o->last_data_sent_ms); break;
      case Tag(M::kLastDataRecvMsFieldNumber, kVarint): ok = w.U32(&o->last_data_recv_ms); break;
      case Tag(M::kLastAckRecvMsFieldNumber, kVarint): ok = w.U32(&o->last_ack_recv_ms); break;
      case Tag(M::kSndWscaleFieldNumber, kVarint): ok = w.U32(&o->snd_wscale); break;
      case Tag(M::kRcvWscaleFieldNumber, kVarint): ok = w.U32(&o->rcv_wscale); break;
      case Tag(M::kAdvmssFieldNumber, kVarint): ok = w.U32(&o->advmss); break;
      case Tag(M::kSndMssFieldNumber, kVarint): ok = w.U32(&o->snd_mss); break;
      case Tag(M::kRttUsFieldNumber, kVarint): ok = w.U32(&o->rtt_us); break;
      case Tag(M::kTotalRetransFieldNumber, kVarint): ok = w.U32(&o->total_retrans); break;
      case Tag(M::kOptWscaleFieldNumber, kVarint): ok = w.Bool(&o->opt_wscale); break;
      case Tag(M::kOptSackFieldNumber, kVarint): ok = w.Bool(&o->opt_sack); break;
      case Tag(M::kOptTimestampsFieldNumber, kVarint): ok = w.Bool(&o->opt_timestamps); break;
      default: ok = w.Skip(tag, depth);
    }
    if (!ok) return false;
  }
  return true;
}

bool DecodeSeq(absl::string_view bytes, int depth, Tcb::Seq* o) {
  using M = v1::SequenceSpace;
  if (depth < 0) return false;
  Wire w(bytes);
  uint32_t tag;
  while (w.more()) {
    if (!w.Tag(&tag)) return false;
    bool ok;
    switch (tag) {
      case Tag(M::kSndUnaFieldNumber, kVarint): ok = w.U32(&o->snd_una); break;
      case Tag(M::kSndNxtFieldNumber, kVarint): ok = w.U32(&o->snd_nxt); break;
      case Tag(M::kRcvNxtFieldNumber, kVarint): ok = w.U32(&o->rcv_nxt); break;
      case Tag(M::kWriteSeqFieldNumber, kVarint): ok = w.U32(&o->write_seq); break;
      case Tag(M::kCopiedSeqFieldNumber, kVarint): ok = w.U32(&o->copied_seq); break;
      case Tag(M::kRcvWndFieldNumber, kVarint): ok = w.U32(&o->rcv_wnd); break;
      case Tag(M::kRcvWupFieldNumber, kVarint): ok = w.U32(&o->rcv_wup); break;
      case Tag(M::kBytesAckedFieldNumber, kVarint): ok = w.U64(&o->bytes_acked); break;
      case Tag(M::kBytesReceivedFieldNumber, kVarint): ok = w.U64(&o->bytes_received); break;
      default: ok = w.Skip(tag, depth);
    }
    if (!ok) return false;
  }
  return true;
}

// All of a Tcb but its addresses, which come back as text.
bool DecodeConnection(absl::string_view bytes, int depth, Tcb* t, EndpointText* local, EndpointText* remote) {
  using M = v1::Connection;
  if (depth < 0) return false;
  Wire w(bytes);
  uint32_t tag;
  absl::string_view s;
  while (w.more()) {
    if (!w.Tag(&tag)) return false;
    bool ok;
    switch (tag) {
      case Tag(M::kFamilyFieldNumber, kVarint): ok = w.Enum(&t->family); break;
      case Tag(M::kLocalFieldNumber, kLength): ok = w.Sized(&s) && DecodeEndpoint(s, depth - 1, local); break;
      case Tag(M::kRemoteFieldNumber, kLength): ok = w.Sized(&s) && DecodeEndpoint(s, depth - 1, remote); break;
      case Tag(M::kStateFieldNumber, kVarint): ok = w.Enum(&t->state); break;
      case Tag(M::kRecvQFieldNumber, kVarint): ok = w.U32(&t->recv_q); break;
      case Tag(M::kSendQFieldNumber, kVarint): ok = w.U32(&t->send_q); break;
      case Tag(M::kV6OnlyFieldNumber, kVarint): ok = w.Bool(&t->v6only); break;
      case Tag(M::kTimerFieldNumber, kLength):
        t->has_timer = true;
        ok = w.Sized(&s) && DecodeTimer(s, depth - 1, t);
        break;
      case Tag(M::kTcpInfoFieldNumber, kLength):
        t->has_tcp_info = true;
        ok = w.Sized(&s) && DecodeTcpInfo(s, depth - 1, &t->info);
        break;
      case Tag(M::kSeqFieldNumber, kLength):
        t->has_seq = true;
        ok = w.Sized(&s) && DecodeSeq(s, depth - 1, &t->seq);
        break;
      default: ok = w.Skip(tag, depth);
    }
    if (!ok) return false;
  }
  return true;
}

bool DecodeTimestamp(absl::string_view bytes, int depth, google::protobuf::Timestamp* ts) {
  if (depth < 0) return false;
  Wire w(bytes);
  uint32_t tag;
  uint64_t v = 0;
  while (w.more()) {
    if (!w.Tag(&tag)) return false;
    bool ok;
    switch (tag) {
      case Tag(google::protobuf::Timestamp::kSecondsFieldNumber, kVarint):
        ok = w.Varint(&v);
        ts->set_seconds(static_cast<int64_t>(v));
        break;
      case Tag(google::protobuf::Timestamp::kNanosFieldNumber, kVarint):
        ok = w.Varint(&v);
        ts->set_nanos(static_cast<int32_t>(static_cast<uint32_t>(v)));
        break;
      default: ok = w.Skip(tag, depth);
    }
    if (!ok) return false;
  }
  return true;
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
  // Each address text is parsed only when it differs from the last one on
  // its side (an address that does not parse is the unspecified one).
  auto resolve = [this](int side, const EndpointText& e) {
    LastAddress& l = last_address_[side];
    if (e.address != l.text) {
      absl::StatusOr<IpAddress> a = IpAddress::Parse(e.address);
      l.text.assign(e.address.data(), e.address.size());
      l.address = a.ok() ? *a : IpAddress();
    }
    return Endpoint{l.address, static_cast<uint16_t>(e.port)};
  };
  Wire w(wire);
  uint32_t tag;
  absl::string_view s;
  while (w.more()) {
    if (!w.Tag(&tag)) return Malformed();
    bool ok;
    switch (tag) {
      case Tag(M::kConnectionsFieldNumber, kLength): {
        Tcb& t = tcbs_.emplace_back();
        EndpointText local, remote;
        ok = w.Sized(&s) && DecodeConnection(s, kMaxDepth - 1, &t, &local, &remote);
        t.local = resolve(0, local);
        t.remote = resolve(1, remote);
        break;
      }
      case Tag(M::kCapturedAtFieldNumber, kLength): ok = w.Sized(&s) && DecodeTimestamp(s, kMaxDepth - 1, &captured_at_); break;
      case Tag(M::kDumpInterruptedFieldNumber, kVarint): ok = w.Bool(&dump_interrupted_); break;
      case Tag(M::kLastFieldNumber, kVarint): ok = w.Bool(&last_); break;
      case Tag(M::kTotalFieldNumber, kVarint): ok = w.U64(&total_); break;
      default: ok = w.Skip(tag, kMaxDepth);
    }
    if (!ok) return Malformed();
  }
  return absl::OkStatus();
}

}  // namespace tcbscope
