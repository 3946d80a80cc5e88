// RunCli's last step: output that could not all be written is one line on
// the error stream and a non-zero status, for any command.
#include "client/cli.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
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
// The configuration is empty (/dev/null), so none of the user's applies.
int RunToFullDevice(std::vector<std::string> args, bool buffered, std::string* err) {
  args.insert(args.begin() + 1, {"--config", "/dev/null"});
  FILE* out = fopen("/dev/full", "w");
  if (out == nullptr) {
    ADD_FAILURE() << "cannot open /dev/full";
    return -1;
  }
  if (!buffered) setvbuf(out, nullptr, _IONBF, 0);
  char* err_text = nullptr;
  size_t err_len = 0;
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  Io io;
  io.out = out;
  io.err = open_memstream(&err_text, &err_len);
  const int code = RunCli(static_cast<int>(argv.size()), argv.data(), io);
  fclose(out);
  fclose(io.err);
  err->assign(err_text, err_len);
  free(err_text);
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
