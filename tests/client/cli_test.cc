// RunCli's last step: output that could not all be written is one line on
// the error stream and a non-zero status, for any command.
#include "client/cli.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tcbscope {
namespace {

// Runs the CLI in-process with its output going to /dev/full, where every
// write fails with ENOSPC. Buffered, the failure comes at RunCli's own flush;
// unbuffered, at the command's first write, after which the stream holds
// nothing and fflush succeeds: only the stream's error flag still knows.
// Returns the status; `err` gets what the CLI wrote to its error stream.
// The configuration is an empty file, so none of the user's applies.
int RunToFullDevice(std::vector<std::string> args, bool buffered, std::string* err) {
  const std::string config = testing::TempDir() + "/cli_test_config_" + std::to_string(getpid());
  fclose(fopen(config.c_str(), "w"));
  args.insert(args.begin() + 1, {"--config", config});
  FILE* out = fopen("/dev/full", "w");
  FILE* errf = tmpfile();
  if (out == nullptr || errf == nullptr) {
    ADD_FAILURE() << "cannot open /dev/full or a temporary file";
    return -1;
  }
  if (!buffered) setvbuf(out, nullptr, _IONBF, 0);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  Io io;
  io.out = out;
  io.err = errf;
  const int code = RunCli(static_cast<int>(argv.size()), argv.data(), io);
  fclose(out);
  rewind(errf);
  err->clear();
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), errf)) > 0;) err->append(buf, n);
  fclose(errf);
  std::remove(config.c_str());
  return code;
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
