// Recorded sock_diag dumps in the format of `ss -D FILE` / TCPDIAG_FILE:
// netlink messages back to back, each padded to 4 bytes, ending with one
// NLMSG_DONE. A recording of ours replays in `TCPDIAG_FILE=F ss -tan` (ss stops
// at the first NLMSG_DONE, so both families precede a single DONE), and a
// file from `ss -tan -D F` replays in tcbscope-agent --replay F.
#ifndef TCBSCOPE_AGENT_KERNEL_DUMP_RECORDER_H_
#define TCBSCOPE_AGENT_KERNEL_DUMP_RECORDER_H_

#include <linux/netlink.h>

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace tcbscope::kernel {

// Collects one dump's messages and writes them to `path` when the dump ends,
// replacing the file atomically (write to path.tmp, rename), so the file
// always holds one whole dump: the latest. Thread-safe.
class DumpRecorder {
 public:
  explicit DumpRecorder(std::string path) : path_(std::move(path)) {}

  // A buffer for one dump; Append each socket message, then Commit.
  class Session {
   public:
    void Append(const nlmsghdr* msg);
    // Appends NLMSG_DONE (flagged NLM_F_DUMP_INTR when `interrupted`) and
    // writes the file.
    absl::Status Commit(bool interrupted);

   private:
    friend class DumpRecorder;
    explicit Session(DumpRecorder* owner) : owner_(owner) {}
    DumpRecorder* owner_;
    std::string bytes_;
  };

  Session Begin() { return Session(this); }
  const std::string& path() const { return path_; }

 private:
  absl::Status Write(const std::string& bytes);
  const std::string path_;
  absl::Mutex mu_;  // serialises writers of the file
};

}  // namespace tcbscope::kernel

#endif  // TCBSCOPE_AGENT_KERNEL_DUMP_RECORDER_H_
