#include "agent/kernel/replay_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/kernel/inet_diag_parser.h"

namespace tcbscope::kernel {

absl::StatusOr<std::unique_ptr<ReplaySource>> ReplaySource::Open(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InvalidArgumentError(absl::StrCat("replay ", path, ": ", strerror(errno)));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat("replay ", path, ": not a regular file"));
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxFileBytes) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat("replay ", path, ": ", st.st_size, " bytes is over the ",
                                                   kMaxFileBytes, "-byte limit"));
  }
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = read(fd, bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fd);
  bytes.resize(got);
  return FromBytes(std::move(bytes), path);
}

absl::StatusOr<std::unique_ptr<ReplaySource>> ReplaySource::FromBytes(std::string bytes, std::string name) {
  std::unique_ptr<ReplaySource> src(new ReplaySource());
  src->name_ = std::move(name);
  src->bytes_ = std::move(bytes);
  if (src->bytes_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("replay ", src->name_, ": empty file, not a sock_diag recording"));
  }
  const char* base = src->bytes_.data();
  v1::Connection scratch;
  absl::StatusOr<DiagStreamSummary> summary =
      WalkDiagStream(src->bytes_, [&](const nlmsghdr* m) -> absl::Status {
        scratch.Clear();
        absl::Status s = ParseInetDiagMessage(m, 0, &scratch);
        const size_t off = reinterpret_cast<const char*>(m) - base;
        if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("offset ", off, ": ", s.message()));
        src->offsets_.push_back(off);
        return absl::OkStatus();
      });
  if (!summary.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("replay ", src->name_, ": not a sock_diag recording: ", summary.status().message()));
  }
  if (summary->done_messages == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("replay ", src->name_, ": no NLMSG_DONE, the recording is incomplete"));
  }
  src->interrupted_ = summary->interrupted;
  return src;
}

absl::StatusOr<DumpResult> ReplaySource::Dump(const DumpRequest& request, const DiagMessageCallback& on_socket) {
  DumpResult result;
  result.started = absl::Now();
  result.interrupted = interrupted_;
  // std::string storage is suitably aligned for nlmsghdr; every message
  // offset is a multiple of 4 (messages are padded), checked at load.
  for (size_t off : offsets_) {
    const auto* m = reinterpret_cast<const nlmsghdr*>(bytes_.data() + off);
    const int state = InetDiagMessageState(m);
    if (state < 0 || state > 31 || !(request.states & (StateMask{1} << state))) continue;
    ++result.sockets;
    absl::Status s = on_socket(m);
    if (!s.ok()) return s;
  }
  return result;
}

}  // namespace tcbscope::kernel
