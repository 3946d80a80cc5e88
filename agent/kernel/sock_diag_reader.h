// The live source: a sock_diag (NETLINK_SOCK_DIAG) dump of every TCP socket
// in the calling thread's network namespace. Both families come from one walk
// of the kernel's tables, in its order (listeners first when they are asked
// for, IPv4 and IPv6 mixed); on a kernel that does not serve that request,
// IPv4 then IPv6, as ss asks.
//
// Each Dump() opens its own netlink socket, so concurrent dumps share nothing
// but whether the kernel served the one-walk request. Needs no privilege in
// the agent's own namespace. When a recorder is set, every dump's raw
// messages are also written out (see dump_recorder.h).
#ifndef TCBSCOPE_AGENT_KERNEL_SOCK_DIAG_READER_H_
#define TCBSCOPE_AGENT_KERNEL_SOCK_DIAG_READER_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agent/kernel/diag_source.h"
#include "agent/kernel/dump_recorder.h"
#include "agent/kernel/mnl_socket.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope::kernel {

class SockDiagReader : public DiagSource {
 public:
  // `recorder` may be null. Reads the namespace inode once, here.
  explicit SockDiagReader(std::shared_ptr<DumpRecorder> recorder = nullptr);
  // A reader of another network namespace: `netns_fd` (owned; an open
  // /proc/PID/ns/net or /run/netns/NAME) is entered by a short-lived thread
  // to open each netlink socket, which then stays in that namespace.
  SockDiagReader(int netns_fd, uint64_t inode);
  ~SockDiagReader() override;
  SockDiagReader(const SockDiagReader&) = delete;
  SockDiagReader& operator=(const SockDiagReader&) = delete;

  absl::StatusOr<DumpResult> Dump(const DumpRequest& request, const DiagMessageCallback& on_socket) override;
  uint64_t netns() const override { return netns_; }

  // The one socket with exactly these endpoints (family, local, remote), in
  // any state, time-wait included; nullopt when the kernel has none. A
  // non-dump request: costs one lookup, not a table walk. Thread-safe;
  // lookups are serialised on one netlink socket, opened by the first and
  // kept (dropped after a failed exchange): a watched agent looks up a few
  // closing sockets a second, and opening a socket for each was seven
  // system calls instead of two (docs/performance.md).
  absl::StatusOr<std::optional<v1::Connection>> FindOne(const v1::Connection& endpoints) const;
  std::string Describe() const override { return "kernel"; }

  // Whether dumps ask for each family on its own: after the kernel refused
  // the one-walk request, or after AskPerFamily (which tests use to compare
  // the two).
  bool asks_per_family() const { return !both_families_.load(std::memory_order_relaxed); }
  void AskPerFamily() { both_families_.store(false, std::memory_order_relaxed); }

 private:
  std::shared_ptr<DumpRecorder> recorder_;
  uint64_t netns_ = 0;
  int netns_fd_ = -1;
  // Whether the kernel serves one dump of both families; cleared for good
  // the first time it does not.
  std::atomic<bool> both_families_{true};
  mutable absl::Mutex lookup_mu_;
  mutable MnlSocket lookup_socket_ ABSL_GUARDED_BY(lookup_mu_);
  mutable uint32_t lookup_seq_ ABSL_GUARDED_BY(lookup_mu_) = 0;
};

// Runs fn on a new thread that has entered the network namespace `netns_fd`
// (fn runs on the calling thread when netns_fd < 0) and waits for it. Fails
// when the namespace cannot be entered (CAP_SYS_ADMIN is needed).
absl::Status RunInNetns(int netns_fd, const std::function<void()>& fn);

// Inode of the calling thread's network namespace (/proc/thread-self/ns/net),
// 0 if it cannot be read.
uint64_t CurrentNetnsInode();

}  // namespace tcbscope::kernel

#endif  // TCBSCOPE_AGENT_KERNEL_SOCK_DIAG_READER_H_
