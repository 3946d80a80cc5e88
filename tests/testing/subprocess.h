// Test support: run the real binaries (agent, CLI, ss) as child processes.
//
// RunCommand captures stdout and stderr and kills the child (by its pid, the
// only process it ends) when the time limit passes. AgentProcess starts a
// tcbscope-agent on a free loopback port and stops it on destruction.
#ifndef TCBSCOPE_TESTS_TESTING_SUBPROCESS_H_
#define TCBSCOPE_TESTS_TESTING_SUBPROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace tcbscope::testing {

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs argv[0] (a path, or a name looked up in PATH) with `env` added to the
// environment ("NAME=value" entries).
CommandResult RunCommand(const std::vector<std::string>& argv, int timeout_ms = 30000,
                         const std::vector<std::string>& env = {});

// Paths of the built binaries (from TCBSCOPE_BINARY_DIR).
std::string AgentBinary();
std::string CliBinary();

// Resident set size of a process in MiB (-1 if it cannot be read).
int RssMiB(pid_t pid);

class AgentProcess {
 public:
  // Starts the agent with --listen 127.0.0.1:0 plus `extra_args`; waits up to
  // 10 s for its port. ok() is false (and error() says why) if it failed.
  explicit AgentProcess(const std::vector<std::string>& extra_args = {}, const std::string& listen = "127.0.0.1:0");
  ~AgentProcess();
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  bool ok() const { return port_ > 0; }
  const std::string& error() const { return error_; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Sends SIGTERM and waits; returns the exit status (or -1).
  int Stop();
  // The agent's stderr so far.
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string dir_;
  std::string error_;
};

}  // namespace tcbscope::testing

#endif  // TCBSCOPE_TESTS_TESTING_SUBPROCESS_H_
