// RunCli's last step: output that could not all be written is one line on
// the error stream and a non-zero status, for any command.
#include "client/cli.h"

#include <cstdio>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tcbscope {
namespace {

// Runs the CLI in-process with its output going to /dev/full (every write
// fails with ENOSPC once the stream's buffer is flushed). Returns the status;
// `err` gets what it wrote to the error stream.
int RunToFullDevice(std::vector<std::string> args, std::string* err) {
  FILE* out = fopen("/dev/full", "w");
  FILE* errf = tmpfile();
  if (out == nullptr || errf == nullptr) {
    ADD_FAILURE() << "cannot open /dev/full or a temporary file";
    return -1;
  }
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
  return code;
}

const char kLostOutput[] = "^tcbscope: writing the output(: No space left on device| failed)\n$";

TEST(CliTest, OutputThatCannotBeWrittenIsAnError) {
  std::string err;
  EXPECT_EQ(RunToFullDevice({"tcbscope", "--help"}, &err), 1);
  EXPECT_THAT(err, testing::ContainsRegex(kLostOutput));
}

TEST(CliTest, AFailingCommandKeepsItsStatusAndStillSaysTheOutputIsLost) {
  // Port 1 on loopback: refused at once. The JSON result (with the host's
  // error in it) goes to /dev/full.
  std::string err;
  EXPECT_EQ(RunToFullDevice({"tcbscope", "info", "127.0.0.1:1", "-o", "json", "--timeout", "5s"}, &err), 3);
  EXPECT_THAT(err, testing::HasSubstr("127.0.0.1:1"));
  EXPECT_THAT(err, testing::EndsWith("\n"));
  // The last line says the output is lost; it is there once.
  const size_t last = err.rfind('\n', err.size() - 2);
  EXPECT_THAT(err.substr(last == std::string::npos ? 0 : last + 1), testing::ContainsRegex(kLostOutput));
  EXPECT_EQ(err.find("writing the output"), err.rfind("writing the output"));
}

}  // namespace
}  // namespace tcbscope
