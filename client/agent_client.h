// A connection to one tcbscope-agent: channel, credentials, deadlines.
//
// Every call returns absl::Status; a gRPC failure keeps its code (UNAVAILABLE
// for an unreachable or unknown host, DEADLINE_EXCEEDED, INVALID_ARGUMENT for
// a filter the agent refused) and gets a message a person can act on.
// Thread-safe: calls may be made concurrently on one AgentClient.
#ifndef TCBSCOPE_CLIENT_AGENT_CLIENT_H_
#define TCBSCOPE_CLIENT_AGENT_CLIENT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/client_config.h"
#include "client/completion_thread.h"
#include "common/ip_address.h"
#include "tcbscope/client/encoded_batch.pb.h"
#include "tcbscope/v1/inspector.grpc.pb.h"
#include "tcbscope/v1/results.pb.h"

namespace tcbscope {

class TcbBatch;

constexpr uint16_t kDefaultAgentPort = 7411;

struct ClientOptions {
  absl::Duration timeout = absl::Seconds(10);  // per call, whole stream included
  std::string tls_ca;     // PEM file; enables TLS
  std::string tls_cert;   // client certificate for mutual TLS (PEM file)
  std::string tls_key;
  std::string token_file; // bearer token sent as "authorization: Bearer ..."
  // The configuration file, if any: a HOST named in it connects to its
  // address, and credentials not set above come from its section, then from
  // the file's top level (client_config.h).
  std::shared_ptr<const ClientConfig> config;
  // Whether calls on the channel may bring large answers (a listing, a
  // watch). Then gRPC sends a PING with the first data it receives, to size
  // its flow-control window to the path (its BDP probe); a 100k listing
  // needs that. A command whose answers are a few kilobytes (info, counters)
  // turns it off: per host one PING and its ACK fewer, and one wakeup fewer
  // of the agent's thread (docs/performance.md).
  bool large_answers = true;
};

class AgentClient {
 public:
  // Builds the channel (does not connect yet). InvalidArgument when a
  // credential file cannot be read.
  static absl::StatusOr<std::unique_ptr<AgentClient>> Create(const HostPort& host, const ClientOptions& options);

  absl::Status GetHostInfo(v1::HostInfo* out);
  // Starts GetHostInfo and returns at once; `done` runs once, on
  // `completions`' thread, when the call has ended; this client must not be
  // destroyed before, and may be once `done` has been called. `out` and
  // `completions` must outlive the call. Many hosts' calls in flight need no
  // thread of the caller's each.
  void StartGetHostInfo(v1::HostInfo* out, CompletionThread* completions, std::function<void(absl::Status)> done);
  // Reads the whole stream into `out` (connections, capture time, interrupted).
  // With `on_batch`, each batch is handed to it as it arrives instead, and
  // `out` gets everything but the connections. A batch (and all in it) lives
  // only until on_batch returns: the next read reuses its memory.
  absl::Status ListConnections(const v1::ListConnectionsRequest& request, v1::HostConnections* out,
                               const std::function<void(v1::ConnectionBatch*)>& on_batch = nullptr);
  // As ListConnections with `on_batch`, but each connection stays as the
  // agent encoded it: for output that passes connections on without looking
  // at them (JSON), receiving is then a copy rather than a parse.
  absl::Status ListConnectionsEncoded(const v1::ListConnectionsRequest& request, v1::HostConnections* out,
                                      const std::function<void(client::EncodedConnectionBatch*)>& on_batch);
  // As ListConnections with `on_batch`, but each batch is read straight
  // into Tcbs (common/tcb_batch.h): for output made of Tcbs alone
  // (`correlate`'s table), receiving then builds no message.
  absl::Status ListConnectionTcbs(const v1::ListConnectionsRequest& request, v1::HostConnections* out,
                                  const std::function<void(TcbBatch*)>& on_batch);
  // The same two, started: they return at once, and `on_batch` (or the move
  // into `out`) runs one batch at a time on `completions`' thread, or on
  // gRPC's callback threads if it is null; `done` runs once, when the call
  // has ended, as for StartGetHostInfo. `out` must outlive the call, and
  // nothing else may touch it until `done`. A CompletionThread costs less
  // per call (completion_thread.h) but reads every stream started on it on
  // one thread; the callback threads are two.
  void StartListConnections(const v1::ListConnectionsRequest& request, v1::HostConnections* out,
                            std::function<void(v1::ConnectionBatch*)> on_batch,
                            std::function<void(absl::Status)> done, CompletionThread* completions = nullptr);
  void StartListConnectionsEncoded(const v1::ListConnectionsRequest& request, v1::HostConnections* out,
                                   std::function<void(client::EncodedConnectionBatch*)> on_batch,
                                   std::function<void(absl::Status)> done, CompletionThread* completions = nullptr);
  absl::Status GetCounters(v1::Counters* out);
  // A connection attempt from the agent's host (agent started with
  // --allow-probe); the deadline is the probe's timeout plus the call's.
  absl::Status Probe(const v1::ProbeRequest& request, v1::ProbeResult* out);
  // Streams WatchConnections into `on_event` until the stream ends or `ctx`
  // is cancelled (then OK). The caller owns `ctx`, to cancel it from another
  // thread; no deadline is set on it.
  absl::Status Watch(const v1::WatchConnectionsRequest& request, grpc::ClientContext* ctx,
                     const std::function<void(const v1::WatchEvent&)>& on_event);

  const HostPort& host() const { return host_; }

 private:
  AgentClient(HostPort host, ClientOptions options, std::shared_ptr<grpc::Channel> channel, std::string token);
  void Prepare(grpc::ClientContext* ctx) const;
  // The ListConnections stream read as `Batch` (a view of ConnectionBatch
  // with its own grpc::SerializationTraits or proto).
  template <typename Batch>
  void StartListConnectionsAs(const v1::ListConnectionsRequest& request, v1::HostConnections* out,
                              std::function<void(Batch*)> on_batch, std::function<void(absl::Status)> done,
                              CompletionThread* completions);
  absl::Status Convert(const grpc::Status& s) const;

  HostPort host_;
  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Inspector::Stub> stub_;
  std::string token_;
};

// Makes each host's client and starts its call with start(i, client, done),
// which must see to it that `done` is called once with the call's status,
// from any thread; at most `in_flight` hosts at a time, from the calling
// thread (StartEachBounded), each client retired (process_end.h) on the
// calling thread once its call has ended. Returns when every call has ended;
// `(*statuses)[i]` is host i's result: its call's status, or why its client
// could not be made.
void StartOnEachHost(const std::vector<HostPort>& hosts, const ClientOptions& options,
                     const std::function<void(size_t, AgentClient&, std::function<void(absl::Status)>)>& start,
                     std::vector<absl::Status>* statuses, size_t in_flight = 128);

// The gRPC status code's name ("UNAVAILABLE"), for results and messages.
std::string StatusCodeName(absl::StatusCode code);

}  // namespace tcbscope

#endif  // TCBSCOPE_CLIENT_AGENT_CLIENT_H_
