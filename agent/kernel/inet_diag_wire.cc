#include "agent/kernel/inet_diag_wire.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>

#include "agent/kernel/inet_diag_parser.h"
#include "agent/kernel/tcp_info_wire.h"
#include "common/ip_address.h"
#include "google/protobuf/io/coded_stream.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope::kernel {

WireBuffer::WireBuffer(WireBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      capacity_(std::exchange(other.capacity_, 0)),
      last_capacity_(std::exchange(other.last_capacity_, 0)) {}

WireBuffer& WireBuffer::operator=(WireBuffer&& other) noexcept {
  if (this != &other) {
    std::free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
    last_capacity_ = std::exchange(other.last_capacity_, 0);
  }
  return *this;
}

uint8_t* WireBuffer::Reserve(size_t n) {
  if (capacity_ - size_ < n) {
    constexpr size_t kFirst = 64 << 10;
    const size_t want = std::max({size_ + n, capacity_ * 2, last_capacity_, kFirst});
    void* grown = std::realloc(data_, want);
    if (grown == nullptr) std::abort();  // as operator new would, without exceptions
    data_ = static_cast<uint8_t*>(grown);
    capacity_ = want;
  }
  return data_ + size_;
}

uint8_t* WireBuffer::Release() {
  uint8_t* bytes = size_ == 0 ? nullptr : data_;
  if (bytes == nullptr) std::free(data_);
  if (capacity_ != 0) last_capacity_ = capacity_;
  data_ = nullptr;
  size_ = 0;
  capacity_ = 0;
  return bytes;
}

namespace {

using google::protobuf::io::CodedOutputStream;

constexpr int kVarint = 0;
constexpr int kLengthDelimited = 2;

inline uint8_t* PutTag(int number, int wire_type, uint8_t* p) {
  return CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(number) << 3 | wire_type, p);
}

// One scalar field as proto3 writes it: nothing when it is zero (the
// default), a bool as 0/1, an enum as a sign-extended int32.
template <typename T>
inline uint8_t* PutScalar(int number, T value, uint8_t* p) {
  if (value == T{}) return p;
  p = PutTag(number, kVarint, p);
  if constexpr (std::is_same_v<T, bool>) {
    *p++ = 1;
    return p;
  } else if constexpr (std::is_enum_v<T>) {
    return CodedOutputStream::WriteVarint64ToArray(static_cast<uint64_t>(static_cast<int64_t>(value)), p);
  } else {
    static_assert(std::is_same_v<T, uint32_t> || std::is_same_v<T, uint64_t>);
    return CodedOutputStream::WriteVarint64ToArray(value, p);
  }
}

inline uint8_t* PutString(int number, const char* s, size_t n, uint8_t* p) {
  if (n == 0) return p;
  p = PutTag(number, kLengthDelimited, p);
  p = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(n), p);
  std::memcpy(p, s, n);
  return p + n;
}

// A sub-message is written with `room` bytes left for its length before its
// body; Close writes the length there and moves the body when the length's
// varint is shorter or longer (the bound leaves room for that). Room for two
// bytes (up to 16 KiB) suits a connection and its tcp_info; the small
// sub-messages, always under 128 bytes, take one and never move.
constexpr int kSmall = 1;
constexpr int kLarge = 2;

inline uint8_t* Open(int number, int room, uint8_t* p) { return PutTag(number, kLengthDelimited, p) + room; }

inline uint8_t* Close(uint8_t* body, int room, uint8_t* end) {
  const size_t len = static_cast<size_t>(end - body);
  const size_t need = CodedOutputStream::VarintSize32(static_cast<uint32_t>(len));
  uint8_t* at = body - room;
  if (need != static_cast<size_t>(room)) {
    std::memmove(at + need, body, len);
    end = at + need + len;
  }
  CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(len), at);
  return end;
}

// The type protobuf's generated setter takes, so a value converts as set_x
// would convert it.
#define TCB_FIELD_TYPE(Message, name) std::decay_t<decltype(std::declval<const Message&>().name())>

// The tcp_info fields' numbers must rise, or the bytes would not be
// protobuf's.
#define TCB_NUMBER(name, Name, value) v1::TcpInfo::k##Name##FieldNumber,
constexpr int kTcpInfoNumbers[] = {TCB_TCP_INFO_FIELDS(TCB_NUMBER, unused)};
#undef TCB_NUMBER
constexpr bool Rising(const int* n, size_t count) {
  for (size_t i = 1; i < count; ++i) {
    if (n[i] <= n[i - 1]) return false;
  }
  return true;
}
static_assert(Rising(kTcpInfoNumbers, sizeof(kTcpInfoNumbers) / sizeof(kTcpInfoNumbers[0])));
static_assert(kTcpInfoNumbers[0] > v1::TcpInfo::kAbsentFieldNumber);

uint8_t* PutEndpoint(int number, const IpAddress& address, uint16_t port_be, uint32_t ifindex, uint8_t* p) {
  uint8_t* body = Open(number, kSmall, p);
  char text[IpAddress::kMaxTextLength + 1];
  p = PutString(v1::Endpoint::kAddressFieldNumber, text, address.FormatTo(text), body);
  p = PutScalar<uint32_t>(v1::Endpoint::kPortFieldNumber, ntohs(port_be), p);
  p = PutScalar<uint32_t>(v1::Endpoint::kIfindexFieldNumber, ifindex, p);
  return Close(body, kSmall, p);
}

uint8_t* PutTcpInfo(const uint8_t* data, size_t len, const ConnectionFields& fields, uint8_t* p) {
  uint8_t* body = Open(v1::Connection::kTcpInfoFieldNumber, kLarge, p);
  TcpInfoWire w;
  std::memset(&w, 0, sizeof(w));
  std::memcpy(&w, data, std::min(len, sizeof(w)));
  p = PutScalar<uint32_t>(v1::TcpInfo::kKernelBytesFieldNumber, static_cast<uint32_t>(len), body);
  if (len < sizeof(w)) {
    p = PutScalar(v1::TcpInfo::kTruncatedFieldNumber, true, p);
    ForEachAbsentField(len, fields, [&](const char* name) {
      p = PutString(v1::TcpInfo::kAbsentFieldNumber, name, std::strlen(name), p);
    });
  }
  // Read once: every write through `p` (a byte pointer, which may alias
  // anything) would make the compiler read fields.all() again.
  const bool all = fields.all();
#define TCB_PUT(name, Name, value)                                                                     \
  if (all || fields.HasTcpInfo(v1::TcpInfo::k##Name##FieldNumber)) {                                    \
    p = PutScalar(v1::TcpInfo::k##Name##FieldNumber, static_cast<TCB_FIELD_TYPE(v1::TcpInfo, name)>(value), \
                  p);                                                                                  \
  }
  TCB_TCP_INFO_FIELDS(TCB_PUT, w)
#undef TCB_PUT
  return Close(body, kLarge, p);
}

// Bytes one connection takes at most, beyond its strings of unbounded length
// (the congestion name and the netns name): every field at its longest, each
// length with room to grow to 5 bytes, and every absent tcp_info name; with a
// wide margin. Checked after each connection.
constexpr size_t kFixedBound = 8192;

}  // namespace

void AppendMessageField(int number, const google::protobuf::MessageLite& message, WireBuffer* out) {
  const size_t len = message.ByteSizeLong();
  uint8_t* p = out->Reserve(len + 10);
  p = PutTag(number, kLengthDelimited, p);
  p = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(len), p);
  out->Commit(message.SerializeWithCachedSizesToArray(p));
}

void AppendMessageBytes(const google::protobuf::MessageLite& message, WireBuffer* out) {
  const size_t len = message.ByteSizeLong();
  out->Commit(message.SerializeWithCachedSizesToArray(out->Reserve(len)));
}

WireOutcome AppendConnectionWire(const nlmsghdr* msg, uint64_t netns, absl::string_view netns_name,
                                 const ConnectionFields& fields, SeqLookup seq, WireBuffer* out) {
  // The parser's checks, in its order.
  if (msg->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) return WireOutcome::kMalformed;
  const auto* d = reinterpret_cast<const inet_diag_msg*>(NLMSG_DATA(msg));
  if (d->idiag_family != AF_INET && d->idiag_family != AF_INET6) return WireOutcome::kMalformed;

  // The attributes first: a message the parser refuses must leave nothing,
  // and of an attribute given twice the parser keeps the last. A payload
  // seen is one whose data is set.
  DiagAttribute info{}, cong{}, mem{};
  int infos = 0;
  uint32_t tos = 0, shutdown = 0, mark = 0;
  bool v6only = false;
  const absl::Status walked = ForEachDiagAttribute(msg, [&](const DiagAttribute& a) {
    switch (a.type) {
      case diag_attr::kInfo:
        info = a;
        ++infos;
        break;
      case diag_attr::kCong:
        cong = a;
        break;
      case diag_attr::kSkMemInfo:
        mem = a;
        break;
      case diag_attr::kTos:
      case diag_attr::kTclass:
        if (a.len >= 1) tos = a.data[0];
        break;
      case diag_attr::kShutdown:
        if (a.len >= 1) shutdown = a.data[0];
        break;
      case diag_attr::kV6Only:
        if (a.len >= 1) v6only = a.data[0] != 0;
        break;
      case diag_attr::kMark:
        if (a.len >= 4) std::memcpy(&mark, a.data, sizeof(mark));
        break;
      default:
        break;
    }
  });
  if (!walked.ok()) return WireOutcome::kMalformed;
  using C = v1::Connection;
  const bool has_info = info.data != nullptr && fields.Has(C::kTcpInfoFieldNumber);
  if (has_info && infos > 1) return WireOutcome::kNeedsMessage;
  const size_t cong_len = cong.data != nullptr ? strnlen(reinterpret_cast<const char*>(cong.data), cong.len) : 0;

  const size_t bound = kFixedBound + cong_len + netns_name.size();
  uint8_t* const first = out->Reserve(bound);
  uint8_t* body = Open(v1::ConnectionBatch::kConnectionsFieldNumber, kLarge, first);
  uint8_t* p = body;
  // Read once, as in PutTcpInfo.
  const bool all = fields.all();
  auto has = [&](int number) { return all || fields.Has(number); };

  if (has(C::kFamilyFieldNumber)) {
    p = PutScalar(C::kFamilyFieldNumber, d->idiag_family == AF_INET ? v1::FAMILY_INET : v1::FAMILY_INET6, p);
  }
  if (has(C::kLocalFieldNumber)) {
    p = PutEndpoint(C::kLocalFieldNumber, IpAddress::FromDiag(d->idiag_family, d->id.idiag_src), d->id.idiag_sport,
                    d->id.idiag_if, p);
  }
  if (has(C::kRemoteFieldNumber)) {
    p = PutEndpoint(C::kRemoteFieldNumber, IpAddress::FromDiag(d->idiag_family, d->id.idiag_dst), d->id.idiag_dport,
                    0, p);
  }
  if (has(C::kStateFieldNumber)) {
    p = PutScalar(C::kStateFieldNumber, static_cast<v1::TcpState>(d->idiag_state), p);
  }
  if (has(C::kNetnsFieldNumber)) p = PutScalar<uint64_t>(C::kNetnsFieldNumber, netns, p);
  if (has(C::kInodeFieldNumber)) p = PutScalar<uint64_t>(C::kInodeFieldNumber, d->idiag_inode, p);
  const uint64_t cookie = static_cast<uint64_t>(d->id.idiag_cookie[1]) << 32 | d->id.idiag_cookie[0];
  if (has(C::kCookieFieldNumber)) p = PutScalar<uint64_t>(C::kCookieFieldNumber, cookie, p);
  if (has(C::kUidFieldNumber)) p = PutScalar<uint32_t>(C::kUidFieldNumber, d->idiag_uid, p);
  if (has(C::kRecvQFieldNumber)) p = PutScalar<uint32_t>(C::kRecvQFieldNumber, d->idiag_rqueue, p);
  if (has(C::kSendQFieldNumber)) p = PutScalar<uint32_t>(C::kSendQFieldNumber, d->idiag_wqueue, p);
  if (d->idiag_timer != 0 && has(C::kTimerFieldNumber)) {
    uint8_t* timer = Open(C::kTimerFieldNumber, kSmall, p);
    p = PutScalar(v1::Timer::kKindFieldNumber, DiagTimerKind(d->idiag_timer), timer);
    p = PutScalar<uint32_t>(v1::Timer::kExpiresMsFieldNumber, d->idiag_expires, p);
    p = PutScalar<uint32_t>(v1::Timer::kRetransmitsFieldNumber, d->idiag_retrans, p);
    p = Close(timer, kSmall, p);
  }
  if (cong_len > 0 && has(C::kCongestionFieldNumber)) {
    p = PutTag(C::kCongestionFieldNumber, kLengthDelimited, p);
    p = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(cong_len), p);
    p += CopyCongestionName(cong.data, cong.len, reinterpret_cast<char*>(p));
  }
  if (mem.data != nullptr && has(C::kMemoryFieldNumber)) {
    uint32_t m[kSkMemCount] = {};
    std::memcpy(m, mem.data, std::min(mem.len, sizeof(m)));
    uint8_t* memory = Open(C::kMemoryFieldNumber, kSmall, p);
    p = memory;
#define TCB_PUT(name, Name, value) p = PutScalar<uint32_t>(v1::SocketMemory::k##Name##FieldNumber, value, p);
    TCB_SOCKET_MEMORY_FIELDS(TCB_PUT, m)
#undef TCB_PUT
    p = Close(memory, kSmall, p);
  }
  if (has_info) p = PutTcpInfo(info.data, info.len, fields, p);
  const bool time_wait = IsTimeWaitRow(d->idiag_state, DiagTimerKind(d->idiag_timer) == v1::Timer::KIND_TIME_WAIT);
  if (has(C::kSeqFieldNumber) && !time_wait) {
    if (const tcb_seq_record* r = seq(cookie, d->idiag_family, d->idiag_state)) {
      uint8_t* space = Open(C::kSeqFieldNumber, kSmall, p);
      p = space;
#define TCB_PUT(name, Name, value)                                                                     \
  p = PutScalar(v1::SequenceSpace::k##Name##FieldNumber,                                               \
                static_cast<TCB_FIELD_TYPE(v1::SequenceSpace, name)>(value), p);
      TCB_SEQUENCE_FIELDS(TCB_PUT, *r)
#undef TCB_PUT
      p = Close(space, kSmall, p);
    }
  }
  if (has(C::kShutdownFieldNumber)) p = PutScalar(C::kShutdownFieldNumber, shutdown, p);
  if (has(C::kV6OnlyFieldNumber)) p = PutScalar(C::kV6OnlyFieldNumber, v6only, p);
  if (has(C::kMarkFieldNumber)) p = PutScalar(C::kMarkFieldNumber, mark, p);
  if (has(C::kTosFieldNumber)) p = PutScalar(C::kTosFieldNumber, tos, p);
  if (has(C::kNetnsNameFieldNumber)) {
    p = PutString(C::kNetnsNameFieldNumber, netns_name.data(), netns_name.size(), p);
  }
  p = Close(body, kLarge, p);
  // The bound is what makes the writes above safe; past it is a bug here.
  if (static_cast<size_t>(p - first) > bound) std::abort();
  out->Commit(p);
  return WireOutcome::kEncoded;
}

}  // namespace tcbscope::kernel
