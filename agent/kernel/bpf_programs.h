// The agent's BPF programs, loaded through their bpftool skeletons.
//
// BpfEventReader: the ring buffer of tcb_event records (state transitions,
// retransmissions, resets) for one network namespace. BpfSeqReader: one pass
// of the iter/tcp program over the calling thread's namespace, yielding each
// full socket's sequence space keyed by socket cookie (the key sock_diag
// reports too).
//
// Both are optional: when the agent was built without BPF (no clang, bpftool,
// libbpf or kernel BTF at build time) or the kernel refuses to load the
// programs (no CAP_BPF/CAP_PERFMON, no BTF, lockdown), Open() returns an
// error whose message says why in one line, and the agent uses its fallback.
//
// Thread-safety: an EventReader is polled by one thread (the watch hub's);
// Attach and Detach may come from others, serialised by the caller. A
// SeqReader may be used from several threads; each Read() creates its own
// iterator instance.
#ifndef TCBSCOPE_AGENT_KERNEL_BPF_PROGRAMS_H_
#define TCBSCOPE_AGENT_KERNEL_BPF_PROGRAMS_H_

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/kernel/bpf/tcb_records.h"

namespace tcbscope::kernel {

// True when this binary carries the BPF programs.
bool BpfBuiltIn();

class BpfEventReader {
 public:
  // Loads the event programs, reporting only sockets of network namespace
  // `netns` (0: every namespace), and checks that they attach, so that a
  // kernel that cannot run them is found now. They are left detached: until
  // Attach() they cost the kernel's TCP nothing.
  static absl::StatusOr<std::unique_ptr<BpfEventReader>> Open(uint64_t netns);
  virtual ~BpfEventReader() = default;

  // Attaches the programs: from now on every transition, retransmission and
  // reset of the namespace makes a record. No-op when attached.
  virtual absl::Status Attach() = 0;
  // Detaches them. Records already made stay queued for Poll.
  virtual void Detach() = 0;

  // Waits up to `timeout` for records and hands each to `on_event` (valid
  // only during the call). Returns how many were handled.
  virtual absl::StatusOr<int> Poll(absl::Duration timeout, const std::function<void(const tcb_event&)>& on_event) = 0;
  // Records the kernel could not queue because the ring buffer was full,
  // since load. Monotonic.
  virtual uint64_t lost() const = 0;
  // Records the kernel never made: a tracing program does not run inside
  // itself on one CPU, so a transition made in an interrupt while the program
  // was busy on that CPU (for another socket, in a system call) is skipped,
  // and counted. The sum over the programs since load; monotonic. One
  // bpf(2) call per program.
  virtual uint64_t missed() const = 0;
  // The name of a reset reason (enum sk_rst_reason, read from the running
  // kernel's BTF); "" when unknown.
  virtual std::string ResetReason(uint32_t value) const = 0;
};

class BpfSeqReader {
 public:
  static absl::StatusOr<std::unique_ptr<BpfSeqReader>> Open();
  virtual ~BpfSeqReader() = default;
  // Runs the iterator over the calling thread's network namespace.
  virtual absl::Status Read(const std::function<void(const tcb_seq_record&)>& on_socket) = 0;
};

// Socket owners from a BPF iter/task_file program: one pass over every
// process's file table in the kernel, instead of a readlink per descriptor
// under /proc. Pids are as the initial pid namespace sees them, so Open()
// refuses (and the /proc walk is used) when the agent runs in another one.
class BpfFilesReader {
 public:
  static absl::StatusOr<std::unique_ptr<BpfFilesReader>> Open();
  virtual ~BpfFilesReader() = default;
  virtual absl::Status Read(const std::function<void(const tcb_file_record&)>& on_socket) = 0;
};

// The wall-clock time of a bpf_ktime_get_ns() value (CLOCK_MONOTONIC).
absl::Time MonotonicToTime(uint64_t monotonic_ns);
uint64_t MonotonicNowNs();

}  // namespace tcbscope::kernel

#endif  // TCBSCOPE_AGENT_KERNEL_BPF_PROGRAMS_H_
