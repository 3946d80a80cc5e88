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

#include "absl/synchronization/mutex.h"
#include "agent/kernel/diag_source.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope::kernel {

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
  std::string CurrentNetnsName() const override;
  std::string Describe() const override;

  // The namespaces read now (discovered afresh with --all-netns).
  std::vector<NetnsEntry> Namespaces() const;
  // Runs fn inside each namespace in turn (on a thread that entered it).
  void ForEachNamespace(const std::function<void(const NetnsEntry&)>& fn) const;
  // FindOne (sock_diag_reader.h) in the connection's namespace (c.netns()).
  absl::StatusOr<std::optional<v1::Connection>> FindOne(const v1::Connection& c) const;
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
};

}  // namespace tcbscope::kernel

#endif  // TCBSCOPE_AGENT_KERNEL_NETNS_SOURCE_H_
