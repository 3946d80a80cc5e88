// The tcbscope command line: global flags, the subcommand table, dispatch,
// exit codes. main() is one call to RunCli.
#ifndef TCBSCOPE_CLIENT_CLI_H_
#define TCBSCOPE_CLIENT_CLI_H_

#include "client/command.h"

namespace tcbscope {

// Parses argv, runs the chosen command, returns the process exit status.
// Output that could not all be written to io.out is one line on io.err and,
// if the command found nothing wrong, status 1 (kExitProblem).
int RunCli(int argc, char** argv, const Io& io = Io());

}  // namespace tcbscope

#endif  // TCBSCOPE_CLIENT_CLI_H_
