// Which processes hold which sockets: socket inode → (pid, comm, fd), from one
// scan of /proc/*/fd, or from one BPF iter/task_file pass.
//
// A process that exits or hides its fds mid-scan (EACCES, ENOENT) is skipped:
// its sockets are then shown without an owner, never dropped. Reading other
// users' fd tables needs CAP_SYS_PTRACE + CAP_DAC_READ_SEARCH (or root).
#ifndef TCBSCOPE_AGENT_KERNEL_PROC_OWNERS_H_
#define TCBSCOPE_AGENT_KERNEL_PROC_OWNERS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "agent/kernel/bpf_programs.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope::kernel {

class SocketOwners {
 public:
  // Scans `proc_root` (normally "/proc"; tests may point at a copy).
  static SocketOwners Scan(const std::string& proc_root = "/proc");
  // The same map from the kernel's own walk of every file table (BPF
  // iter/task_file): no readlink per descriptor. processes_scanned() then
  // counts the processes holding sockets.
  static absl::StatusOr<SocketOwners> FromBpf(BpfFilesReader& reader);

  // Appends the owners of socket `inode` to `c` (nothing if unknown or 0).
  void Fill(uint64_t inode, v1::Connection* c) const;

  size_t socket_count() const { return by_inode_.size(); }
  size_t processes_scanned() const { return processes_scanned_; }
  size_t processes_unreadable() const { return processes_unreadable_; }

 private:
  struct Process {
    uint32_t pid;
    std::string comm;
  };
  struct Ref {
    uint32_t process;  // index into processes_
    uint32_t fd;
  };
  std::vector<Process> processes_;
  // Most sockets have one owner; a shared socket (fork, SCM_RIGHTS) has more
  // and its further owners in extra_.
  absl::flat_hash_map<uint64_t, Ref> by_inode_;
  absl::flat_hash_map<uint64_t, std::vector<Ref>> extra_;
  size_t processes_scanned_ = 0;
  size_t processes_unreadable_ = 0;
};

}  // namespace tcbscope::kernel

#endif  // TCBSCOPE_AGENT_KERNEL_PROC_OWNERS_H_
