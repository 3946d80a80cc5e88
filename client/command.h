// The CLI's subcommands: one table drives parsing, dispatch and help
// (client/cli.cc). Each command declares its flags through CommandFlags, then
// runs with the global options and returns an exit code.
#ifndef TCBSCOPE_CLIENT_COMMAND_H_
#define TCBSCOPE_CLIENT_COMMAND_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "client/agent_client.h"
#include "tcbscope/v1/results.pb.h"

namespace CLI {
class App;
}  // namespace CLI

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

// What a command may declare on its subcommand. It stands between the commands
// and CLI11 so that CLI11, header-only and several seconds of compile time in
// each file that includes it, is compiled in cli.cc alone.
//
// Each call binds one of the caller's variables, which the parse writes; the
// variable must outlive the parse. A name starting with '-' is a flag or an
// option ("-l,--listening"); any other name is a positional argument. A value
// that does not fit the variable's type, an unknown flag and a missing
// required argument are parse errors, reported by RunCli as usage errors.
class CommandFlags {
 public:
  enum Traits : unsigned {
    kPlain = 0,
    kRequired = 1u << 0,     // the parse fails without it
    kShowDefault = 1u << 1,  // --help shows the variable's value before the parse
  };

  // `app` must outlive this object.
  explicit CommandFlags(CLI::App* app) : app_(app) {}

  // A switch: `*value` becomes true when it is given.
  void Flag(const std::string& names, bool* value, const std::string& help);
  // A switch that is accepted and has no effect (ss habits such as -t).
  void IgnoredFlag(const std::string& names, const std::string& help);
  void Option(const std::string& names, std::string* value, const std::string& help, unsigned traits = kPlain);
  void Option(const std::string& names, int* value, const std::string& help, unsigned traits = kPlain);
  void Option(const std::string& names, uint16_t* value, const std::string& help, unsigned traits = kPlain);
  void Option(const std::string& names, uint64_t* value, const std::string& help, unsigned traits = kPlain);
  // Takes every value given (a positional takes all the remaining words).
  void Option(const std::string& names, std::vector<std::string>* values, const std::string& help,
              unsigned traits = kPlain);

 private:
  CLI::App* app_;
};

class Command {
 public:
  virtual ~Command() = default;
  // Declares this command's positional arguments and flags.
  virtual void Setup(CommandFlags* flags) = 0;
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
