// RunCli: the commands' flags as CommandFlags declares them, and its last
// step: output that could not all be written is one line on the error stream
// and a non-zero status, for any command.
#include "client/cli.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tcbscope {
namespace {

// Runs the CLI in-process, writing to `out`, with none of the user's
// settings: the credentials it would read from the environment are dropped
// and its configuration is empty (/dev/null). Returns the status; `err` gets
// what it wrote to its error stream.
int RunWithOutput(std::vector<std::string> args, FILE* out, std::string* err) {
  for (const char* name : {"TCBSCOPE_TLS_CA", "TCBSCOPE_TLS_CERT", "TCBSCOPE_TLS_KEY", "TCBSCOPE_TOKEN_FILE"}) {
    unsetenv(name);
  }
  args.insert(args.begin() + 1, {"--config", "/dev/null"});
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  char* err_text = nullptr;
  size_t err_len = 0;
  Io io;
  io.out = out;
  io.err = open_memstream(&err_text, &err_len);
  const int code = RunCli(static_cast<int>(argv.size()), argv.data(), io);
  fclose(io.err);
  err->assign(err_text, err_len);
  free(err_text);
  return code;
}

// Runs the CLI with its output going to /dev/full, where every write fails
// with ENOSPC. Buffered, the failure comes at RunCli's own flush; unbuffered,
// at the command's first write, after which the stream holds nothing and
// fflush succeeds: only the stream's error flag still knows.
int RunToFullDevice(std::vector<std::string> args, bool buffered, std::string* err) {
  FILE* out = fopen("/dev/full", "w");
  if (out == nullptr) {
    ADD_FAILURE() << "cannot open /dev/full";
    return -1;
  }
  if (!buffered) setvbuf(out, nullptr, _IONBF, 0);
  const int code = RunWithOutput(std::move(args), out, err);
  fclose(out);
  return code;
}

// Runs the CLI; `out` gets what it printed.
int RunCaptured(std::vector<std::string> args, std::string* out, std::string* err) {
  char* out_text = nullptr;
  size_t out_len = 0;
  FILE* stream = open_memstream(&out_text, &out_len);
  const int code = RunWithOutput(std::move(args), stream, err);
  fclose(stream);
  out->assign(out_text, out_len);
  free(out_text);
  return code;
}

TEST(CliTest, FlagsBindTheCommandsVariables) {
  std::string out, err;
  // ss's -t and -n are accepted and do nothing; -a is list's own. The host
  // (port 1 on loopback) refuses at once, so getting that far shows the
  // flags were taken.
  EXPECT_EQ(RunCaptured({"tcbscope", "list", "-tan", "127.0.0.1:1", "--timeout", "5s"}, &out, &err), 3) << err;
  EXPECT_THAT(err, testing::StartsWith("tcbscope: 127.0.0.1:1"));
  // A value given reaches the command's variable: each command refuses
  // these itself, after the parse, by what the variable holds.
  EXPECT_EQ(RunCaptured({"tcbscope", "compare", "a", "b", "sport = :1", "--samples", "0"}, &out, &err), 2);
  EXPECT_THAT(err, testing::HasSubstr("--samples must be from 1"));
  EXPECT_EQ(RunCaptured({"tcbscope", "diagnose", "a", "b:80", "--wait", "10m"}, &out, &err), 2);
  EXPECT_THAT(err, testing::HasSubstr("--wait: '10m'"));
  EXPECT_EQ(RunCaptured({"tcbscope", "watch", "127.0.0.1:1", "--duration", "never"}, &out, &err), 2);
  EXPECT_THAT(err, testing::HasSubstr("--duration: 'never'"));
  // A default that --help shows is the variable's value before the parse.
  EXPECT_EQ(RunCaptured({"tcbscope", "diagnose", "--help"}, &out, &err), 0);
  EXPECT_THAT(out, testing::ContainsRegex("--agent-port-b [A-Z]+=7411 "));
  EXPECT_THAT(out, testing::ContainsRegex("--wait [A-Z]+=[0-9]+s "));
}

TEST(CliTest, AValueThatDoesNotFitItsVariableIsAUsageError) {
  std::string out, err;
  EXPECT_EQ(RunCaptured({"tcbscope", "diagnose", "a", "b:80", "--agent-port-b", "70000"}, &out, &err), 2);
  EXPECT_THAT(err, testing::HasSubstr("--agent-port-b"));
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_EQ(RunCaptured({"tcbscope", "watch", "127.0.0.1:1", "--count", "many"}, &out, &err), 2);
  EXPECT_THAT(err, testing::HasSubstr("--count"));
  // Not the largest count, which would watch forever.
  // (--duration ends the watch should -1 be taken.)
  EXPECT_EQ(RunCaptured({"tcbscope", "watch", "127.0.0.1:1", "--count", "-1", "--duration", "1s"}, &out, &err), 2);
  EXPECT_THAT(err, testing::HasSubstr("--count"));
  EXPECT_EQ(RunCaptured({"tcbscope", "compare", "a", "b", "sport = :1", "--samples", "2.5"}, &out, &err), 2);
  EXPECT_THAT(err, testing::HasSubstr("--samples"));
}

TEST(CliTest, ARequiredArgumentThatIsMissingIsAUsageError) {
  std::string out, err;
  EXPECT_EQ(RunCaptured({"tcbscope", "info"}, &out, &err), 2);
  EXPECT_THAT(err, testing::HasSubstr("hosts"));
  EXPECT_EQ(RunCaptured({"tcbscope", "diagnose", "a"}, &out, &err), 2);
  EXPECT_THAT(err, testing::HasSubstr("target"));
}

TEST(CliTest, OutputThatCannotBeWrittenIsAnError) {
  std::string err;
  EXPECT_EQ(RunToFullDevice({"tcbscope", "--help"}, /*buffered=*/true, &err), 1);
  EXPECT_EQ(err, "tcbscope: writing the output: No space left on device\n");
}

TEST(CliTest, AWriteThatFailedEarlierIsFoundToo) {
  std::string err;
  EXPECT_EQ(RunToFullDevice({"tcbscope", "--help"}, /*buffered=*/false, &err), 1);
  EXPECT_EQ(err, "tcbscope: writing the output failed\n");
}

TEST(CliTest, AFailingCommandKeepsItsStatusAndTheLostOutputIsSaidOnce) {
  // Port 1 on loopback: refused at once. The JSON result, with the host's
  // error in it, is written (and fails) inside the command.
  std::string err;
  EXPECT_EQ(RunToFullDevice({"tcbscope", "info", "127.0.0.1:1", "-o", "json", "--timeout", "5s"}, false, &err), 3);
  // Two lines: the host's error, then the lost output, said once.
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 2) << err;
  EXPECT_THAT(err, testing::StartsWith("tcbscope: 127.0.0.1:1"));
  EXPECT_THAT(err, testing::EndsWith("\ntcbscope: writing the output failed\n"));
}

}  // namespace
}  // namespace tcbscope
