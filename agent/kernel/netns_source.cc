#include "agent/kernel/netns_source.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/kernel/sock_diag_reader.h"

namespace tcbscope::kernel {
namespace {

thread_local uint64_t t_current_inode = 0;
thread_local const std::string* t_current_name = nullptr;

constexpr char kNamedDir[] = "/run/netns";

// Opens a namespace file (O_CLOEXEC) and checks that it is still the
// namespace the entry was found as; -1 when it cannot be opened or is not.
int OpenNamespace(const NetnsEntry& e) {
  const int fd = open(e.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_ino != e.inode) {
    close(fd);
    return -1;
  }
  return fd;
}

std::optional<uint64_t> InodeOf(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return std::nullopt;
  return st.st_ino;
}

// Every namespace: named ones first (so they keep their names), then those
// of running processes, each inode once.
std::vector<NetnsEntry> Discover(const std::string& proc_root, const std::vector<NetnsEntry>& fixed, bool all) {
  std::vector<NetnsEntry> out;
  absl::flat_hash_set<uint64_t> seen;
  auto add = [&](NetnsEntry e) {
    if (seen.insert(e.inode).second) out.push_back(std::move(e));
  };
  for (const NetnsEntry& e : fixed) add(e);
  if (!all) return out;
  if (DIR* d = opendir(kNamedDir)) {
    while (dirent* de = readdir(d)) {
      if (de->d_name[0] == '.') continue;
      const std::string path = absl::StrCat(kNamedDir, "/", de->d_name);
      if (std::optional<uint64_t> ino = InodeOf(path)) add(NetnsEntry{*ino, de->d_name, path});
    }
    closedir(d);
  }
  if (DIR* d = opendir(proc_root.c_str())) {
    while (dirent* de = readdir(d)) {
      int pid = 0;
      if (!absl::SimpleAtoi(de->d_name, &pid)) continue;
      const std::string path = absl::StrCat(proc_root, "/", pid, "/ns/net");
      if (std::optional<uint64_t> ino = InodeOf(path)) add(NetnsEntry{*ino, "", path});
    }
    closedir(d);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MultiNetnsSource>> MultiNetnsSource::Create(const std::vector<std::string>& specs,
                                                                           bool all, std::string proc_root) {
  std::unique_ptr<MultiNetnsSource> s(new MultiNetnsSource());
  s->all_ = all;
  s->proc_root_ = std::move(proc_root);
  s->own_ = CurrentNetnsInode();
  struct stat own_ns;
  if (!specs.empty() && stat("/proc/self/ns/net", &own_ns) != 0) {
    return absl::FailedPreconditionError("cannot stat /proc/self/ns/net to check --netns");
  }
  for (const std::string& spec : specs) {
    const bool is_path = spec.find('/') != std::string::npos;
    NetnsEntry e;
    e.path = is_path ? spec : absl::StrCat(kNamedDir, "/", spec);
    e.name = is_path ? "" : spec;
    struct stat st;
    if (stat(e.path.c_str(), &st) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("--netns ", spec, ": ", e.path, " does not exist"));
    }
    // A network namespace file is on nsfs; compare with our own namespace's
    // device to refuse a plain file.
    if (own_ns.st_dev != st.st_dev) {
      return absl::InvalidArgumentError(absl::StrCat("--netns ", spec, ": ", e.path, " is not a namespace"));
    }
    e.inode = st.st_ino;
    s->fixed_.push_back(std::move(e));
  }
  return s;
}

std::vector<NetnsEntry> MultiNetnsSource::Namespaces() const {
  std::vector<NetnsEntry> found = Discover(proc_root_, fixed_, all_);
  absl::flat_hash_set<uint64_t> inodes;
  for (const NetnsEntry& e : found) inodes.insert(e.inode);
  std::vector<std::shared_ptr<SockDiagReader>> dropped;  // closed outside the lock
  absl::MutexLock lock(&mu_);
  last_found_ = found;
  for (auto it = readers_.begin(); it != readers_.end();) {
    if (inodes.contains(it->first)) {
      ++it;
      continue;
    }
    dropped.push_back(std::move(it->second.reader));
    readers_.erase(it++);
  }
  return found;
}

uint64_t MultiNetnsSource::CurrentNetns() const { return t_current_inode != 0 ? t_current_inode : own_; }

absl::string_view MultiNetnsSource::CurrentNetnsName() const {
  return t_current_name != nullptr ? absl::string_view(*t_current_name) : absl::string_view();
}

std::string MultiNetnsSource::Describe() const {
  return all_ ? "kernel (every network namespace)" : absl::StrCat("kernel (", fixed_.size(), " network namespaces)");
}

absl::StatusOr<DumpResult> MultiNetnsSource::Dump(const DumpRequest& request, const DiagMessageCallback& on_socket) {
  DumpResult total;
  total.started = absl::Now();
  for (const NetnsEntry& e : Namespaces()) {
    const int fd = OpenNamespace(e);
    if (fd < 0) {
      ++skipped_;  // gone, or its path another namespace's, since it was found
      continue;
    }
    SockDiagReader reader(fd, e.inode);
    t_current_inode = e.inode;
    t_current_name = &e.name;
    absl::StatusOr<DumpResult> r = reader.Dump(request, on_socket);
    t_current_inode = 0;
    t_current_name = nullptr;
    if (!r.ok()) {
      // The caller's own error (a reader gone) ends everything; a namespace
      // that cannot be entered or read is skipped.
      if (absl::IsCancelled(r.status())) return r.status();
      ++skipped_;
      continue;
    }
    total.sockets += r->sockets;
    total.interrupted |= r->interrupted;
  }
  return total;
}

void MultiNetnsSource::ForEachNamespace(const std::function<void(const NetnsEntry&)>& fn) const {
  for (const NetnsEntry& e : Namespaces()) {
    const int fd = OpenNamespace(e);
    if (fd < 0) continue;
    absl::Status s = RunInNetns(fd, [&] { fn(e); });
    close(fd);
    if (!s.ok()) ++skipped_;
  }
}

absl::StatusOr<std::optional<v1::Connection>> MultiNetnsSource::FindOne(const v1::Connection& c) const {
  const absl::Time now = absl::Now();
  std::shared_ptr<SockDiagReader> reader;
  std::string name;
  std::optional<NetnsEntry> known;
  {
    absl::MutexLock lock(&mu_);
    PruneReadersLocked(now, /*making_room=*/false);
    if (auto it = readers_.find(c.netns()); it != readers_.end()) {
      it->second.last_used = now;
      reader = it->second.reader;
      name = it->second.name;
    } else {
      // Only a namespace unknown to the latest walk costs a new walk of /proc.
      for (const NetnsEntry& e : last_found_) {
        if (e.inode == c.netns()) known = e;
      }
    }
  }
  if (reader == nullptr) {
    // A path from an earlier walk may have gone stale (/proc/PID/ns/net of a
    // pid that has exited, or that now runs in another namespace); what it
    // opens is checked, and when it is not the namespace asked for, a fresh
    // walk decides. Kept, a wrong reader would answer for the wrong
    // namespace at every lookup.
    auto walk = [&] {
      known.reset();
      for (NetnsEntry& e : Namespaces()) {
        if (e.inode == c.netns()) known = std::move(e);
      }
      return known ? OpenNamespace(*known) : -1;
    };
    int fd = known ? OpenNamespace(*known) : -1;
    if (fd < 0) fd = walk();
    if (fd < 0) return std::optional<v1::Connection>();  // the namespace is gone, and its sockets with it
    reader = std::make_shared<SockDiagReader>(fd, known->inode);
    name = known->name;
    absl::MutexLock lock(&mu_);
    if (!readers_.contains(known->inode)) {
      PruneReadersLocked(now, /*making_room=*/true);
      readers_.emplace(known->inode, KeptReader{reader, name, now});
    }
  }
  absl::StatusOr<std::optional<v1::Connection>> r = reader->FindOne(c);
  if (r.ok() && r->has_value()) (*r)->set_netns_name(name);
  return r;
}

void MultiNetnsSource::DropReaders() const {
  absl::flat_hash_map<uint64_t, KeptReader> dropped;  // closed outside the lock
  absl::MutexLock lock(&mu_);
  dropped.swap(readers_);
}

void MultiNetnsSource::PruneReadersLocked(absl::Time now, bool making_room) const {
  for (auto it = readers_.begin(); it != readers_.end();) {
    if (now - it->second.last_used >= kReaderIdle) {
      readers_.erase(it++);
    } else {
      ++it;
    }
  }
  while (making_room && readers_.size() >= kMaxReaders) {
    auto oldest = readers_.begin();
    for (auto it = readers_.begin(); it != readers_.end(); ++it) {
      if (it->second.last_used < oldest->second.last_used) oldest = it;
    }
    readers_.erase(oldest);
  }
}

size_t MultiNetnsSource::kept_readers() const {
  absl::MutexLock lock(&mu_);
  return readers_.size();
}

}  // namespace tcbscope::kernel
