#include "agent/kernel/proc_owners.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"

namespace tcbscope::kernel {
namespace {

bool ParsePid(const char* name, uint32_t* pid) {
  if (name[0] < '0' || name[0] > '9') return false;
  return absl::SimpleAtoi(name, pid);
}

std::string ReadComm(int pid_dir_fd) {
  const int fd = openat(pid_dir_fd, "comm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  char buf[64];
  const ssize_t n = read(fd, buf, sizeof(buf));
  close(fd);
  if (n <= 0) return "";
  absl::string_view s(buf, static_cast<size_t>(n));
  if (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  return std::string(s);
}

// "socket:[12345]" → 12345.
bool ParseSocketLink(absl::string_view link, uint64_t* inode) {
  constexpr absl::string_view kPrefix = "socket:[";
  if (link.size() < kPrefix.size() + 2 || link.substr(0, kPrefix.size()) != kPrefix || link.back() != ']') return false;
  return absl::SimpleAtoi(link.substr(kPrefix.size(), link.size() - kPrefix.size() - 1), inode);
}

}  // namespace

SocketOwners SocketOwners::Scan(const std::string& proc_root) {
  SocketOwners out;
  const int proc_fd = open(proc_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (proc_fd < 0) return out;
  DIR* proc = fdopendir(proc_fd);
  if (proc == nullptr) {
    close(proc_fd);
    return out;
  }
  char link[64];
  while (dirent* pe = readdir(proc)) {
    uint32_t pid = 0;
    if (!ParsePid(pe->d_name, &pid)) continue;
    ++out.processes_scanned_;
    const int pid_fd = openat(proc_fd, pe->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pid_fd < 0) {
      ++out.processes_unreadable_;
      continue;
    }
    const int fd_dir = openat(pid_fd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* fds = fd_dir >= 0 ? fdopendir(fd_dir) : nullptr;
    if (fds == nullptr) {
      if (fd_dir >= 0) close(fd_dir);
      close(pid_fd);
      ++out.processes_unreadable_;
      continue;
    }
    int64_t process_index = -1;
    while (dirent* fe = readdir(fds)) {
      uint32_t fdnum = 0;
      if (!ParsePid(fe->d_name, &fdnum)) continue;
      // d_type of /proc/PID/fd entries is DT_LNK; the target tells sockets.
      const ssize_t n = readlinkat(fd_dir, fe->d_name, link, sizeof(link));
      if (n <= 0 || static_cast<size_t>(n) >= sizeof(link)) continue;
      uint64_t inode = 0;
      if (!ParseSocketLink(absl::string_view(link, static_cast<size_t>(n)), &inode)) continue;
      if (process_index < 0) {
        process_index = static_cast<int64_t>(out.processes_.size());
        out.processes_.push_back({pid, ReadComm(pid_fd)});
      }
      const Ref ref{static_cast<uint32_t>(process_index), fdnum};
      auto [it, inserted] = out.by_inode_.try_emplace(inode, ref);
      if (!inserted) out.extra_[inode].push_back(ref);
    }
    closedir(fds);
    close(pid_fd);
  }
  closedir(proc);
  return out;
}

absl::StatusOr<SocketOwners> SocketOwners::FromBpf(BpfFilesReader& reader) {
  SocketOwners out;
  absl::flat_hash_map<uint32_t, uint32_t> process_index;  // tgid → index into processes_
  absl::Status s = reader.Read([&](const tcb_file_record& r) {
    auto [it, inserted] = process_index.try_emplace(r.tgid, static_cast<uint32_t>(out.processes_.size()));
    if (inserted) {
      out.processes_.push_back({r.tgid, std::string(r.comm, strnlen(r.comm, sizeof(r.comm)))});
      ++out.processes_scanned_;
    }
    const Ref ref{it->second, r.fd};
    auto [at, fresh] = out.by_inode_.try_emplace(r.inode, ref);
    if (!fresh) out.extra_[r.inode].push_back(ref);
  });
  if (!s.ok()) return s;
  return out;
}

void SocketOwners::Fill(uint64_t inode, v1::Connection* c) const {
  if (inode == 0) return;
  auto add = [&](const Ref& r) {
    v1::Owner* o = c->add_owners();
    o->set_pid(processes_[r.process].pid);
    o->set_comm(processes_[r.process].comm);
    o->set_fd(r.fd);
  };
  auto it = by_inode_.find(inode);
  if (it == by_inode_.end()) return;
  add(it->second);
  if (extra_.empty()) return;
  auto more = extra_.find(inode);
  if (more == extra_.end()) return;
  for (const Ref& r : more->second) add(r);
}

}  // namespace tcbscope::kernel
