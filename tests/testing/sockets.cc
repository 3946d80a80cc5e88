#include "testing/sockets.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace tcbscope::testing {
namespace {

socklen_t MakeAddr(const std::string& addr, int port, sockaddr_storage* ss) {
  std::memset(ss, 0, sizeof(*ss));
  if (addr.find(':') != std::string::npos) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, addr.c_str(), &s6->sin6_addr) != 1) throw std::runtime_error("bad v6 " + addr);
    return sizeof(*s6);
  }
  auto* s4 = reinterpret_cast<sockaddr_in*>(ss);
  s4->sin_family = AF_INET;
  s4->sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, addr.c_str(), &s4->sin_addr) != 1) throw std::runtime_error("bad v4 " + addr);
  return sizeof(*s4);
}

}  // namespace

SocketSet::~SocketSet() {
  for (int fd : fds_) close(fd);
}

int SocketSet::LocalPort(int fd) {
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

int SocketSet::Listen(const std::string& addr, int backlog, int* fd_out) {
  sockaddr_storage ss;
  const socklen_t len = MakeAddr(addr, 0, &ss);
  const int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket");
  if (ss.ss_family == AF_INET6 && addr != "::") {
    const int one = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, backlog) != 0) {
    close(fd);
    throw std::runtime_error("bind/listen " + addr + ": " + strerror(errno));
  }
  fds_.push_back(fd);
  if (fd_out != nullptr) *fd_out = fd;
  return LocalPort(fd);
}

int SocketSet::Connect(const std::string& addr, int port, const std::string& from) {
  sockaddr_storage ss;
  const socklen_t len = MakeAddr(addr, port, &ss);
  const int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket");
  if (!from.empty()) {
    sockaddr_storage src;
    const socklen_t slen = MakeAddr(from, 0, &src);
    if (bind(fd, reinterpret_cast<sockaddr*>(&src), slen) != 0) {
      close(fd);
      throw std::runtime_error("bind " + from + ": " + strerror(errno));
    }
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    close(fd);
    throw std::runtime_error("connect " + addr + ": " + strerror(errno));
  }
  fds_.push_back(fd);
  return fd;
}

int SocketSet::Accept(int listener_fd) {
  const int fd = accept4(listener_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) throw std::runtime_error(std::string("accept: ") + strerror(errno));
  fds_.push_back(fd);
  return fd;
}

SocketSet::Pair SocketSet::EstablishedPair(const std::string& addr) {
  int lfd = -1;
  Pair p;
  p.server_port = Listen(addr, 4, &lfd);
  p.client = Connect(addr, p.server_port);
  p.server = Accept(lfd);
  p.client_port = LocalPort(p.client);
  Close(lfd);
  return p;
}

void SocketSet::WriteBytes(int fd, size_t n) {
  std::string buf(n, 'x');
  size_t done = 0;
  while (done < n) {
    const ssize_t w = write(fd, buf.data() + done, n - done);
    if (w <= 0) throw std::runtime_error("write");
    done += static_cast<size_t>(w);
  }
}

void SocketSet::Close(int fd) {
  auto it = std::find(fds_.begin(), fds_.end(), fd);
  if (it != fds_.end()) fds_.erase(it);
  close(fd);
}

}  // namespace tcbscope::testing
