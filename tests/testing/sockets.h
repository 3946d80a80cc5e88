// Test support: real loopback sockets in known states.
//
// Each helper returns owned fds (closed by the destructor of SocketSet), and
// every socket is bound to loopback: test traffic never leaves the host.
#ifndef TCBSCOPE_TESTS_TESTING_SOCKETS_H_
#define TCBSCOPE_TESTS_TESTING_SOCKETS_H_

#include <cstdint>
#include <string>
#include <vector>

namespace tcbscope::testing {

class SocketSet {
 public:
  SocketSet() = default;
  ~SocketSet();
  SocketSet(const SocketSet&) = delete;
  SocketSet& operator=(const SocketSet&) = delete;

  // A listening socket on addr (e.g. "127.0.0.1", "::1") and a kernel-chosen
  // port; returns the port. backlog as listen(2).
  int Listen(const std::string& addr, int backlog, int* fd_out = nullptr);
  // Connects to addr:port from `from` (may be empty); returns the fd.
  int Connect(const std::string& addr, int port, const std::string& from = "");
  // accept(2) on a listener; returns the fd.
  int Accept(int listener_fd);
  // An established pair; returns {client_fd, server_fd} and the ports.
  struct Pair {
    int client = -1, server = -1;
    int client_port = 0, server_port = 0;
  };
  Pair EstablishedPair(const std::string& addr);
  // Writes `n` bytes on fd (blocking).
  void WriteBytes(int fd, size_t n);
  void Close(int fd);  // closes and forgets one fd

  static int LocalPort(int fd);

 private:
  std::vector<int> fds_;
};

// Polls `predicate` every 10 ms for up to `ms`; returns its last value.
template <typename F>
bool WaitFor(F predicate, int ms = 3000);

}  // namespace tcbscope::testing

#include <unistd.h>
template <typename F>
bool tcbscope::testing::WaitFor(F predicate, int ms) {
  for (int waited = 0; waited < ms; waited += 10) {
    if (predicate()) return true;
    usleep(10000);
  }
  return predicate();
}

#endif  // TCBSCOPE_TESTS_TESTING_SOCKETS_H_
