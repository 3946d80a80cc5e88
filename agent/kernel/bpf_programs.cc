#include "agent/kernel/bpf_programs.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

#ifdef TCBSCOPE_HAVE_BPF
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "tcb_events.skel.h"
#include "tcb_files.skel.h"
#include "tcb_seq.skel.h"
#endif

namespace tcbscope::kernel {

uint64_t MonotonicNowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

absl::Time MonotonicToTime(uint64_t monotonic_ns) {
  const absl::Time now = absl::Now();
  const uint64_t mono_now = MonotonicNowNs();
  return now - absl::Nanoseconds(static_cast<int64_t>(mono_now) - static_cast<int64_t>(monotonic_ns));
}

#ifndef TCBSCOPE_HAVE_BPF

bool BpfBuiltIn() { return false; }

absl::StatusOr<std::unique_ptr<BpfEventReader>> BpfEventReader::Open(uint64_t) {
  return absl::UnimplementedError(
      "BPF programs not built into this agent (the build lacked clang, bpftool, libbpf or kernel BTF)");
}

absl::StatusOr<std::unique_ptr<BpfSeqReader>> BpfSeqReader::Open() {
  return absl::UnimplementedError(
      "BPF programs not built into this agent (the build lacked clang, bpftool, libbpf or kernel BTF)");
}

absl::StatusOr<std::unique_ptr<BpfFilesReader>> BpfFilesReader::Open() {
  return absl::UnimplementedError(
      "BPF programs not built into this agent (the build lacked clang, bpftool, libbpf or kernel BTF)");
}

#else

bool BpfBuiltIn() { return true; }

namespace {

// libbpf reports errors through errno (and prints them); we say them once, in
// our own words, and keep libbpf quiet.
int QuietLibbpf(enum libbpf_print_level level, const char*, va_list) {
  (void)level;
  return 0;
}

void SilenceLibbpfOnce() {
  static const bool done = [] {
    libbpf_set_print(QuietLibbpf);
    return true;
  }();
  (void)done;
}

absl::Status LoadError(absl::string_view what, int err) {
  std::string hint;
  if (err == EPERM || err == EACCES) hint = " (needs root or CAP_BPF and CAP_PERFMON)";
  if (err == ENOENT || err == ESRCH) hint = " (this kernel lacks the tracepoints or BTF the programs need)";
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(err), hint));
}

class EventReaderImpl : public BpfEventReader {
 public:
  ~EventReaderImpl() override {
    if (ring_ != nullptr) ring_buffer__free(ring_);
    if (skel_ != nullptr) tcb_events__destroy(skel_);
  }

  absl::Status Init(uint64_t netns) {
    SilenceLibbpfOnce();
    skel_ = tcb_events__open();
    if (skel_ == nullptr) return LoadError("BPF events: open", errno);
    skel_->rodata->target_netns = static_cast<uint32_t>(netns);
    if (int err = tcb_events__load(skel_); err != 0) return LoadError("BPF events: load", -err);
    if (absl::Status s = Attach(); !s.ok()) return s;
    Detach();
    ring_ = ring_buffer__new(bpf_map__fd(skel_->maps.events), &EventReaderImpl::OnRecord, this, nullptr);
    if (ring_ == nullptr) return LoadError("BPF events: ring buffer", errno);
    LoadResetReasons();
    return absl::OkStatus();
  }

  absl::Status Attach() override {
    if (attached_) return absl::OkStatus();
    if (int err = tcb_events__attach(skel_); err != 0) {
      tcb_events__detach(skel_);  // the programs that did attach
      return LoadError("BPF events: attach", -err);
    }
    attached_ = true;
    return absl::OkStatus();
  }

  void Detach() override {
    tcb_events__detach(skel_);
    attached_ = false;
  }

  absl::StatusOr<int> Poll(absl::Duration timeout, const std::function<void(const tcb_event&)>& on_event) override {
    callback_ = &on_event;
    const int n = ring_buffer__poll(ring_, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    callback_ = nullptr;
    if (n < 0 && n != -EINTR) return absl::ErrnoToStatus(-n, "BPF events: ring buffer poll");
    return n < 0 ? 0 : n;
  }

  uint64_t lost() const override { return __atomic_load_n(&skel_->bss->lost_events, __ATOMIC_RELAXED); }

  uint64_t missed() const override {
    uint64_t total = 0;
    for (const bpf_program* p : {skel_->progs.on_state, skel_->progs.on_retransmit, skel_->progs.on_send_reset,
                                 skel_->progs.on_receive_reset}) {
      bpf_prog_info info;
      std::memset(&info, 0, sizeof(info));
      __u32 len = sizeof(info);
      if (bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len) == 0) total += info.recursion_misses;
    }
    return total;
  }

  std::string ResetReason(uint32_t value) const override {
    auto it = reasons_.find(value);
    return it == reasons_.end() ? std::string() : it->second;
  }

 private:
  static int OnRecord(void* ctx, void* data, size_t size) {
    auto* self = static_cast<EventReaderImpl*>(ctx);
    if (size < sizeof(tcb_event) || self->callback_ == nullptr) return 0;
    tcb_event e;
    std::memcpy(&e, data, sizeof(e));
    (*self->callback_)(e);
    return 0;
  }

  // enum sk_rst_reason's numbering changes between kernels; its names come
  // from the running kernel's own BTF.
  void LoadResetReasons() {
    btf* vmlinux = btf__load_vmlinux_btf();
    if (vmlinux == nullptr) return;
    const int id = btf__find_by_name_kind(vmlinux, "sk_rst_reason", BTF_KIND_ENUM);
    if (id > 0) {
      const btf_type* t = btf__type_by_id(vmlinux, id);
      const struct btf_enum* values = btf_enum(t);
      for (int i = 0; i < btf_vlen(t); ++i) {
        std::string name = btf__name_by_offset(vmlinux, values[i].name_off);
        if (name.rfind("SK_RST_REASON_", 0) == 0) name = name.substr(14);
        reasons_[static_cast<uint32_t>(values[i].val)] = name;
      }
    }
    btf__free(vmlinux);
  }

  tcb_events* skel_ = nullptr;
  bool attached_ = false;
  ring_buffer* ring_ = nullptr;
  const std::function<void(const tcb_event&)>* callback_ = nullptr;
  absl::flat_hash_map<uint32_t, std::string> reasons_;
};

// One loaded iterator program (iter/tcp, iter/task_file): its skeleton and
// the link that creates iterators, and the loop reading its fixed-size rows.
class IterProgram {
 public:
  IterProgram() = default;
  IterProgram(const IterProgram&) = delete;
  IterProgram& operator=(const IterProgram&) = delete;
  ~IterProgram() {
    if (link_ != nullptr) bpf_link__destroy(link_);
    if (destroy_) destroy_();
  }

  // Opens and loads the skeleton and attaches the program `prog` picks.
  template <typename Skel>
  absl::Status Load(absl::string_view what, Skel* (*open_and_load)(), void (*destroy)(Skel*),
                    bpf_program* (*prog)(Skel*)) {
    what_ = std::string(what);
    SilenceLibbpfOnce();
    Skel* skel = open_and_load();
    if (skel == nullptr) return LoadError(absl::StrCat(what, ": load"), errno);
    destroy_ = [skel, destroy] { destroy(skel); };
    link_ = bpf_program__attach_iter(prog(skel), nullptr);
    if (link_ == nullptr) return LoadError(absl::StrCat(what, ": attach"), errno);
    return absl::OkStatus();
  }

  // Runs the iterator once and hands each row to `on_record`. EAGAIN (the
  // kernel restarting a walk interrupted by changes) ends the read with what
  // was read so far, which stays valid.
  template <typename Record>
  absl::Status Read(const std::function<void(const Record&)>& on_record) const {
    const int fd = bpf_iter_create(bpf_link__fd(link_));
    if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat(what_, ": create"));
    std::vector<char> buf(256 * sizeof(Record));
    size_t have = 0;
    absl::Status status;
    while (true) {
      const ssize_t n = read(fd, buf.data() + have, buf.size() - have);
      if (n < 0) {
        if (errno == EINTR) continue;
        status = absl::ErrnoToStatus(errno, absl::StrCat(what_, ": read"));
        break;
      }
      if (n == 0) break;
      have += static_cast<size_t>(n);
      size_t off = 0;
      for (; off + sizeof(Record) <= have; off += sizeof(Record)) {
        Record r;
        std::memcpy(&r, buf.data() + off, sizeof(r));
        on_record(r);
      }
      std::memmove(buf.data(), buf.data() + off, have - off);
      have -= off;
    }
    close(fd);
    return status;
  }

 private:
  std::string what_;
  std::function<void()> destroy_;  // the skeleton's, once loaded
  bpf_link* link_ = nullptr;
};

class FilesReaderImpl : public BpfFilesReader {
 public:
  absl::Status Init() {
    // The program reports task->tgid: the pid the initial pid namespace sees.
    struct stat st;
    if (stat("/proc/self/ns/pid", &st) != 0 || st.st_ino != kInitialPidNamespaceInode) {
      return absl::FailedPreconditionError(
          "BPF iter/task_file: the agent is not in the host's pid namespace (owners from /proc instead)");
    }
    return program_.Load("BPF iter/task_file", tcb_files__open_and_load, tcb_files__destroy,
                         +[](tcb_files* s) { return s->progs.dump_files; });
  }

  absl::Status Read(const std::function<void(const tcb_file_record&)>& on_socket) override {
    return program_.Read(on_socket);
  }

 private:
  // PROC_PID_INIT_INO in the kernel: the initial pid namespace's inode.
  static constexpr ino_t kInitialPidNamespaceInode = 0xEFFFFFFCU;
  IterProgram program_;
};

class SeqReaderImpl : public BpfSeqReader {
 public:
  absl::Status Init() {
    return program_.Load("BPF iter/tcp", tcb_seq__open_and_load, tcb_seq__destroy,
                         +[](tcb_seq* s) { return s->progs.dump_seq; });
  }

  absl::Status Read(const std::function<void(const tcb_seq_record&)>& on_socket) override {
    // The iterator walks the namespace of the thread that creates it.
    return program_.Read(on_socket);
  }

 private:
  IterProgram program_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<BpfEventReader>> BpfEventReader::Open(uint64_t netns) {
  auto r = std::make_unique<EventReaderImpl>();
  absl::Status s = r->Init(netns);
  if (!s.ok()) return s;
  return std::unique_ptr<BpfEventReader>(std::move(r));
}

absl::StatusOr<std::unique_ptr<BpfFilesReader>> BpfFilesReader::Open() {
  auto r = std::make_unique<FilesReaderImpl>();
  absl::Status s = r->Init();
  if (!s.ok()) return s;
  return std::unique_ptr<BpfFilesReader>(std::move(r));
}

absl::StatusOr<std::unique_ptr<BpfSeqReader>> BpfSeqReader::Open() {
  auto r = std::make_unique<SeqReaderImpl>();
  absl::Status s = r->Init();
  if (!s.ok()) return s;
  return std::unique_ptr<BpfSeqReader>(std::move(r));
}

#endif  // TCBSCOPE_HAVE_BPF

}  // namespace tcbscope::kernel
