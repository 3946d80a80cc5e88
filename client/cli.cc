#include "client/cli.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <type_traits>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/client_config.h"

namespace tcbscope {
namespace {

// The one table of subcommands: order here is the order in --help.
const CommandEntry kCommands[] = {
    {"info", "who each host is: names, kernel, addresses, agent capabilities", &MakeInfoCommand},
    {"list", "a remote ss: the TCP sockets of one or many hosts [FILTER]", &MakeListCommand},
    {"watch", "connection changes as they happen (added, changed, removed), from every host at once",
     &MakeWatchCommand},
    {"counters", "the kernel's TCP counters (Tcp, TcpExt), optionally as a delta", &MakeCountersCommand},
    {"correlate", "pair both ends of each connection between two hosts and say what differs",
     &MakeCorrelateCommand},
    {"compare", "every field of both ends of selected connections, side by side in sequence space [--svg]",
     &MakeCompareCommand},
    {"diagnose", "why can't A reach B:PORT: one verdict with evidence from both hosts [--probe]",
     &MakeDiagnoseCommand},
};

const char* EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

}  // namespace

void PrintError(const Io& io, absl::string_view message) {
  std::string line = absl::StrCat("tcbscope: ", message, "\n");
  fwrite(line.data(), 1, line.size(), io.err);
}

void SetHostError(const absl::Status& status, v1::HostError* error) {
  error->set_code(StatusCodeName(status.code()));
  error->set_message(std::string(status.message()));
}

int ReportHostErrors(const std::vector<HostPort>& hosts, const std::vector<absl::Status>& statuses, const Io& io) {
  int exit_code = kExitOk;
  for (size_t i = 0; i < hosts.size() && i < statuses.size(); ++i) {
    if (statuses[i].ok()) continue;
    PrintError(io, absl::StrCat(hosts[i].ToString(), ": ", statuses[i].message()));
    exit_code = std::max(exit_code, absl::IsInvalidArgument(statuses[i]) ? int{kExitUsage} : int{kExitUnreachable});
  }
  return exit_code;
}

namespace {

template <typename T>
void AddOption(CLI::App* app, const std::string& names, T* value, const std::string& help, unsigned traits) {
  CLI::Option* o = app->add_option(names, *value, help);
  // CLI11 reads "-1" into an unsigned variable as its largest value.
  if constexpr (std::is_unsigned_v<T>) {
    o->check(CLI::Validator(
        [](const std::string& text) {
          return text.find('-') == std::string::npos ? std::string() : "'" + text + "' is negative";
        },
        "", "not negative"));
  }
  if (traits & CommandFlags::kRequired) o->required();
  if (traits & CommandFlags::kShowDefault) o->capture_default_str();
}

}  // namespace

void CommandFlags::Flag(const std::string& names, bool* value, const std::string& help) {
  app_->add_flag(names, *value, help);
}

void CommandFlags::IgnoredFlag(const std::string& names, const std::string& help) {
  app_->add_flag(names, help);
}

void CommandFlags::Option(const std::string& names, std::string* value, const std::string& help, unsigned traits) {
  AddOption(app_, names, value, help, traits);
}

void CommandFlags::Option(const std::string& names, int* value, const std::string& help, unsigned traits) {
  AddOption(app_, names, value, help, traits);
}

void CommandFlags::Option(const std::string& names, uint16_t* value, const std::string& help, unsigned traits) {
  AddOption(app_, names, value, help, traits);
}

void CommandFlags::Option(const std::string& names, uint64_t* value, const std::string& help, unsigned traits) {
  AddOption(app_, names, value, help, traits);
}

void CommandFlags::Option(const std::string& names, std::vector<std::string>* values, const std::string& help,
                          unsigned traits) {
  AddOption(app_, names, values, help, traits);
}

namespace {

// The command word: the first argument that is neither a flag nor the value
// of one of `app`'s options that take one. Empty when there is none.
std::string CommandWord(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (const CLI::Option* o = app.get_option_no_throw(a); o != nullptr && o->get_items_expected_min() > 0) {
      ++i;
      continue;
    }
    if (!a.empty() && a[0] == '-') continue;
    return a;
  }
  return "";
}

}  // namespace

namespace {

int RunCommand(int argc, char** argv, const Io& io) {
  CLI::App app{"tcbscope: both ends of a TCP connection, side by side"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the subcommand
  std::string output = "table";
  std::string timeout_text = "10s";
  GlobalOptions global;
  global.client.tls_ca = EnvOr("TCBSCOPE_TLS_CA", "");
  global.client.tls_cert = EnvOr("TCBSCOPE_TLS_CERT", "");
  global.client.tls_key = EnvOr("TCBSCOPE_TLS_KEY", "");
  global.client.token_file = EnvOr("TCBSCOPE_TOKEN_FILE", "");
  app.add_option("-o,--output", output, "table or json")->capture_default_str();
  app.add_option("--timeout", timeout_text, "deadline of each call to an agent (e.g. 3s, 500ms)")
      ->capture_default_str();
  app.add_option("--tls-ca", global.client.tls_ca, "CA certificate (PEM) to verify agents; turns on TLS");
  app.add_option("--tls-cert", global.client.tls_cert, "client certificate (PEM) for mutual TLS");
  app.add_option("--tls-key", global.client.tls_key, "client key (PEM) for mutual TLS");
  app.add_option("--token-file", global.client.token_file, "file holding a bearer token for the agents");
  std::string config_path = EnvOr("TCBSCOPE_CONFIG", "");
  const bool config_from_env = !config_path.empty();
  CLI::Option* config_flag = app.add_option(
      "--config", config_path, "configuration file: named hosts and credentials (default ~/.config/tcbscope/config)");

  // The command word is checked before parsing, so that a mistyped command
  // is answered with the list of commands.
  const std::string word = CommandWord(app, argc, argv);
  bool known = word.empty();
  std::string names;
  for (const CommandEntry& e : kCommands) {
    known |= word == e.name;
    absl::StrAppend(&names, names.empty() ? "" : ", ", e.name);
  }
  if (!known) {
    PrintError(io, absl::StrCat("unknown command '", word, "' (commands: ", names, "; see tcbscope --help)"));
    return kExitUsage;
  }

  std::vector<std::pair<CLI::App*, std::unique_ptr<Command>>> commands;
  for (const CommandEntry& e : kCommands) {
    CLI::App* sub = app.add_subcommand(e.name, e.synopsis);
    std::unique_ptr<Command> cmd = e.make();
    CommandFlags flags(sub);
    cmd->Setup(&flags);
    commands.emplace_back(sub, std::move(cmd));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {  // --help
      std::string help = app.help();
      for (auto& [sub, cmd] : commands) {
        if (sub->parsed()) help = sub->help();
      }
      fwrite(help.data(), 1, help.size(), io.out);
      return kExitOk;
    }
    PrintError(io, absl::StrCat(e.what(), " (see tcbscope --help)"));
    return kExitUsage;
  }
  if (output == "table") {
    global.output = OutputFormat::kTable;
  } else if (output == "json") {
    global.output = OutputFormat::kJson;
  } else {
    PrintError(io, absl::StrCat("-o: '", output, "' is not an output format (table or json)"));
    return kExitUsage;
  }
  const bool named = config_from_env || config_flag->count() > 0;
  absl::StatusOr<std::optional<ClientConfig>> config =
      LoadClientConfig(named ? config_path : DefaultClientConfigPath(), named);
  if (!config.ok()) {
    PrintError(io, config.status().message());
    return kExitUsage;
  }
  if (config->has_value()) {
    global.client.config = std::make_shared<const ClientConfig>(**std::move(config));
    if (global.client.config->timeout && app.get_option("--timeout")->count() == 0) {
      timeout_text = absl::FormatDuration(*global.client.config->timeout);
    }
  }
  if (!absl::ParseDuration(timeout_text, &global.client.timeout) || global.client.timeout <= absl::ZeroDuration()) {
    PrintError(io, absl::StrCat("--timeout: '", timeout_text, "' is not a positive duration (e.g. 3s)"));
    return kExitUsage;
  }
  for (auto& [sub, cmd] : commands) {
    if (sub->parsed()) return cmd->Run(global, io);
  }
  PrintError(io, "no command given (see tcbscope --help)");
  return kExitUsage;
}

}  // namespace

int RunCli(int argc, char** argv, const Io& io) {
  const int code = RunCommand(argc, argv, io);
  // Output that did not all reach its destination (a full disk; a reader
  // that went away, with SIGPIPE ignored) is reported here, once for every
  // command: exit 0 would say that everything was printed.
  errno = 0;
  const bool flush_failed = fflush(io.out) != 0;
  const int flush_errno = errno;
  if (!flush_failed && !ferror(io.out)) return code;
  PrintError(io, flush_failed && flush_errno != 0 ? absl::StrCat("writing the output: ", strerror(flush_errno))
                                                   : "writing the output failed");
  return code == kExitOk ? kExitProblem : code;
}

}  // namespace tcbscope
