#include "agent/kernel/sock_diag_reader.h"

#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/kernel/inet_diag_parser.h"
#include "common/ip_address.h"

namespace tcbscope::kernel {
namespace {

// The kernel fills at most 32 KiB per recvmsg for a dump; twice that leaves
// room so MSG_TRUNC can never happen.
constexpr size_t kRecvBufferBytes = 64 * 1024;
// FindOne's answers: one socket, no extensions (MSG_TRUNC, were it to
// happen, fails the lookup rather than misreading it).
constexpr size_t kLookupBufferBytes = 8 * 1024;
// Socket receive buffer: a dump is paced by our reads, but a large buffer
// keeps an occasional slow consumer from provoking ENOBUFS.
constexpr int kSocketRcvbuf = 8 * 1024 * 1024;
// A dump that keeps failing with ENOBUFS is retried this many times.
constexpr int kEnobufsRetries = 2;

// Extensions asked for with -i, as bits (1 << (INET_DIAG_x - 1)).
constexpr uint8_t ExtBit(int attr) { return static_cast<uint8_t>(1u << (attr - 1)); }

absl::Status Errno(absl::string_view what) {
  const int e = errno;
  return absl::ErrnoToStatus(e, absl::StrCat("sock_diag: ", what));
}

// The kernel's answer to a request it does not serve.
absl::Status Unsupported(int err) {
  return absl::UnimplementedError(absl::StrCat("sock_diag: request not served (", strerror(err), ")"));
}

// One dump: of `family`, or with AF_UNSPEC of both in one walk of the
// kernel's tables. The kernel serves both families only to the request that
// predates SOCK_DIAG_BY_FAMILY (TCPDIAG_GETSOCK, whose answers carry its
// type and the same payload). Two requests walk the whole established table
// twice: each socket is visited by both, and skipped by one.
// On ENOBUFS returns ResourceExhausted so the caller retries; a request the
// kernel does not serve before any socket was delivered, Unimplemented.
absl::Status DumpFamily(mnl_socket* nl, uint8_t family, const DumpRequest& request, uint32_t seq,
                        DumpResult* result, const DiagMessageCallback& on_socket,
                        DumpRecorder::Session* recording) {
  static_assert(sizeof(inet_diag_req) >= sizeof(inet_diag_req_v2), "the buffer fits both requests");
  alignas(nlmsghdr) char req_buf[MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(inet_diag_req))] = {};
  nlmsghdr* nlh = mnl_nlmsg_put_header(req_buf);
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = seq;
  uint8_t ext = 0;
  if (request.tcp_info) {
    ext = ExtBit(INET_DIAG_INFO) | ExtBit(INET_DIAG_CONG) | ExtBit(INET_DIAG_SKMEMINFO) | ExtBit(INET_DIAG_TOS) |
          ExtBit(INET_DIAG_TCLASS);
  }
  const bool both = family == AF_UNSPEC;
  if (both) {
    nlh->nlmsg_type = TCPDIAG_GETSOCK;
    auto* req = static_cast<inet_diag_req*>(mnl_nlmsg_put_extra_header(nlh, sizeof(inet_diag_req)));
    req->idiag_family = AF_UNSPEC;
    req->idiag_ext = ext;
    req->idiag_states = request.states;
  } else {
    nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
    auto* req = static_cast<inet_diag_req_v2*>(mnl_nlmsg_put_extra_header(nlh, sizeof(inet_diag_req_v2)));
    req->sdiag_family = family;
    req->sdiag_protocol = IPPROTO_TCP;
    req->idiag_states = request.states;
    req->idiag_ext = ext;
  }
  const uint16_t answer_type = nlh->nlmsg_type;
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) return Errno("send");

  const uint32_t portid = mnl_socket_get_portid(nl);
  // Not zero-filled: only what recv wrote is read.
  std::unique_ptr<char[]> buf(new char[kRecvBufferBytes]);
  while (true) {
    const ssize_t n = mnl_socket_recvfrom(nl, buf.get(), kRecvBufferBytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) return absl::ResourceExhaustedError("sock_diag: receive buffer overrun (ENOBUFS)");
      return Errno("recv");
    }
    int len = static_cast<int>(n);
    for (const nlmsghdr* m = reinterpret_cast<const nlmsghdr*>(buf.get()); mnl_nlmsg_ok(m, len);
         m = mnl_nlmsg_next(m, &len)) {
      // Another sender's message (or a stale reply) is not ours to read.
      if (!mnl_nlmsg_portid_ok(m, portid) || !mnl_nlmsg_seq_ok(m, seq)) continue;
      if (m->nlmsg_flags & NLM_F_DUMP_INTR) result->interrupted = true;
      if (m->nlmsg_type == NLMSG_DONE) {
        // The kernel reports a dump that failed part-way in DONE's payload.
        if (m->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
          int err = 0;
          std::memcpy(&err, mnl_nlmsg_get_payload(m), sizeof(err));
          if (err < 0) {
            errno = -err;
            return Errno("dump ended with an error");
          }
        }
        return absl::OkStatus();
      }
      if (m->nlmsg_type == NLMSG_ERROR) {
        const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(m));
        if (m->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return absl::DataLossError("sock_diag: short NLMSG_ERROR");
        if (e->error == 0) continue;  // an ACK
        if (both && result->sockets == 0 && (e->error == -EINVAL || e->error == -EOPNOTSUPP)) {
          return Unsupported(-e->error);
        }
        errno = -e->error;
        return Errno(both ? "dump" : family == AF_INET ? "IPv4 dump" : "IPv6 dump");
      }
      if (m->nlmsg_type != answer_type) continue;
      ++result->sockets;
      if (recording != nullptr) recording->Append(m);
      absl::Status s = on_socket(m);
      if (!s.ok()) return s;
    }
  }
}

}  // namespace

absl::Status RunInNetns(int netns_fd, const std::function<void()>& fn) {
  if (netns_fd < 0) {
    fn();
    return absl::OkStatus();
  }
  absl::Status status;
  std::thread t([&] {
    // setns affects only this thread; it ends with the thread.
    if (setns(netns_fd, CLONE_NEWNET) != 0) {
      status = absl::ErrnoToStatus(errno, "entering a network namespace (setns; needs CAP_SYS_ADMIN)");
      return;
    }
    fn();
  });
  t.join();
  return status;
}

uint64_t CurrentNetnsInode() {
  struct stat st;
  if (stat("/proc/thread-self/ns/net", &st) != 0 && stat("/proc/self/ns/net", &st) != 0) return 0;
  return st.st_ino;
}

SockDiagReader::SockDiagReader(std::shared_ptr<DumpRecorder> recorder)
    : recorder_(std::move(recorder)), netns_(CurrentNetnsInode()) {}

SockDiagReader::SockDiagReader(int netns_fd, uint64_t inode) : netns_(inode), netns_fd_(netns_fd) {}

SockDiagReader::~SockDiagReader() {
  if (netns_fd_ >= 0) close(netns_fd_);
}

namespace {

// A bound NETLINK_SOCK_DIAG socket in the namespace `netns_fd` (-1: ours).
absl::StatusOr<MnlSocket> OpenDiagSocket(int netns_fd) {
  MnlSocket nl;
  absl::Status s = RunInNetns(netns_fd, [&] { nl.reset(mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC)); });
  if (!s.ok()) return s;
  if (!nl) return Errno("open netlink socket");
  if (mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) < 0) return Errno("bind");
  return nl;
}

// One exact-match request on `nl` and its answer (one message: the socket,
// or an error; ENOENT is "none"). Messages of other sequence numbers (late
// answers to a failed exchange) are skipped.
absl::StatusOr<std::optional<v1::Connection>> LookUp(mnl_socket* nl, uint32_t seq, uint8_t family,
                                                     const v1::Connection& endpoints, const IpAddress& local,
                                                     const IpAddress& remote, uint64_t netns) {
  alignas(nlmsghdr) char req_buf[MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(inet_diag_req_v2))] = {};
  nlmsghdr* nlh = mnl_nlmsg_put_header(req_buf);
  nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  nlh->nlmsg_seq = seq;
  auto* req = static_cast<inet_diag_req_v2*>(mnl_nlmsg_put_extra_header(nlh, sizeof(inet_diag_req_v2)));
  req->sdiag_family = family;
  req->sdiag_protocol = IPPROTO_TCP;
  req->idiag_states = kAllStates;
  req->id.idiag_sport = htons(static_cast<uint16_t>(endpoints.local().port()));
  req->id.idiag_dport = htons(static_cast<uint16_t>(endpoints.remote().port()));
  std::memcpy(req->id.idiag_src, local.bytes(), family == AF_INET ? 4 : 16);
  std::memcpy(req->id.idiag_dst, remote.bytes(), family == AF_INET ? 4 : 16);
  req->id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  req->id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) return Errno("send");

  // One socket's answer without extensions is ~100 bytes.
  alignas(nlmsghdr) char buf[kLookupBufferBytes];
  const uint32_t portid = mnl_socket_get_portid(nl);
  while (true) {
    const ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("recv");
    }
    int len = static_cast<int>(n);
    for (const nlmsghdr* m = reinterpret_cast<const nlmsghdr*>(buf); mnl_nlmsg_ok(m, len);
         m = mnl_nlmsg_next(m, &len)) {
      if (!mnl_nlmsg_portid_ok(m, portid) || !mnl_nlmsg_seq_ok(m, seq)) continue;
      if (m->nlmsg_type == NLMSG_ERROR) {
        if (m->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return absl::DataLossError("sock_diag: short NLMSG_ERROR");
        const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(m));
        if (e->error == -ENOENT) return std::optional<v1::Connection>();
        if (e->error == 0) continue;
        errno = -e->error;
        return Errno("lookup");
      }
      if (m->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
      v1::Connection c;
      absl::Status s = ParseInetDiagMessage(m, netns, &c);
      if (!s.ok()) return s;
      return std::optional<v1::Connection>(std::move(c));
    }
  }
}

}  // namespace

absl::StatusOr<DumpResult> SockDiagReader::Dump(const DumpRequest& request, const DiagMessageCallback& on_socket) {
  absl::Status last;
  for (int attempt = 0; attempt <= kEnobufsRetries; ++attempt) {
    absl::StatusOr<MnlSocket> opened = OpenDiagSocket(netns_fd_);
    if (!opened.ok()) return opened.status();
    MnlSocket nl = std::move(*opened);
    const int fd = mnl_socket_get_fd(nl.get());
    const int rcvbuf = kSocketRcvbuf;
    // SO_RCVBUFFORCE passes rmem_max when privileged; fall back silently.
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) != 0) {
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    // Without strict checking old kernels ignore unknown request bits; with
    // it, a malformed request is refused instead of misread.
    const int one = 1;
    setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof(one));

    DumpResult result;
    result.started = absl::Now();
    std::optional<DumpRecorder::Session> recording;
    if (recorder_) recording.emplace(recorder_->Begin());
    const uint32_t seq = static_cast<uint32_t>(absl::ToUnixMicros(result.started));
    DumpRecorder::Session* rec = recording ? &*recording : nullptr;
    bool per_family = !both_families_.load(std::memory_order_relaxed);
    if (!per_family) {
      last = DumpFamily(nl.get(), AF_UNSPEC, request, seq, &result, on_socket, rec);
      if (absl::IsUnimplemented(last) && result.sockets == 0) {
        both_families_.store(false, std::memory_order_relaxed);  // a kernel without it: ask as ss does
        per_family = true;
      }
    }
    if (per_family) {
      last = DumpFamily(nl.get(), AF_INET, request, seq + 1, &result, on_socket, rec);
      if (last.ok()) last = DumpFamily(nl.get(), AF_INET6, request, seq + 2, &result, on_socket, rec);
    }
    if (absl::IsResourceExhausted(last) && result.sockets == 0) continue;  // nothing delivered yet: retry
    if (!last.ok()) return last;
    if (recording) {
      absl::Status s = recording->Commit(result.interrupted);
      if (!s.ok()) return s;
    }
    return result;
  }
  return last;
}

absl::StatusOr<std::optional<v1::Connection>> SockDiagReader::FindOne(const v1::Connection& endpoints) const {
  absl::StatusOr<IpAddress> local = IpAddress::Parse(endpoints.local().address());
  absl::StatusOr<IpAddress> remote = IpAddress::Parse(endpoints.remote().address());
  if (!local.ok()) return local.status();
  if (!remote.ok()) return remote.status();
  const uint8_t family = endpoints.family() == v1::FAMILY_INET6 ? AF_INET6 : AF_INET;
  if (local->family() != family || remote->family() != family) {
    return absl::InvalidArgumentError("sock_diag lookup: address family mismatch");
  }
  absl::MutexLock lock(&lookup_mu_);
  if (lookup_socket_ == nullptr) {
    absl::StatusOr<MnlSocket> opened = OpenDiagSocket(netns_fd_);
    if (!opened.ok()) return opened.status();
    lookup_socket_ = std::move(*opened);
  }
  absl::StatusOr<std::optional<v1::Connection>> r =
      LookUp(lookup_socket_.get(), ++lookup_seq_, family, endpoints, *local, *remote, netns_);
  if (!r.ok()) {
    // Whatever went wrong, the next lookup starts on a fresh socket.
    lookup_socket_.reset();
  }
  return r;
}

}  // namespace tcbscope::kernel
