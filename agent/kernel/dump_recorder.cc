#include "agent/kernel/dump_recorder.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace tcbscope::kernel {

void DumpRecorder::Session::Append(const nlmsghdr* msg) {
  bytes_.append(reinterpret_cast<const char*>(msg), msg->nlmsg_len);
  bytes_.resize(NLMSG_ALIGN(bytes_.size()), '\0');
}

absl::Status DumpRecorder::Session::Commit(bool interrupted) {
  nlmsghdr done{};
  done.nlmsg_len = NLMSG_LENGTH(sizeof(int));
  done.nlmsg_type = NLMSG_DONE;
  done.nlmsg_flags = NLM_F_MULTI | (interrupted ? NLM_F_DUMP_INTR : 0);
  bytes_.append(reinterpret_cast<const char*>(&done), sizeof(done));
  const int err = 0;
  bytes_.append(reinterpret_cast<const char*>(&err), sizeof(err));
  return owner_->Write(bytes_);
}

absl::Status DumpRecorder::Write(const std::string& bytes) {
  absl::MutexLock lock(&mu_);
  const std::string tmp = path_ + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("record ", tmp, ": ", strerror(errno)));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = errno;
      close(fd);
      unlink(tmp.c_str());
      return absl::UnavailableError(absl::StrCat("record ", tmp, ": ", strerror(e)));
    }
    done += static_cast<size_t>(n);
  }
  if (close(fd) != 0 || rename(tmp.c_str(), path_.c_str()) != 0) {
    const int e = errno;
    unlink(tmp.c_str());
    return absl::UnavailableError(absl::StrCat("record ", path_, ": ", strerror(e)));
  }
  return absl::OkStatus();
}

}  // namespace tcbscope::kernel
