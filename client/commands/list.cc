// tcbscope list HOST... [FILTER]: a remote `ss -t`.
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/command.h"
#include "client/host_args.h"
#include "client/render/connection_text.h"
#include "client/render/json_output.h"
#include "client/render/text_table.h"
#include "common/filter.h"
#include "common/tcp_state.h"

namespace tcbscope {
namespace {

class ListCommand : public Command {
 public:
  void Setup(CommandFlags* flags) override {
    flags->Option("args", &args_, "HOST... [FILTER]: hosts (name or address, optionally :port), then an ss filter");
    flags->Flag("-l,--listening", &listening_, "listening sockets only");
    flags->Flag("-a,--all", &all_, "sockets in every state");
    flags->Flag("-i,--info", &info_, "show tcp_info, congestion and timers");
    flags->Flag("-p,--processes", &processes_, "show the processes that own each socket");
    flags->Flag("-e,--seq", &seq_, "show sequence numbers (snd_una, snd_nxt, rcv_nxt, ...) where the agent has BPF");
    flags->Flag("-H,--no-header", &no_header_, "print no header line");
    // Accepted so that ss habits (`-tan`) keep working; tcbscope is always
    // TCP and numeric.
    flags->IgnoredFlag("-t,-n", "accepted for ss compatibility; no effect");
  }

  int Run(const GlobalOptions& global, const Io& io) override {
    absl::StatusOr<HostsAndFilter> hf = SplitHostsAndFilter(args_);
    if (!hf.ok()) {
      PrintError(io, hf.status().message());
      return kExitUsage;
    }
    v1::ListConnectionsRequest request;
    request.set_filter(hf->filter);
    request.set_listening(listening_);
    request.set_all(all_);
    request.set_owners(processes_);
    request.set_tcp_info(info_);
    request.set_sequence(seq_);

    v1::ListResult result;
    const size_t n = hf->hosts.size();
    std::vector<absl::Status> statuses(n);
    const bool json = global.output == OutputFormat::kJson;
    // JSON is rendered while the batches arrive (see ConnectionsJson).
    std::vector<JsonText> host_json(n);
    for (size_t i = 0; i < n; ++i) result.add_hosts()->set_host(hf->hosts[i].ToString());
    // The calls are started from this thread. Several hosts' streams are read
    // on one other, as info's calls are (a CompletionThread: gRPC's callback
    // threads cost more per host); one host's on gRPC's two callback threads,
    // where a 100k-row table is formatted on one while the other reads
    // (on one thread, 5% more wall: docs/performance.md). JSON is rendered on
    // one pool of threads for all hosts while the batches arrive, and each
    // host's result is finished here once every call has ended (a reading
    // thread must not wait for the rendering).
    // A table's rows are formatted as each batch arrives, on the thread that
    // read it, and the batch's memory is then reused for the next one: the
    // formatting overlaps the agent's dump, and a 100k listing is held as its
    // text only (~70 bytes a row) instead of as messages (~900 with tcp_info).
    std::vector<std::unique_ptr<HostRows>> rows(n);
    std::unique_ptr<JsonRenderPool> pool;
    std::vector<std::unique_ptr<ConnectionsJson>> renderings(n);
    if (json) pool = std::make_unique<JsonRenderPool>();
    // The first host's connections are written out as they are rendered, the
    // document's head with the first of them, so a 100k listing is never
    // held whole; later hosts wait their turn in memory. The sink runs on
    // one rendering thread at a time and these two are read only after
    // every call has ended.
    std::string stream_head;
    if (json && n > 0) {
      absl::StatusOr<std::string> head = StreamedHostHead(result.hosts(0));
      if (head.ok()) stream_head = absl::StrCat("{\"hosts\":[", *head);
    }
    {
      std::optional<CompletionThread> completions;
      if (n > 1) completions.emplace();
      CompletionThread* const reader = completions ? &*completions : nullptr;
      StartOnEachHost(
          hf->hosts, global.client,
          [&](size_t i, AgentClient& client, std::function<void(absl::Status)> done) {
            v1::HostConnections* hc = result.mutable_hosts(static_cast<int>(i));
            if (!json) {
              rows[i] = std::make_unique<HostRows>(Columns(n > 1));
              client.StartListConnections(
                  request, hc,
                  [this, r = rows[i].get(), hc, many = n > 1](v1::ConnectionBatch* b) {
                    AddRows(*b, hc->host(), many, r);
                  },
                  std::move(done), reader);
              return;
            }
            renderings[i] = std::make_unique<ConnectionsJson>(pool.get());
            if (i == 0 && !stream_head.empty()) {
              renderings[0]->StreamTo([&](JsonText text) {
                if (!stream_head.empty()) {
                  fwrite(stream_head.data(), 1, stream_head.size(), io.out);
                  stream_head.clear();
                }
                text.WriteTo(io.out);
              });
            }
            client.StartListConnectionsEncoded(
                request, hc, [r = renderings[i].get()](client::EncodedConnectionBatch* b) { r->Add(b); },
                std::move(done), reader);
          },
          &statuses);
    }
    bool head_written = false;
    for (size_t i = 0; i < n; ++i) {
      v1::HostConnections* hc = result.mutable_hosts(static_cast<int>(i));
      if (!statuses[i].ok()) {
        hc->clear_connections();
        SetHostError(statuses[i], hc->mutable_error());
      }
      if (!json) continue;
      absl::StatusOr<JsonText> conns = renderings[i] ? renderings[i]->Finish() : JsonText();
      if (renderings[i] && renderings[i]->streamed()) {
        // Its connections are out; what follows them closes the host.
        head_written = true;
        if (!conns.ok() && statuses[i].ok()) {
          statuses[i] = conns.status();
          SetHostError(statuses[i], hc->mutable_error());
        }
        absl::StatusOr<std::string> tail = StreamedHostTail(*hc);
        host_json[i].Append(tail.ok() ? absl::string_view(*tail) : absl::string_view("]}"));
        if (!tail.ok() && statuses[i].ok()) statuses[i] = tail.status();
      } else {
        absl::StatusOr<JsonText> text =
            conns.ok() ? HostConnectionsJson(*hc, statuses[i].ok() ? *std::move(conns) : JsonText()) : conns.status();
        if (text.ok()) host_json[i] = *std::move(text);
        if (!text.ok() && statuses[i].ok()) statuses[i] = text.status();
      }
      renderings[i].reset();
    }

    const int exit_code = ReportHostErrors(hf->hosts, statuses, io);
    if (json) {
      // ListResult has one field, hosts: this is json_util's rendering of it.
      JsonText doc;
      if (!head_written) doc.Append("{\"hosts\":[");
      for (size_t i = 0; i < n; ++i) {
        if (i > 0) doc.Append(",");
        doc.Append(std::move(host_json[i]));
      }
      doc.Append("]}\n");
      doc.WriteTo(io.out);
      return exit_code;
    }
    // A host that failed shows no rows (its error is on stderr).
    TextTable table(Columns(n > 1));
    bool namespaces = false;
    for (size_t i = 0; i < n; ++i) {
      if (!statuses[i].ok() || !rows[i]) continue;
      table.Append(std::move(rows[i]->table));
      namespaces |= rows[i]->namespaces;
      rows[i].reset();
    }
    // An agent reading several namespaces (--all-netns) tags each connection;
    // the column appears only when a host's connections span namespaces.
    if (!namespaces) table.HideColumn(n > 1 ? 1 : 0);
    table.Print(io.out, !no_header_);
    for (const v1::HostConnections& hc : result.hosts()) {
      if (hc.dump_interrupted()) {
        PrintError(io, absl::StrCat(hc.host(),
                                    ": the kernel reported the dump interrupted (sockets changed meanwhile); "
                                    "a socket may be missing or shown twice"));
      }
    }
    return exit_code;
  }

 private:
  // One host's rows, filled by its stream's batches (one at a time).
  struct HostRows {
    explicit HostRows(std::vector<TextTable::Column> columns) : table(std::move(columns)) {}
    TextTable table;
    uint64_t first_netns = 0;  // of its first row
    bool namespaces = false;  // its connections span namespaces
    std::string netns, local, remote, owners, detail;  // reused for every row
  };

  std::vector<TextTable::Column> Columns(bool many) const {
    std::vector<TextTable::Column> cols;
    if (many) cols.push_back({"Host"});
    cols.push_back({"Netns"});  // hidden unless some host spans namespaces
    cols.push_back({"State"});
    cols.push_back({"Recv-Q", TextTable::Align::kRight});
    cols.push_back({"Send-Q", TextTable::Align::kRight});
    cols.push_back({"Local Address:Port", TextTable::Align::kRight});
    cols.push_back({"Peer Address:Port"});
    if (processes_) cols.push_back({"Process"});
    return cols;
  }

  void AddRows(const v1::ConnectionBatch& batch, const std::string& host, bool many, HostRows* r) const {
    for (const v1::Connection& c : batch.connections()) {
      if (r->table.rows() == 0) r->first_netns = c.netns();
      if (c.netns() != r->first_netns || !c.netns_name().empty()) r->namespaces = true;
      absl::string_view row[8];
      size_t n = 0;
      if (many) row[n++] = host;
      r->netns.clear();
      if (c.netns_name().empty()) {
        absl::StrAppend(&r->netns, "net:[", c.netns(), "]");
      } else {
        r->netns = c.netns_name();
      }
      row[n++] = r->netns;
      const absl::AlphaNum recv_q(c.recv_q()), send_q(c.send_q());
      r->local.clear();
      r->remote.clear();
      AppendEndpoint(c, c.local(), &r->local);
      AppendEndpoint(c, c.remote(), &r->remote);
      row[n++] = StateShortName(c.state());
      row[n++] = recv_q.Piece();
      row[n++] = send_q.Piece();
      row[n++] = r->local;
      row[n++] = r->remote;
      if (processes_) {
        r->owners.clear();
        AppendOwners(c, &r->owners);
        row[n++] = r->owners;
      }
      r->table.AddRow(absl::MakeConstSpan(row, n));
      if (!info_ && !seq_) continue;
      r->detail.clear();
      if (info_) AppendTcpInfo(c, &r->detail);
      if (seq_ && c.has_seq()) {
        const v1::SequenceSpace& q = c.seq();
        absl::StrAppend(&r->detail, r->detail.empty() ? "" : " ", "seq:(snd_una ", q.snd_una(),
                        ",snd_nxt ", q.snd_nxt(), ",write_seq ", q.write_seq(), ",rcv_nxt ", q.rcv_nxt(),
                        ",copied_seq ", q.copied_seq(), ",snd_wnd ", q.snd_wnd(), ",rcv_wnd ", q.rcv_wnd(), ")");
      }
      r->table.AddDetail(r->detail);
    }
  }

  std::vector<std::string> args_;
  bool listening_ = false, all_ = false, info_ = false, processes_ = false, no_header_ = false, seq_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeListCommand() { return std::make_unique<ListCommand>(); }

}  // namespace tcbscope
