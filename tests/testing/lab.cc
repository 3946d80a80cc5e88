#include "testing/lab.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <thread>

namespace tcbscope::testing {
namespace {

std::string LabScript() { return std::string(TCBSCOPE_SOURCE_DIR) + "/deploy/lab/tcbscope-lab"; }

}  // namespace

std::string Lab::Unavailable() {
  if (geteuid() != 0) return "needs root to create network namespaces";
  CommandResult r = RunCommand({"ip", "netns", "list"});
  if (r.exit_code != 0) return "`ip netns` is not available: " + r.err;
  if (RunCommand({"nft", "--version"}).exit_code != 0) return "nft is not installed";
  return "";
}

Lab::Lab(int hosts) : prefix_("t" + std::to_string(getpid())) {
  Down();  // a leftover from a crashed run with the same pid
  down_ = false;
  CommandResult r = Script({"up", std::to_string(hosts)});
  ok_ = r.exit_code == 0;
  if (!ok_) error_ = "lab up failed: " + r.err;
}

Lab::~Lab() { Down(); }

void Lab::Down() {
  if (down_) return;
  Script({"down"});
  down_ = true;
}

CommandResult Lab::Script(const std::vector<std::string>& args, int timeout_ms) const {
  std::vector<std::string> argv = {LabScript()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout_ms,
                    {"TCBSCOPE_LAB_PREFIX=" + prefix_, "TCBSCOPE_AGENT=" + AgentBinary()});
}

bool Lab::StartAgent(int host, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"agent", "h" + std::to_string(host)};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = Script(argv);
  if (r.exit_code != 0) error_ = "agent in h" + std::to_string(host) + ": " + r.err;
  return r.exit_code == 0;
}

CommandResult Lab::RunIn(int host, const std::vector<std::string>& argv, int timeout_ms) const {
  std::vector<std::string> full = {"ip", "netns", "exec", Netns(host)};
  full.insert(full.end(), argv.begin(), argv.end());
  return RunCommand(full, timeout_ms);
}

CommandResult Lab::Cli(int host, const std::vector<std::string>& args, int timeout_ms) const {
  std::vector<std::string> argv = {CliBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunIn(host, argv, timeout_ms);
}

bool InNetns(const std::string& netns, const std::function<void()>& fn) {
  bool joined = false;
  std::thread t([&] {
    const int fd = open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    joined = setns(fd, CLONE_NEWNET) == 0;
    close(fd);
    if (joined) fn();
  });
  t.join();
  return joined;
}

}  // namespace tcbscope::testing
