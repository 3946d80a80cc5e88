// Tcb: the part of one TCB that pairing and comparing read, as a plain value.
//
// A v1::Connection with tcp_info and sequence numbers takes ~890 bytes as a
// message (TcpInfo alone is 384, made and zero-filled whether or not its
// fields are read). A Tcb is ~200. `correlate` builds one per connection as
// each batch arrives and reuses the batch's messages for the next: two
// 100k-connection snapshots then hold ~40 MB instead of ~180 MB, and on a
// host where a new page costs ~16 µs that difference is most of the command
// (docs/performance.md).
//
// Value type: copyable, no allocation, no pointers into the message.
#ifndef TCBSCOPE_COMMON_TCB_H_
#define TCBSCOPE_COMMON_TCB_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/ip_address.h"
#include "google/protobuf/arena.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope {

struct Tcb {
  // From tcp_info; the names are the proto's (v1::TcpInfo).
  struct Info {
    uint64_t bytes_acked = 0, bytes_received = 0, bytes_sent = 0, bytes_retrans = 0;
    uint32_t snd_wnd = 0, rcv_wnd = 0;
    uint32_t last_data_sent_ms = 0, last_data_recv_ms = 0, last_ack_recv_ms = 0;
    uint32_t snd_wscale = 0, rcv_wscale = 0, advmss = 0, snd_mss = 0, rtt_us = 0, total_retrans = 0;
    bool opt_wscale = false, opt_sack = false, opt_timestamps = false;
    // False when the kernel did not report snd_wnd/rcv_wnd (before 6.2): a
    // zero there then means "unknown", never "window closed".
    bool has_windows = true;
  };
  // From the BPF sequence numbers (v1::SequenceSpace).
  struct Seq {
    uint64_t bytes_acked = 0, bytes_received = 0;
    uint32_t snd_una = 0, snd_nxt = 0, rcv_nxt = 0, write_seq = 0, copied_seq = 0, rcv_wnd = 0, rcv_wup = 0;
  };

  // As the kernel has them (an IPv4-mapped address is not folded); an
  // address that does not parse is the unspecified one.
  Endpoint local, remote;
  v1::TcpState state = v1::TCP_STATE_UNSPECIFIED;
  v1::Family family = v1::FAMILY_UNSPECIFIED;
  bool v6only = false;
  bool has_timer = false, has_tcp_info = false, has_seq = false;
  v1::Timer::Kind timer_kind = v1::Timer::KIND_NONE;
  uint32_t timer_retransmits = 0;
  uint32_t send_q = 0, recv_q = 0;
  Info info;  // zero unless has_tcp_info
  Seq seq;    // zero unless has_seq
};

Tcb TcbOf(const v1::Connection& c);

// The address text parsed last on one side of a run of rows, and what it
// parsed to. Rows mostly repeat the address of the row before on each side
// (a host's own address on nearly all, a busy peer's on many), so text that
// matches is not parsed again: parsing every address anew was ~3% of
// `correlate`'s CPU at 2 x 100k connections. Text that does not parse gives
// the unspecified address. Not thread-safe.
class LastAddress {
 public:
  const IpAddress& Of(absl::string_view text);

 private:
  std::string text_;
  IpAddress address_;
};

// The fields TcbOf reads, as ListConnectionsRequest.fields paths: asking an
// agent for only these sends about half the bytes of whole connections.
const std::vector<std::string>& TcbFieldPaths();

// Tcbs appended one by one and read by index, in blocks that never move:
// growing never copies (a 100k list grown by doubling would write twice its
// size in new memory). The blocks come from the heap, or from `arena` when
// one is given (REQUIRES: it outlives the list): the CLI's arenas put large
// blocks on huge pages (client/large_blocks.h), which at 2 x 100k Tcbs saved
// a fifth of `correlate`'s CPU.
// Not thread-safe; move-only.
class TcbList {
 public:
  explicit TcbList(google::protobuf::Arena* arena = nullptr) : arena_(arena) {}
  // A moved-from list is empty.
  TcbList(TcbList&& o) noexcept { *this = std::move(o); }
  TcbList& operator=(TcbList&& o) noexcept {
    arena_ = o.arena_;
    blocks_ = std::exchange(o.blocks_, {});
    owned_ = std::exchange(o.owned_, {});
    size_ = std::exchange(o.size_, 0);
    return *this;
  }

  void Add(const Tcb& t) {
    if ((size_ & kMask) == 0) NewBlock();
    new (&blocks_[size_ >> kShift][size_ & kMask]) Tcb(t);
    ++size_;
  }
  // REQUIRES: i < size().
  const Tcb& operator[](size_t i) const { return blocks_[i >> kShift][i & kMask]; }
  size_t size() const { return size_; }

 private:
  static constexpr size_t kShift = 10;  // 1,024 Tcbs, ~200 KiB a block
  static constexpr size_t kBlock = size_t{1} << kShift;
  static constexpr size_t kMask = kBlock - 1;
  struct Free {
    void operator()(Tcb* p) const { ::operator delete(p); }
  };
  void NewBlock();

  google::protobuf::Arena* arena_ = nullptr;
  std::vector<Tcb*> blocks_;
  std::vector<std::unique_ptr<Tcb, Free>> owned_;  // the heap's blocks
  size_t size_ = 0;
};
static_assert(std::is_trivially_copyable_v<Tcb> && std::is_trivially_destructible_v<Tcb> && alignof(Tcb) <= 8,
              "TcbList places Tcbs in raw (arena-aligned) memory and never destroys them");

}  // namespace tcbscope

#endif  // TCBSCOPE_COMMON_TCB_H_
