#include "agent/prober.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tcbscope {

absl::StatusOr<std::pair<IpAddress, int>> ParsePrefix(absl::string_view text) {
  const size_t slash = text.find('/');
  absl::StatusOr<IpAddress> addr = IpAddress::Parse(text.substr(0, slash));
  if (!addr.ok()) return addr.status();
  int len = addr->bit_length();
  if (slash != absl::string_view::npos &&
      (!absl::SimpleAtoi(text.substr(slash + 1), &len) || len < 0 || len > addr->bit_length())) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "': the prefix length must be 0 to ", addr->bit_length()));
  }
  return std::make_pair(*addr, len);
}

bool Prober::TakeToken() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  tokens_ = std::min<double>(kBurst, tokens_ + absl::ToDoubleSeconds(now - refilled_));
  refilled_ = now;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

absl::StatusOr<v1::ProbeResult> Prober::Probe(const v1::ProbeRequest& request) {
  if (!options_.allowed) {
    return absl::PermissionDeniedError("Probe is off on this agent (start it with --allow-probe)");
  }
  absl::StatusOr<IpAddress> target = IpAddress::Parse(request.target().address());
  if (!target.ok()) return absl::InvalidArgumentError(absl::StrCat("probe target: ", target.status().message()));
  if (request.target().port() == 0 || request.target().port() > 65535) {
    return absl::InvalidArgumentError("probe target: the port must be 1 to 65535");
  }
  if (target->IsUnspecified()) return absl::InvalidArgumentError("probe target: an unspecified address");
  const uint32_t timeout_ms = request.timeout_ms() == 0 ? kDefaultTimeoutMs : request.timeout_ms();
  if (timeout_ms > kMaxTimeoutMs) {
    return absl::InvalidArgumentError(absl::StrCat("probe timeout: at most ", kMaxTimeoutMs, " ms"));
  }
  if (!options_.allow.empty()) {
    bool ok = false;
    for (const auto& [prefix, len] : options_.allow) ok |= target->InPrefix(prefix, len);
    if (!ok) return absl::PermissionDeniedError(absl::StrCat("probe target ", target->ToString(), " is outside --probe-allow"));
  }
  if (!TakeToken()) return absl::ResourceExhaustedError("probe rate limit: at most 5 at once, then one per second");

  v1::ProbeResult result;
  *result.mutable_target() = request.target();
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (target->is_v4()) {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(static_cast<uint16_t>(request.target().port()));
    std::memcpy(&sa->sin_addr, target->bytes(), 4);
    len = sizeof(*sa);
  } else {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(static_cast<uint16_t>(request.target().port()));
    std::memcpy(&sa->sin6_addr, target->bytes(), 16);
    sa->sin6_scope_id = request.target().ifindex();
    len = sizeof(*sa);
  }
  const int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "probe: socket");
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};

  const absl::Time start = absl::Now();
  auto note_state = [&]() {
    tcp_info ti{};
    socklen_t tl = sizeof(ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) != 0) return;
    const auto st = static_cast<v1::TcpState>(ti.tcpi_state);
    if (result.states().empty() || result.states(result.states_size() - 1) != st) result.add_states(st);
  };
  auto finish = [&](v1::ProbeResult::Outcome o, const std::string& detail) {
    result.set_outcome(o);
    result.set_detail(detail);
    result.set_elapsed_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(absl::Now() - start)));
    return result;
  };
  const int rc = connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  int err = rc == 0 ? 0 : errno;
  sockaddr_storage local{};
  socklen_t local_len = sizeof(local);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) == 0) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (local.ss_family == AF_INET) {
      const auto* sa = reinterpret_cast<const sockaddr_in*>(&local);
      inet_ntop(AF_INET, &sa->sin_addr, buf, sizeof(buf));
      result.mutable_local()->set_port(ntohs(sa->sin_port));
    } else {
      const auto* sa = reinterpret_cast<const sockaddr_in6*>(&local);
      inet_ntop(AF_INET6, &sa->sin6_addr, buf, sizeof(buf));
      result.mutable_local()->set_port(ntohs(sa->sin6_port));
    }
    result.mutable_local()->set_address(buf);
  }
  note_state();
  if (rc != 0 && err == EINPROGRESS) {
    const absl::Time deadline = start + absl::Milliseconds(timeout_ms);
    err = EINPROGRESS;
    while (absl::Now() < deadline) {
      pollfd p{fd, POLLOUT, 0};
      const int n = poll(&p, 1, 10);
      note_state();
      if (n > 0) {
        socklen_t el = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
        break;
      }
      if (n < 0 && errno != EINTR) {
        err = errno;
        break;
      }
    }
    if (err == EINPROGRESS) return finish(v1::ProbeResult::OUTCOME_TIMED_OUT, absl::StrCat("no answer in ", timeout_ms, " ms"));
  }
  note_state();
  switch (err) {
    case 0:
      return finish(v1::ProbeResult::OUTCOME_CONNECTED, "");
    case ECONNREFUSED:
      return finish(v1::ProbeResult::OUTCOME_REFUSED, "connection refused (a reset answered the SYN)");
    case ECONNRESET:
      return finish(v1::ProbeResult::OUTCOME_RESET, "connection reset");
    case ETIMEDOUT:
      return finish(v1::ProbeResult::OUTCOME_TIMED_OUT, "timed out in the kernel");
    case EHOSTUNREACH:
    case ENETUNREACH:
      return finish(v1::ProbeResult::OUTCOME_UNREACHABLE, std::strerror(err));
    default:
      return finish(v1::ProbeResult::OUTCOME_UNREACHABLE, std::strerror(err));
  }
}

}  // namespace tcbscope
