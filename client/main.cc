// tcbscope: the CLI. Everything lives in the library; see client/cli.h.
#include "client/cli.h"

int main(int argc, char** argv) { return tcbscope::RunCli(argc, argv); }
