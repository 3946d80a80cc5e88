// A recorded dump served in place of the kernel (tcbscope-agent --replay F).
//
// The file is read and fully validated once, at Open(); a bad file is refused
// there with one line naming the byte offset, never at query time. Dump()
// applies the requested state mask (the kernel would have); everything else
// is served as recorded. Immutable after Open(), so Dump() is thread-safe.
#ifndef TCBSCOPE_AGENT_KERNEL_REPLAY_SOURCE_H_
#define TCBSCOPE_AGENT_KERNEL_REPLAY_SOURCE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/kernel/diag_source.h"

namespace tcbscope::kernel {

class ReplaySource : public DiagSource {
 public:
  // Largest recording accepted (a 100k-socket dump with tcp_info is ~40 MB).
  static constexpr size_t kMaxFileBytes = size_t{1} << 30;

  static absl::StatusOr<std::unique_ptr<ReplaySource>> Open(const std::string& path);
  // Same, from bytes already in memory (tests, fuzzing).
  static absl::StatusOr<std::unique_ptr<ReplaySource>> FromBytes(std::string bytes, std::string name);

  absl::StatusOr<DumpResult> Dump(const DumpRequest& request, const DiagMessageCallback& on_socket) override;
  uint64_t netns() const override { return 0; }
  std::string Describe() const override { return "replay:" + name_; }
  size_t socket_count() const { return offsets_.size(); }

 private:
  ReplaySource() = default;
  std::string name_;
  std::string bytes_;            // the whole file, 4-byte aligned storage
  std::vector<size_t> offsets_;  // where each socket message starts
  bool interrupted_ = false;
};

}  // namespace tcbscope::kernel

#endif  // TCBSCOPE_AGENT_KERNEL_REPLAY_SOURCE_H_
