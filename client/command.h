// The CLI's subcommands: one table drives parsing, dispatch and help
// (client/cli.cc). Each command declares its flags on its own CLI11
// subcommand, then runs with the global options and returns an exit code.
#ifndef TCBSCOPE_CLIENT_COMMAND_H_
#define TCBSCOPE_CLIENT_COMMAND_H_

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "client/agent_client.h"
#include "tcbscope/v1/results.pb.h"

namespace tcbscope {

// Exit status (DESIGN.md): 0 nothing wrong, 1 a problem found, 2 bad usage or
// input, 3 a host could not be reached.
enum ExitCode : int { kExitOk = 0, kExitProblem = 1, kExitUsage = 2, kExitUnreachable = 3 };

enum class OutputFormat { kTable, kJson };

struct GlobalOptions {
  OutputFormat output = OutputFormat::kTable;
  ClientOptions client;
};

// Where a command writes. Tests may point these at temp files.
struct Io {
  FILE* out = stdout;
  FILE* err = stderr;
};

class Command {
 public:
  virtual ~Command() = default;
  // Adds this command's positional arguments and flags to `sub`.
  virtual void Setup(CLI::App* sub) = 0;
  virtual int Run(const GlobalOptions& global, const Io& io) = 0;
};

struct CommandEntry {
  const char* name;
  const char* synopsis;  // one line for the help table
  std::unique_ptr<Command> (*make)();
};

std::unique_ptr<Command> MakeInfoCommand();
std::unique_ptr<Command> MakeListCommand();
std::unique_ptr<Command> MakeCountersCommand();
std::unique_ptr<Command> MakeCorrelateCommand();
std::unique_ptr<Command> MakeCompareCommand();
std::unique_ptr<Command> MakeDiagnoseCommand();
std::unique_ptr<Command> MakeWatchCommand();

// One line to io.err: "tcbscope: " + message.
void PrintError(const Io& io, absl::string_view message);

// A host's failure as the result documents carry it.
void SetHostError(const absl::Status& status, v1::HostError* error);

// One line per host that failed, and the exit status they call for: 0 when
// none failed, 2 when an agent refused the input (INVALID_ARGUMENT), else 3.
int ReportHostErrors(const std::vector<HostPort>& hosts, const std::vector<absl::Status>& statuses, const Io& io);

}  // namespace tcbscope

#endif  // TCBSCOPE_CLIENT_COMMAND_H_
