// Socket owners two ways on the live kernel: the BPF iter/task_file pass and
// the /proc/*/fd walk must name the same (pid, fd, comm) for every socket the
// test holds, including one shared by two processes.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <string>
#include <tuple>

#include "agent/kernel/bpf_programs.h"
#include "agent/kernel/proc_owners.h"
#include "gtest/gtest.h"
#include "testing/sockets.h"

namespace tcbscope {
namespace {

using Owners = std::set<std::tuple<uint32_t, uint32_t, std::string>>;  // pid, fd, comm

Owners Of(const kernel::SocketOwners& o, uint64_t inode) {
  v1::Connection c;
  o.Fill(inode, &c);
  Owners out;
  for (const v1::Owner& w : c.owners()) out.emplace(w.pid(), w.fd(), w.comm());
  return out;
}

uint64_t InodeOf(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

TEST(OwnersTest, BpfAndProcAgree) {
  if (geteuid() != 0) GTEST_SKIP() << "BPF iter/task_file needs root (or CAP_BPF and CAP_PERFMON)";
  absl::StatusOr<std::unique_ptr<kernel::BpfFilesReader>> reader = kernel::BpfFilesReader::Open();
  if (!reader.ok()) GTEST_SKIP() << "no BPF owners here: " << reader.status();

  testing::SocketSet sockets;
  std::vector<int> fds;
  for (int i = 0; i < 20; ++i) {
    testing::SocketSet::Pair p = sockets.EstablishedPair("127.0.0.1");
    fds.push_back(p.client);
    fds.push_back(p.server);
  }
  // A child holding the same sockets (fork shares them): two owners each.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  if (child == 0) {
    close(ready[0]);
    (void)!write(ready[1], "x", 1);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char x;
  ASSERT_EQ(read(ready[0], &x, 1), 1);
  close(ready[0]);

  absl::StatusOr<kernel::SocketOwners> from_bpf = kernel::SocketOwners::FromBpf(**reader);
  kernel::SocketOwners from_proc = kernel::SocketOwners::Scan("/proc");
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_TRUE(from_bpf.ok()) << from_bpf.status();

  std::string self_comm;
  std::ifstream("/proc/self/comm") >> self_comm;
  for (int fd : fds) {
    const uint64_t inode = InodeOf(fd);
    ASSERT_NE(inode, 0u);
    const Owners bpf = Of(*from_bpf, inode), proc = Of(from_proc, inode);
    EXPECT_EQ(bpf, proc) << "fd " << fd;
    EXPECT_EQ(bpf.size(), 2u) << "fd " << fd << ": the test and its child";
    EXPECT_EQ(bpf.count({static_cast<uint32_t>(getpid()), static_cast<uint32_t>(fd), self_comm}), 1u) << "fd " << fd;
    EXPECT_EQ(bpf.count({static_cast<uint32_t>(child), static_cast<uint32_t>(fd), self_comm}), 1u) << "fd " << fd;
  }
}

}  // namespace
}  // namespace tcbscope
