// tcbscope counters HOST... [--delta DURATION]: the kernel's TCP counters.
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/command.h"
#include "client/fan_out.h"
#include "client/host_args.h"
#include "client/process_end.h"
#include "client/render/json_output.h"
#include "client/render/text_table.h"

namespace tcbscope {
namespace {

// second − first, group by group; counters absent from `first` count from 0.
v1::Counters Subtract(const v1::Counters& second, const v1::Counters& first) {
  v1::Counters d;
  for (const v1::CounterGroup& g2 : second.groups()) {
    const v1::CounterGroup* g1 = nullptr;
    for (const v1::CounterGroup& g : first.groups()) {
      if (g.name() == g2.name()) g1 = &g;
    }
    v1::CounterGroup* out = d.add_groups();
    out->set_name(g2.name());
    for (const auto& [name, v2] : g2.values()) {
      int64_t v1v = 0;
      if (g1 != nullptr) {
        auto it = g1->values().find(name);
        if (it != g1->values().end()) v1v = it->second;
      }
      (*out->mutable_values())[name] = v2 - v1v;
    }
  }
  *d.mutable_captured_at() = second.captured_at();
  return d;
}

class CountersCommand : public Command {
 public:
  void Setup(CommandFlags* flags) override {
    flags->Option("hosts", &hosts_, "HOST...: name or address, optionally :port", CommandFlags::kRequired);
    flags->Option("--delta", &delta_text_, "read twice, DURATION apart (e.g. 5s, 500ms), and show the change");
    flags->Flag("--all", &all_, "show every counter, zeros included (default: Tcp and TcpExt, non-zero)");
  }

  int Run(const GlobalOptions& global, const Io& io) override {
    absl::Duration delta = absl::ZeroDuration();
    if (!delta_text_.empty()) {
      if (!absl::ParseDuration(delta_text_, &delta) || delta <= absl::ZeroDuration() || delta > absl::Hours(1)) {
        PrintError(io, absl::StrCat("--delta: '", delta_text_, "' is not a duration from 1ms to 1h (e.g. 5s)"));
        return kExitUsage;
      }
    }
    absl::StatusOr<std::vector<HostPort>> parsed = ParseHosts(hosts_);
    if (!parsed.ok()) {
      PrintError(io, parsed.status().message());
      return kExitUsage;
    }
    const std::vector<HostPort>& hosts = *parsed;
    v1::CountersResult result;
    std::vector<absl::Status> statuses(hosts.size());
    for (const HostPort& h : hosts) result.add_hosts()->set_host(h.ToString());
    ClientOptions options = global.client;
    options.large_answers = false;  // a few hundred counters
    ForEachConcurrently(hosts.size(), [&](size_t i) {
      v1::HostCounters* r = result.mutable_hosts(static_cast<int>(i));
      absl::StatusOr<std::unique_ptr<AgentClient>> client = AgentClient::Create(hosts[i], options);
      if (!client.ok()) {
        statuses[i] = client.status();
      } else {
        v1::Counters first;
        statuses[i] = (*client)->GetCounters(&first);
        if (statuses[i].ok() && delta > absl::ZeroDuration()) {
          const absl::Time t0 = absl::Now();
          absl::SleepFor(delta);
          statuses[i] = (*client)->GetCounters(r->mutable_counters());
          if (statuses[i].ok()) {
            *r->mutable_delta() = Subtract(r->counters(), first);
            r->set_delta_seconds(absl::ToDoubleSeconds(absl::Now() - t0));
          }
        } else {
          *r->mutable_counters() = std::move(first);
        }
        Retire(std::shared_ptr<AgentClient>(*std::move(client)));
      }
      if (!statuses[i].ok()) {
        r->clear_counters();
        r->clear_delta();
        SetHostError(statuses[i], r->mutable_error());
      }
    });
    const int exit_code = ReportHostErrors(hosts, statuses, io);
    if (global.output == OutputFormat::kJson) {
      absl::Status s = PrintJson(result, io.out);
      if (!s.ok()) PrintError(io, s.message());
      return exit_code;
    }
    PrintTable(result, delta > absl::ZeroDuration(), io);
    return exit_code;
  }

 private:
  void PrintTable(const v1::CountersResult& result, bool show_delta, const Io& io) const {
    // Rows: Group.Name; columns: each reachable host (value, and delta).
    std::map<std::string, std::vector<std::string>> rows;
    std::vector<TextTable::Column> cols = {{"Counter"}};
    std::vector<const v1::HostCounters*> shown;
    for (const v1::HostCounters& h : result.hosts()) {
      if (!h.has_error()) shown.push_back(&h);
    }
    const size_t per_host = show_delta ? 2 : 1;
    for (const v1::HostCounters* h : shown) {
      cols.push_back({h->host(), TextTable::Align::kRight});
      if (show_delta) cols.push_back({"delta", TextTable::Align::kRight});
    }
    for (size_t k = 0; k < shown.size(); ++k) {
      const v1::HostCounters* h = shown[k];
      for (const v1::CounterGroup& g : h->counters().groups()) {
        if (!all_ && g.name() != "Tcp" && g.name() != "TcpExt") continue;
        for (const auto& [name, value] : g.values()) {
          int64_t d = 0;
          if (show_delta) {
            for (const v1::CounterGroup& dg : h->delta().groups()) {
              if (dg.name() != g.name()) continue;
              auto it = dg.values().find(name);
              if (it != dg.values().end()) d = it->second;
            }
          }
          if (!all_ && value == 0 && d == 0) continue;
          std::vector<std::string>& row = rows[absl::StrCat(g.name(), ".", name)];
          row.resize(shown.size() * per_host);
          row[k * per_host] = absl::StrCat(value);
          if (show_delta) row[k * per_host + 1] = absl::StrCat(d >= 0 ? "+" : "", d);
        }
      }
    }
    TextTable table(std::move(cols));
    for (auto& [name, cells] : rows) {
      std::vector<std::string> r = {name};
      r.insert(r.end(), cells.begin(), cells.end());
      table.AddRow(std::move(r));
    }
    table.Print(io.out, true);
  }

  std::vector<std::string> hosts_;
  std::string delta_text_;
  bool all_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeCountersCommand() { return std::make_unique<CountersCommand>(); }

}  // namespace tcbscope
