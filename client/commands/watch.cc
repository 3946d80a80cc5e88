// tcbscope watch HOST... [FILTER]: connection changes as they happen, one
// line each, from every host at once. A host whose stream breaks is
// reconnected with backoff, and the gap is said out loud.
#include <signal.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "client/command.h"
#include "client/host_args.h"
#include "client/render/connection_text.h"
#include "client/render/json_output.h"
#include "common/filter.h"
#include "common/proto_time.h"
#include "common/tcp_state.h"

namespace tcbscope {
namespace {

std::atomic<bool> g_interrupted{false};
void OnInterrupt(int) { g_interrupted = true; }

std::string Tuple(const v1::Connection& c) {
  return absl::StrCat(FormatEndpoint(c, c.local()), " ", FormatEndpoint(c, c.remote()));
}

class WatchCommand : public Command {
 public:
  void Setup(CommandFlags* flags) override {
    flags->Option("args", &args_, "HOST... [FILTER]: hosts, then an ss filter");
    flags->Flag("-l,--listening", &listening_, "listening sockets only");
    flags->Flag("-a,--all", &all_, "sockets in every state");
    flags->Option("--duration", &duration_text_, "stop after this long (e.g. 30s); default: until interrupted");
    flags->Option("--count", &count_, "stop after this many events (added, changed, removed, retransmit, reset)");
  }

  int Run(const GlobalOptions& global, const Io& io) override {
    absl::StatusOr<HostsAndFilter> hf = SplitHostsAndFilter(args_);
    if (!hf.ok()) {
      PrintError(io, hf.status().message());
      return kExitUsage;
    }
    absl::Duration duration = absl::InfiniteDuration();
    if (!duration_text_.empty() &&
        (!absl::ParseDuration(duration_text_, &duration) || duration <= absl::ZeroDuration())) {
      PrintError(io, absl::StrCat("--duration: '", duration_text_, "' is not a positive duration (e.g. 30s)"));
      return kExitUsage;
    }
    v1::WatchConnectionsRequest request;
    request.set_filter(hf->filter);
    request.set_listening(listening_);
    request.set_all(all_);
    json_ = global.output == OutputFormat::kJson;
    io_ = io;
    signal(SIGINT, OnInterrupt);
    signal(SIGTERM, OnInterrupt);
    const absl::Time end = duration == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + duration;

    std::vector<std::thread> threads;
    std::vector<int> failed(hf->hosts.size(), 0);
    for (size_t i = 0; i < hf->hosts.size(); ++i) {
      threads.emplace_back([&, i] { failed[i] = Follow(hf->hosts[i], global, request, end); });
    }
    // Streams end at the deadline; an interrupt ends them at once.
    while (!g_interrupted && absl::Now() < end && !Done()) absl::SleepFor(absl::Milliseconds(50));
    stop_ = true;
    {
      std::lock_guard<std::mutex> l(contexts_mu_);
      for (grpc::ClientContext* c : contexts_) c->TryCancel();
    }
    for (auto& t : threads) t.join();
    int exit_code = kExitOk;
    for (int f : failed) exit_code = std::max(exit_code, f);
    return exit_code;
  }

 private:
  bool Done() const { return count_ > 0 && seen_ >= count_; }

  void Emit(const std::string& host, const v1::WatchEvent* event, const std::string& note, const std::string& text) {
    std::lock_guard<std::mutex> l(out_mu_);
    std::string line;
    if (json_) {
      v1::WatchLine w;
      w.set_host(host);
      if (event != nullptr) *w.mutable_event() = *event;
      w.set_note(note);
      absl::StatusOr<std::string> j = ToJson(w);
      if (!j.ok()) return;
      line = *j;
    } else {
      line = text;
    }
    line.push_back('\n');
    fwrite(line.data(), 1, line.size(), io_.out);
    fflush(io_.out);
  }

  std::string Describe(const v1::WatchEvent& e) const {
    switch (e.event_case()) {
      case v1::WatchEvent::kAdded:
        return absl::StrCat("added   ", StateShortName(e.added().state()), " ", Tuple(e.added()));
      case v1::WatchEvent::kRemoved:
        return absl::StrCat("removed ", StateShortName(e.removed().state()), " ", Tuple(e.removed()));
      case v1::WatchEvent::kChanged: {
        const auto& c = e.changed();
        std::string what = c.old().state() != c.new_().state()
                               ? absl::StrCat(StateShortName(c.old().state()), " -> ", StateShortName(c.new_().state()))
                               : StateShortName(c.new_().state());
        return absl::StrCat("changed ", what, " ", Tuple(c.new_()), " [", absl::StrJoin(c.changed_fields(), ","), "]");
      }
      case v1::WatchEvent::kSegment: {
        const auto& g = e.segment();
        const v1::Connection& c = g.connection();
        switch (g.kind()) {
          case v1::SegmentEvent::RETRANSMIT:
            return g.seq() != 0 || g.count() == 1
                       ? absl::StrCat("retrans ", StateShortName(c.state()), " ", Tuple(c), " seq ", g.seq())
                       : absl::StrCat("retrans ", StateShortName(c.state()), " ", Tuple(c), " x", g.count());
          case v1::SegmentEvent::RESET_SENT:
            return absl::StrCat("rst-out ", StateShortName(c.state()), " ", Tuple(c),
                                g.reason().empty() ? "" : absl::StrCat(" (", g.reason(), ")"));
          case v1::SegmentEvent::RESET_RECEIVED:
            return absl::StrCat("rst-in  ", StateShortName(c.state()), " ", Tuple(c));
          default:
            return "";
        }
      }
      case v1::WatchEvent::kSnapshot:
        return absl::StrCat("snapshot ", e.snapshot().connections_size(), " connections",
                            e.snapshot().last() ? "" : " (continued)");
      case v1::WatchEvent::kResync:
        return absl::StrCat("resync  ", e.resync().connections_size(),
                            " connections: this reader fell behind and changes were dropped");
      default:
        return "";
    }
  }

  // Follows one host until the end; returns its exit code contribution.
  int Follow(const HostPort& host, const GlobalOptions& global, const v1::WatchConnectionsRequest& request,
             absl::Time end) {
    const std::string name = host.ToString();
    absl::Duration backoff = absl::Milliseconds(500);
    bool had_stream = false;
    int result = kExitOk;
    while (!stop_ && !g_interrupted && absl::Now() < end) {
      ClientOptions opts = global.client;
      opts.timeout = absl::InfiniteDuration();  // a watch has no deadline
      absl::StatusOr<std::unique_ptr<AgentClient>> client = AgentClient::Create(host, opts);
      if (!client.ok()) {
        PrintError(io_, absl::StrCat(name, ": ", client.status().message()));
        return kExitUsage;
      }
      grpc::ClientContext ctx;
      {
        std::lock_guard<std::mutex> l(contexts_mu_);
        if (stop_) break;
        contexts_.push_back(&ctx);
      }
      uint64_t events = 0;
      absl::Status s = (*client)->Watch(request, &ctx, [&](const v1::WatchEvent& e) {
        if (events++ == 0 && had_stream) {
          Emit(name, nullptr, "reconnected", absl::StrCat(Now(), " ", name, " reconnected; changes while it was away were not seen"));
        }
        had_stream = true;
        backoff = absl::Milliseconds(500);
        if (e.event_case() == v1::WatchEvent::kHeartbeat) return;
        const bool change = e.event_case() == v1::WatchEvent::kAdded || e.event_case() == v1::WatchEvent::kRemoved ||
                            e.event_case() == v1::WatchEvent::kChanged || e.event_case() == v1::WatchEvent::kSegment;
        if (change && Done()) return;
        Emit(name, &e, "",
             absl::StrCat(FormatTime(FromTimestamp(e.time())), " ", name, " ", Describe(e),
                          e.found_by_dump() ? " (found by a dump: the kernel skipped its records)" : ""));
        if (change) ++seen_;
      });
      {
        std::lock_guard<std::mutex> l(contexts_mu_);
        contexts_.erase(std::remove(contexts_.begin(), contexts_.end(), &ctx), contexts_.end());
      }
      if (stop_ || g_interrupted || absl::Now() >= end || Done()) break;
      if (absl::IsInvalidArgument(s) || absl::IsUnauthenticated(s) || absl::IsFailedPrecondition(s)) {
        PrintError(io_, absl::StrCat(name, ": ", s.message()));
        return absl::IsInvalidArgument(s) ? kExitUsage : kExitUnreachable;
      }
      result = kExitUnreachable;
      const std::string why = s.ok() ? std::string("the agent ended the stream") : std::string(s.message());
      Emit(name, nullptr, absl::StrCat("stream lost: ", why),
           absl::StrCat(Now(), " ", name, " stream lost (", why, "); retrying in ", absl::FormatDuration(backoff)));
      const absl::Time retry = absl::Now() + backoff;
      while (!stop_ && !g_interrupted && absl::Now() < std::min(retry, end)) absl::SleepFor(absl::Milliseconds(50));
      backoff = std::min(backoff * 2, absl::Seconds(30));
    }
    return result;
  }

  static std::string FormatTime(absl::Time t) {
    return absl::FormatTime("%H:%M:%E3S", t, absl::LocalTimeZone());
  }
  static std::string Now() { return FormatTime(absl::Now()); }

  std::vector<std::string> args_;
  bool listening_ = false, all_ = false;
  std::string duration_text_;
  uint64_t count_ = 0;
  bool json_ = false;
  Io io_;
  std::mutex out_mu_;
  std::mutex contexts_mu_;
  std::vector<grpc::ClientContext*> contexts_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> seen_{0};
};

}  // namespace

std::unique_ptr<Command> MakeWatchCommand() { return std::make_unique<WatchCommand>(); }

}  // namespace tcbscope
