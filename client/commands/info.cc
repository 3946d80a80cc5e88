// tcbscope info HOST...: who each host is and what its agent can do.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "client/command.h"
#include "client/host_args.h"
#include "client/render/json_output.h"
#include "common/proto_time.h"

namespace tcbscope {
namespace {

const char* SeqSourceName(v1::Capabilities::SeqSource s) {
  return s == v1::Capabilities::SEQ_SOURCE_BPF ? "bpf" : "none";
}
const char* EventSourceName(v1::Capabilities::EventSource s) {
  switch (s) {
    case v1::Capabilities::EVENT_SOURCE_BPF: return "bpf";
    case v1::Capabilities::EVENT_SOURCE_POLL: return "poll";
    default: return "none";
  }
}

class InfoCommand : public Command {
 public:
  void Setup(CommandFlags* flags) override {
    flags->Option("hosts", &hosts_, "HOST...: name or address, optionally :port", CommandFlags::kRequired);
  }

  int Run(const GlobalOptions& global, const Io& io) override {
    absl::StatusOr<std::vector<HostPort>> parsed = ParseHosts(hosts_);
    if (!parsed.ok()) {
      PrintError(io, parsed.status().message());
      return kExitUsage;
    }
    const std::vector<HostPort>& hosts = *parsed;
    v1::InfoResult result;
    std::vector<absl::Status> statuses(hosts.size());
    for (const HostPort& h : hosts) result.add_hosts()->set_host(h.ToString());
    // The calls are started from this thread and completed on one other: a
    // thread per host cost the CLI more than the calls themselves
    // (docs/performance.md).
    ClientOptions options = global.client;
    options.large_answers = false;  // a HostInfo is about 1 kB
    {
      CompletionThread completions;
      StartOnEachHost(
          hosts, options,
          [&](size_t i, AgentClient& client, std::function<void(absl::Status)> done) {
            client.StartGetHostInfo(result.mutable_hosts(static_cast<int>(i))->mutable_info(), &completions,
                                    std::move(done));
          },
          &statuses);
    }
    for (size_t i = 0; i < hosts.size(); ++i) {
      if (statuses[i].ok()) continue;
      v1::HostInfoResult* r = result.mutable_hosts(static_cast<int>(i));
      r->clear_info();
      SetHostError(statuses[i], r->mutable_error());
    }
    const int exit_code = ReportHostErrors(hosts, statuses, io);
    if (global.output == OutputFormat::kJson) {
      absl::Status s = PrintJson(result, io.out);
      if (!s.ok()) PrintError(io, s.message());
      return exit_code;
    }
    std::string out;
    for (const v1::HostInfoResult& r : result.hosts()) {
      if (r.has_error()) continue;
      const v1::HostInfo& h = r.info();
      const absl::Time t = FromTimestamp(h.realtime());
      absl::StrAppend(&out, r.host(), "\n");
      absl::StrAppend(&out, "  hostname:       ", h.hostname(), "\n");
      absl::StrAppend(&out, "  kernel:         ", h.kernel_release(), "\n");
      absl::StrAppend(&out, "  boot id:        ", h.boot_id(), "\n");
      absl::StrAppend(&out, "  agent:          ", h.agent_version(), " serving ", h.source(), "\n");
      absl::StrAppend(&out, "  clock:          ", absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone()),
                      " (monotonic ", h.monotonic_ns() / 1000000, " ms)\n");
      const v1::Capabilities& c = h.capabilities();
      absl::StrAppend(&out, "  sequence:       ", SeqSourceName(c.seq_source()), "\n");
      absl::StrAppend(&out, "  events:         ", EventSourceName(c.event_source()), "\n");
      absl::StrAppend(&out, "  owners:         ", c.owners() ? "yes" : "no", "\n");
      absl::StrAppend(&out, "  all netns:      ", c.all_netns() ? "yes" : "no", "\n");
      absl::StrAppend(&out, "  probe:          ", c.probe() ? "allowed" : "off", "\n");
      for (const std::string& note : c.notes()) absl::StrAppend(&out, "  note:           ", note, "\n");
      absl::StrAppend(&out, "  addresses:\n");
      for (const v1::InterfaceAddress& a : h.addresses()) {
        absl::StrAppend(&out, "    ", a.interface(), " ", a.address(), "/", a.prefix_len(), "\n");
      }
    }
    fwrite(out.data(), 1, out.size(), io.out);
    return exit_code;
  }

 private:
  std::vector<std::string> hosts_;
};

}  // namespace

std::unique_ptr<Command> MakeInfoCommand() { return std::make_unique<InfoCommand>(); }

}  // namespace tcbscope
