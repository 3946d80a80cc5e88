// Test support: the network-namespace lab (deploy/lab/tcbscope-lab) from C++.
//
// A Lab brings up N hosts under a prefix unique to this process and takes
// them down in its destructor, also when the test fails. InNetns runs a
// function on a thread that has joined a host's network namespace, so the
// sockets it creates live in that host while the test holds their fds.
#ifndef TCBSCOPE_TESTS_TESTING_LAB_H_
#define TCBSCOPE_TESTS_TESTING_LAB_H_

#include <functional>
#include <string>
#include <vector>

#include "testing/subprocess.h"

namespace tcbscope::testing {

class Lab {
 public:
  // Why a lab cannot run here (not root, no `ip netns`), or "" if it can.
  static std::string Unavailable();

  explicit Lab(int hosts);
  ~Lab();
  Lab(const Lab&) = delete;
  Lab& operator=(const Lab&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& prefix() const { return prefix_; }
  std::string Netns(int host) const { return prefix_ + "-h" + std::to_string(host); }
  static std::string V4(int host) { return "198.51.100." + std::to_string(host); }
  static std::string V6(int host) { return "2001:db8::" + std::to_string(host); }

  // The lab script with these arguments (prefix set); its result.
  CommandResult Script(const std::vector<std::string>& args, int timeout_ms = 30000) const;
  // Starts an agent in `host` on V4(host):7411 with `args` added. False (and
  // error()) on failure.
  bool StartAgent(int host, const std::vector<std::string>& args = {});
  // Runs argv inside `host`.
  CommandResult RunIn(int host, const std::vector<std::string>& argv, int timeout_ms = 30000) const;
  // `tcbscope ARGS...` run inside `host`.
  CommandResult Cli(int host, const std::vector<std::string>& args, int timeout_ms = 30000) const;
  void Down();

 private:
  std::string prefix_;
  bool ok_ = false;
  bool down_ = false;
  std::string error_;
};

// Runs fn on a new thread inside the named network namespace and waits.
// Returns false if the namespace could not be joined.
bool InNetns(const std::string& netns, const std::function<void()>& fn);

}  // namespace tcbscope::testing

#endif  // TCBSCOPE_TESTS_TESTING_LAB_H_
