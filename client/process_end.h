// How the CLI's process ends, and what it need not tear down first.
//
// The binary's main ends with EndProcess: output flushed, then _exit, with
// no destructors and no atexit handlers run. A host's client whose call has
// ended has nothing left to do but be destroyed, and destroying gRPC
// channels (closing transports, running their closures, and with the last
// one stopping gRPC's threads) is time the CLI spends after it has its
// answer: about 1.5 ms of a one-host `list` (docs/performance.md). Such
// objects are handed to Retire, which destroys them at once unless the
// process has said it ends with EndProcess; then it keeps them (up to
// kMaxKept, each holding about one file) and the kernel closes their
// connections when the process ends.
//
// Tests and other users of the library never call EndWithoutTeardown, so
// there Retire destroys, as a destructor would. Nor does the sanitizer
// build's main, so its end-to-end tests still check the teardown.
//
// Thread-safety: all three may be called from any thread.
#ifndef TCBSCOPE_CLIENT_PROCESS_END_H_
#define TCBSCOPE_CLIENT_PROCESS_END_H_

#include <cstddef>
#include <memory>

namespace tcbscope {

// How many retired objects are kept at most; more are destroyed at once.
inline constexpr size_t kMaxKept = 256;

// Declares that this process ends with EndProcess. Called once by main,
// before any work.
void EndWithoutTeardown();

// Destroys `object` (if it holds the last reference), or, after
// EndWithoutTeardown and while fewer than kMaxKept are kept, keeps it until
// the process ends.
void Retire(std::shared_ptr<void> object);

// Flushes stdio's output streams and ends the process with `code`, running
// no destructors. RunCli has already flushed stdout and reported a failure
// to write it.
[[noreturn]] void EndProcess(int code);

}  // namespace tcbscope

#endif  // TCBSCOPE_CLIENT_PROCESS_END_H_
