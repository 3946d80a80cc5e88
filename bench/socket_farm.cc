// socket_farm: holds N established TCP connections on loopback (2N sockets,
// both ends local) for benchmarks, spread over worker processes because one
// process may hold only so many open files.
//
//   socket_farm --connections 50000 [--per-process 9000] [--ipv6-fraction 0.1]
//               [--churn 1000] [--ready-file F]
//               [--client-netns NS --server-netns NS --server-address IP]
//
// With the three netns options the connections run between two network
// namespaces (e.g. two lab hosts, deploy/lab/tcbscope-lab): each worker
// listens on IP inside the server namespace and connects from the client
// namespace, so each namespace holds one end of every connection (N sockets
// each), as two real hosts would. NS is a name under /run/netns or a path;
// IP must be one of the lab's (198.51.100.0/24, 2001:db8::/64).
//
// Prints "farm ready: ..." once every connection is established, then holds
// them until SIGINT/SIGTERM (or, with --stdin, until stdin reaches end of
// file, so a parent that dies takes the farm with it). With --churn R
// each worker also opens and closes R/P connections per second beside the
// ones it holds. Loopback or the lab's addresses only.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/ip_address.h"

namespace {

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

struct Options {
  int connections = 50000;
  int per_process = 9000;
  double ipv6_fraction = 0;
  int churn_per_s = 0;
  std::string ready_file;
  bool watch_stdin = false;
  // Between two namespaces; all empty: loopback.
  std::string client_netns, server_netns, server_address;
  sockaddr_storage server{};  // server_address, checked to be the lab's
  socklen_t server_len = 0;
};

[[noreturn]] void Die(const std::string& what) {
  fprintf(stderr, "socket_farm: %s: %s\n", what.c_str(), strerror(errno));
  _exit(1);
}

// `a` as a socket address with port 0.
socklen_t SocketAddress(const tcbscope::IpAddress& a, sockaddr_storage* ss) {
  *ss = {};
  if (a.is_v4()) {
    auto* a4 = reinterpret_cast<sockaddr_in*>(ss);
    a4->sin_family = AF_INET;
    memcpy(&a4->sin_addr, a.bytes(), 4);
    return sizeof(*a4);
  }
  auto* a6 = reinterpret_cast<sockaddr_in6*>(ss);
  a6->sin6_family = AF_INET6;
  memcpy(&a6->sin6_addr, a.bytes(), 16);
  return sizeof(*a6);
}

// The lab's ranges (deploy/lab/tcbscope-lab): the farm sends nowhere else.
bool IsLabAddress(const tcbscope::IpAddress& a) {
  return a.InPrefix(*tcbscope::IpAddress::Parse("198.51.100.0"), 24) ||
         a.InPrefix(*tcbscope::IpAddress::Parse("2001:db8::"), 64);
}

// A listener on `addr` (its port 0: the kernel picks one).
int Listener(const sockaddr_storage& addr, socklen_t len) {
  const int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Die("socket");
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0) Die("bind");
  if (listen(fd, 4096) != 0) Die("listen");
  return fd;
}

int LoopbackListener(bool v6) {
  sockaddr_storage ss;
  const socklen_t len = SocketAddress(*tcbscope::IpAddress::Parse(v6 ? "::1" : "127.0.0.1"), &ss);
  return Listener(ss, len);
}

std::string NetnsPath(const std::string& ns) { return ns.find('/') == std::string::npos ? "/run/netns/" + ns : ns; }

int OpenNetns(const std::string& ns) {
  const std::string path = NetnsPath(ns);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Die("open " + path);
  return fd;
}

void EnterNetns(int fd, const std::string& ns) {
  if (setns(fd, CLONE_NEWNET) != 0) Die("setns " + ns);
}

// Connects `count` sockets to the listener and accepts them, in batches that
// fit the accept queue. Returns false if the file limit or ports ran out.
bool Fill(int lfd, int count, std::vector<int>* fds) {
  sockaddr_storage target{};
  socklen_t tlen = sizeof(target);
  getsockname(lfd, reinterpret_cast<sockaddr*>(&target), &tlen);
  constexpr int kBatch = 256;
  for (int done = 0; done < count && !g_stop;) {
    const int n = std::min(kBatch, count - done);
    for (int i = 0; i < n; ++i) {
      const int c = socket(target.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (c < 0) return false;
      if (connect(c, reinterpret_cast<sockaddr*>(&target), tlen) != 0) {
        close(c);
        return false;
      }
      fds->push_back(c);
    }
    for (int i = 0; i < n; ++i) {
      const int a = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (a < 0) return false;
      fds->push_back(a);
    }
    done += n;
  }
  return true;
}

// A worker: fills its share, reports on `report_fd`, then holds (and churns).
[[noreturn]] void Worker(int index, int count, const Options& opt, int report_fd) {
  signal(SIGTERM, OnSignal);
  signal(SIGINT, SIG_IGN);  // the parent decides when to stop
  const int v6_count = static_cast<int>(count * opt.ipv6_fraction);
  std::vector<int> fds;
  fds.reserve(2 * count + 16);
  int l4;
  bool ok;
  if (opt.server_len > 0) {
    // A socket stays in the namespace it was made in: the listener (and
    // every socket it accepts) in the server's, the connecting ends in the
    // client's, where this worker then stays.
    const int server_ns = OpenNetns(opt.server_netns), client_ns = OpenNetns(opt.client_netns);
    EnterNetns(server_ns, opt.server_netns);
    l4 = Listener(opt.server, opt.server_len);
    EnterNetns(client_ns, opt.client_netns);
    close(server_ns);
    close(client_ns);
    ok = Fill(l4, count, &fds);
  } else {
    l4 = LoopbackListener(false);
    ok = Fill(l4, count - v6_count, &fds);
    if (ok && v6_count > 0) ok = Fill(LoopbackListener(true), v6_count, &fds);
  }
  char msg[64];
  const int len = snprintf(msg, sizeof(msg), "%d %d\n", ok ? 1 : 0, static_cast<int>(fds.size() / 2));
  if (write(report_fd, msg, len) != len) _exit(1);
  close(report_fd);
  if (!ok) _exit(1);
  const int per_tick = opt.churn_per_s > 0 ? std::max(1, opt.churn_per_s / 10) : 0;
  while (!g_stop) {
    if (per_tick == 0) {
      pause();
      continue;
    }
    // Churn in 100 ms ticks: open and close connections beside the held ones.
    std::vector<int> churn;
    Fill(l4, per_tick, &churn);
    for (int fd : churn) close(fd);
    usleep(100000);
  }
  (void)index;
  _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"socket_farm: hold N established loopback TCP connections for benchmarks"};
  app.add_option("--connections", opt.connections, "connections to hold (2 sockets each)")->capture_default_str();
  app.add_option("--per-process", opt.per_process, "connections per worker process")->capture_default_str();
  app.add_option("--ipv6-fraction", opt.ipv6_fraction, "share of connections over ::1")->capture_default_str();
  app.add_option("--churn", opt.churn_per_s, "connections opened and closed per second, in total");
  app.add_option("--ready-file", opt.ready_file, "written with the worker pids once all are established");
  app.add_flag("--stdin", opt.watch_stdin, "also stop when stdin reaches end of file");
  app.add_option("--client-netns", opt.client_netns, "connect from this network namespace (name or path)");
  app.add_option("--server-netns", opt.server_netns, "listen in this network namespace (name or path)");
  app.add_option("--server-address", opt.server_address, "listen on this address in --server-netns");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    fprintf(stderr, "socket_farm: %s\n", e.what());
    return 2;
  }
  if (opt.connections <= 0 || opt.per_process <= 0 || opt.ipv6_fraction < 0 || opt.ipv6_fraction > 1) {
    fprintf(stderr, "socket_farm: --connections and --per-process must be positive, --ipv6-fraction 0..1\n");
    return 2;
  }
  const int netns_options =
      !opt.client_netns.empty() + !opt.server_netns.empty() + !opt.server_address.empty();
  if (netns_options != 0 && netns_options != 3) {
    fprintf(stderr, "socket_farm: --client-netns, --server-netns and --server-address go together\n");
    return 2;
  }
  if (netns_options == 3) {
    absl::StatusOr<tcbscope::IpAddress> server = tcbscope::IpAddress::Parse(opt.server_address);
    if (!server.ok()) {
      fprintf(stderr, "socket_farm: --server-address: %s\n", std::string(server.status().message()).c_str());
      return 2;
    }
    if (!IsLabAddress(*server)) {
      fprintf(stderr, "socket_farm: --server-address must be a lab address (198.51.100.0/24 or 2001:db8::/64)\n");
      return 2;
    }
    opt.server_len = SocketAddress(*server, &opt.server);
  }
  for (const std::string* ns : {&opt.client_netns, &opt.server_netns}) {
    if (ns->empty()) continue;
    const std::string path = NetnsPath(*ns);
    if (access(path.c_str(), R_OK) != 0) {
      fprintf(stderr, "socket_farm: network namespace %s: %s\n", path.c_str(), strerror(errno));
      return 2;
    }
  }
  if (netns_options == 3 && opt.ipv6_fraction > 0) {
    fprintf(stderr, "socket_farm: --ipv6-fraction is for loopback; between namespaces the family is the address's\n");
    return 2;
  }
  rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (static_cast<rlim_t>(2 * opt.per_process + 64) > rl.rlim_cur) {
    fprintf(stderr, "socket_farm: --per-process %d needs %d files but the limit is %llu\n", opt.per_process,
            2 * opt.per_process + 64, static_cast<unsigned long long>(rl.rlim_cur));
    return 2;
  }
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  signal(SIGPIPE, SIG_IGN);

  const int workers = (opt.connections + opt.per_process - 1) / opt.per_process;
  std::vector<pid_t> pids;
  std::vector<int> reports;
  for (int w = 0; w < workers; ++w) {
    const int count = std::min(opt.per_process, opt.connections - w * opt.per_process);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) Die("pipe");
    const pid_t pid = fork();
    if (pid < 0) Die("fork");
    if (pid == 0) {
      close(p[0]);
      Worker(w, count, opt, p[1]);
    }
    close(p[1]);
    pids.push_back(pid);
    reports.push_back(p[0]);
  }
  int total = 0;
  bool ok = true;
  for (int fd : reports) {
    char buf[64] = {};
    const ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    int good = 0, held = 0;
    if (n <= 0 || sscanf(buf, "%d %d", &good, &held) != 2 || !good) ok = false;
    total += held;
  }
  auto stop_workers = [&] {
    for (pid_t pid : pids) kill(pid, SIGTERM);
    for (pid_t pid : pids) waitpid(pid, nullptr, 0);
  };
  if (!ok) {
    stop_workers();
    fprintf(stderr,
            "socket_farm: only %d of %d connections could be made (file limit, ephemeral ports or memory; "
            "see bench/README.md)\n",
            total, opt.connections);
    return 1;
  }
  if (!opt.ready_file.empty()) {
    FILE* f = fopen(opt.ready_file.c_str(), "w");
    if (f != nullptr) {
      for (pid_t pid : pids) fprintf(f, "%d\n", pid);
      fclose(f);
    }
  }
  printf("farm ready: %d connections (%d sockets) in %d processes\n", total, 2 * total, workers);
  fflush(stdout);
  while (!g_stop) {
    if (!opt.watch_stdin) {
      pause();
      continue;
    }
    pollfd p{STDIN_FILENO, POLLIN, 0};
    if (poll(&p, 1, 500) > 0) {
      char b[256];
      if (read(STDIN_FILENO, b, sizeof(b)) <= 0) break;
    }
  }
  stop_workers();
  return 0;
}
