// A DiagSource spanning network namespaces: every namespace of the host
// (--all-netns: the named ones in /run/netns and those of running processes,
// found anew at each dump) or a fixed list (--netns NAME|PATH). Each socket
// is tagged with its namespace's inode and, when it has one, its name.
//
// Entering a namespace needs CAP_SYS_ADMIN; a namespace that cannot be
// entered, or that disappears while it is read, is skipped and counted.
// Thread-safe: the namespace of the message being delivered is per thread.
#ifndef TCBSCOPE_AGENT_KERNEL_NETNS_SOURCE_H_
#define TCBSCOPE_AGENT_KERNEL_NETNS_SOURCE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/kernel/diag_source.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope::kernel {

class SockDiagReader;

struct NetnsEntry {
  uint64_t inode = 0;
  std::string name;  // /run/netns name; empty for process namespaces
  std::string path;  // what to open
};

class MultiNetnsSource : public DiagSource {
 public:
  // `specs`: NAME (in /run/netns) or PATH, each checked now; with `all`,
  // every namespace of the host besides. InvalidArgument for a spec that
  // does not name a network namespace.
  static absl::StatusOr<std::unique_ptr<MultiNetnsSource>> Create(const std::vector<std::string>& specs, bool all,
                                                                  std::string proc_root = "/proc");

  absl::StatusOr<DumpResult> Dump(const DumpRequest& request, const DiagMessageCallback& on_socket) override;
  uint64_t netns() const override { return own_; }
  uint64_t CurrentNetns() const override;
  absl::string_view CurrentNetnsName() const override;
  std::string Describe() const override;

  // The namespaces read now (discovered afresh with --all-netns).
  std::vector<NetnsEntry> Namespaces() const;
  // Runs fn inside each namespace in turn (on a thread that entered it).
  void ForEachNamespace(const std::function<void(const NetnsEntry&)>& fn) const;
  // FindOne (sock_diag_reader.h) in the connection's namespace (c.netns()).
  // Lookups follow events, many a second, so each namespace's reader (an open
  // namespace file and its lookup socket) is kept between them: a lookup is
  // then two system calls instead of a thread that enters the namespace.
  // Keeping them holds those namespaces open, so a reader is dropped when a
  // walk no longer finds its namespace, when a lookup finds it unused for
  // kReaderIdle, past kMaxReaders (least recently used first), and all of
  // them by DropReaders. A path that no longer opens the namespace asked for
  // (a stale /proc/PID/ns/net) is found again by a fresh walk.
  absl::StatusOr<std::optional<v1::Connection>> FindOne(const v1::Connection& c) const;
  static constexpr size_t kMaxReaders = 64;
  static constexpr absl::Duration kReaderIdle = absl::Seconds(30);
  // Lets every kept reader go (the watch hub calls this when its last
  // watcher leaves, after which no lookups come until the next one).
  void DropReaders() const;
  // How many readers are kept now (for tests).
  size_t kept_readers() const;
  uint64_t skipped() const { return skipped_; }

 private:
  MultiNetnsSource() = default;

  std::vector<NetnsEntry> fixed_;
  bool all_ = false;
  std::string proc_root_;
  uint64_t own_ = 0;
  mutable std::atomic<uint64_t> skipped_{0};
  mutable absl::Mutex mu_;
  mutable std::vector<NetnsEntry> last_found_ ABSL_GUARDED_BY(mu_);  // by the latest Namespaces()
  struct KeptReader {
    std::shared_ptr<SockDiagReader> reader;
    std::string name;
    absl::Time last_used;
  };
  // Drops the readers idle for kReaderIdle and, `making_room` for one more,
  // the least recently used while there are kMaxReaders or more.
  void PruneReadersLocked(absl::Time now, bool making_room) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  mutable absl::flat_hash_map<uint64_t, KeptReader> readers_ ABSL_GUARDED_BY(mu_);  // by namespace inode
};

}  // namespace tcbscope::kernel

#endif  // TCBSCOPE_AGENT_KERNEL_NETNS_SOURCE_H_
