#include "agent/agent_server.h"

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/health_service.h"
#include "agent/inspector_service.h"
#include "agent/kernel/netns_source.h"
#include "agent/kernel/replay_source.h"
#include "agent/kernel/sock_diag_reader.h"
#include "agent/log.h"
#include "agent/prober.h"
#include "agent/unary_loop.h"
#include "agent/watch_hub.h"
#include "common/ip_address.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"

#ifndef TCBSCOPE_VERSION
#define TCBSCOPE_VERSION "dev"
#endif

namespace tcbscope {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(what, " ", path, ": cannot be read"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A started server and the thread of its UnaryLoop. Stop (or the destructor,
// on any early return) ends them in the order UnaryLoop requires; the health
// service goes NOT_SERVING first, so its watchers hear it before the end.
class RunningServer {
 public:
  // Builds and starts the server with a UnaryLoop that `serve` adds its
  // methods to. Null when the server did not start.
  static std::unique_ptr<RunningServer> Start(grpc::ServerBuilder& builder, HealthService* health,
                                              const std::function<void(UnaryLoop*)>& serve) {
    auto r = std::unique_ptr<RunningServer>(new RunningServer(health));
    r->cq_ = builder.AddCompletionQueue();
    r->loop_ = std::make_unique<UnaryLoop>(r->cq_.get());
    serve(r->loop_.get());
    r->server_ = builder.BuildAndStart();
    if (r->server_ == nullptr) {
      // Nothing was asked for on the queue; it only needs shutting down.
      r->stopped_ = true;
      r->cq_->Shutdown();
      void* tag;
      bool ok;
      while (r->cq_->Next(&tag, &ok)) {
      }
      return nullptr;
    }
    r->thread_ = std::thread([loop = r->loop_.get()] { loop->Run(); });
    return r;
  }

  // Calls in progress get until `deadline`, then are cancelled.
  void Stop(std::chrono::system_clock::time_point deadline) {
    if (stopped_) return;
    stopped_ = true;
    health_->Shutdown();
    loop_->BeginShutdown();
    server_->Shutdown(deadline);
    loop_->EndShutdown();
    thread_.join();
    server_->Wait();
  }

  ~RunningServer() { Stop(std::chrono::system_clock::now()); }

 private:
  explicit RunningServer(HealthService* health) : health_(health) {}

  HealthService* const health_;
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  std::unique_ptr<UnaryLoop> loop_;
  std::unique_ptr<grpc::Server> server_;
  std::thread thread_;
  bool stopped_ = false;
};

}  // namespace

absl::Status ValidateAgentConfig(const AgentConfig& config) {
  absl::StatusOr<HostPort> hp = ParseHostPort(config.listen, 0, /*allow_port_zero=*/true);
  if (!hp.ok()) return absl::InvalidArgumentError(absl::StrCat("--listen: ", hp.status().message()));
  if (config.listen.find(':') == std::string::npos || (config.listen.front() == '[' && config.listen.back() == ']')) {
    return absl::InvalidArgumentError("--listen: give ADDR:PORT, e.g. 127.0.0.1:7411 or [::1]:7411");
  }
  absl::StatusOr<IpAddress> addr = IpAddress::Parse(hp->host);
  const bool loopback = hp->host == "localhost" || (addr.ok() && addr->IsLoopback());
  if (!addr.ok() && hp->host != "localhost") {
    return absl::InvalidArgumentError(absl::StrCat("--listen: '", hp->host, "' is not an IP address"));
  }
  const bool tls = !config.tls_cert.empty() || !config.tls_key.empty();
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (!config.client_ca.empty() && !tls) return absl::InvalidArgumentError("--client-ca needs --tls-cert and --tls-key");
  if (!loopback && !tls && !config.insecure) {
    return absl::InvalidArgumentError(absl::StrCat("--listen ", config.listen,
                                                   " is not loopback: give --tls-cert/--tls-key, or --insecure to "
                                                   "serve connection data in plaintext"));
  }
  if (!config.record_path.empty() && !config.replay_path.empty()) {
    return absl::InvalidArgumentError("--record and --replay cannot be used together");
  }
  if (config.batch_size == 0 || config.batch_size > 100000) {
    return absl::InvalidArgumentError("--batch-size must be from 1 to 100000");
  }
  absl::Duration poll;
  if (!absl::ParseDuration(config.poll_interval, &poll) || poll < absl::Milliseconds(50) || poll > absl::Minutes(10)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--poll-interval: '", config.poll_interval, "' is not a duration from 50ms to 10m"));
  }
  if (config.events != "auto" && config.events != "bpf" && config.events != "poll") {
    return absl::InvalidArgumentError(absl::StrCat("--events: '", config.events, "' is not auto, bpf or poll"));
  }
  if (config.seq != "auto" && config.seq != "bpf" && config.seq != "off") {
    return absl::InvalidArgumentError(absl::StrCat("--seq: '", config.seq, "' is not auto, bpf or off"));
  }
  if (!config.replay_path.empty() && (config.events == "bpf" || config.seq == "bpf")) {
    return absl::InvalidArgumentError("--replay serves a recording: it has no BPF events or sequence numbers");
  }
  if ((config.all_netns || !config.netns.empty()) && (!config.replay_path.empty() || !config.record_path.empty())) {
    return absl::InvalidArgumentError("--all-netns/--netns read live namespaces: not with --record or --replay");
  }
  if (!config.health_listen.empty()) {
    absl::StatusOr<HostPort> h = ParseHostPort(config.health_listen, 0);
    if (!h.ok() || config.health_listen.find(':') == std::string::npos) {
      return absl::InvalidArgumentError("--health-listen: give ADDR:PORT, e.g. 0.0.0.0:7412");
    }
  }
  if (config.max_calls < 1 || config.max_calls > 10000) return absl::InvalidArgumentError("--max-calls must be from 1 to 10000");
  if (config.max_dumps < 1 || config.max_dumps > 256) return absl::InvalidArgumentError("--max-dumps must be from 1 to 256");
  if (config.max_streams < 1 || config.max_streams > 10000) {
    return absl::InvalidArgumentError("--max-streams must be from 1 to 10000");
  }
  if (config.max_request_bytes < 1024 || config.max_request_bytes > (16u << 20)) {
    return absl::InvalidArgumentError("--max-request-bytes must be from 1024 to 16777216");
  }
  if (config.max_filter_bytes < 16 || config.max_filter_bytes > config.max_request_bytes) {
    return absl::InvalidArgumentError("--max-filter-bytes must be from 16 to --max-request-bytes");
  }
  if (config.max_filter_depth < 1 || config.max_filter_depth > 1000) {
    return absl::InvalidArgumentError("--max-filter-depth must be from 1 to 1000");
  }
  absl::Duration keepalive;
  if (!absl::ParseDuration(config.keepalive, &keepalive) || keepalive < absl::Seconds(1) || keepalive > absl::Hours(2)) {
    return absl::InvalidArgumentError(absl::StrCat("--keepalive: '", config.keepalive, "' is not a duration from 1s to 2h"));
  }
  for (const std::string& cidr : config.probe_allow) {
    absl::StatusOr<std::pair<IpAddress, int>> p = ParsePrefix(cidr);
    if (!p.ok()) return absl::InvalidArgumentError(absl::StrCat("--probe-allow: ", p.status().message()));
  }
  if (!config.probe_allow.empty() && !config.allow_probe) {
    return absl::InvalidArgumentError("--probe-allow needs --allow-probe");
  }
  if (config.watch_queue < 100 || config.watch_queue > 10000000) {
    return absl::InvalidArgumentError("--watch-queue must be from 100 to 10000000 events");
  }
  return absl::OkStatus();
}

absl::Status RunAgent(const AgentConfig& config) {
  // Block the termination signals in every thread gRPC will start; one thread
  // of ours waits for them below.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<kernel::DiagSource> source;
  kernel::SockDiagReader* live = nullptr;      // the source, when it is this namespace's kernel
  kernel::MultiNetnsSource* multi = nullptr;   // the source, when it spans namespaces
  ServiceOptions options;
  options.version = TCBSCOPE_VERSION;
  options.snapshot.batch_size = config.batch_size;
  options.snapshot.filter_limits.max_length = config.max_filter_bytes;
  options.snapshot.filter_limits.max_depth = static_cast<int>(config.max_filter_depth);
  options.max_calls = config.max_calls;
  options.max_streams = std::min(config.max_streams, config.max_calls);  // a stream is also a call
  options.max_dumps = config.max_dumps;
  if (!config.token_file.empty()) {
    absl::StatusOr<BearerToken> token = BearerToken::FromFile(config.token_file);
    if (!token.ok()) return token.status();
    options.token = *std::move(token);
    if (config.tls_cert.empty()) {
      Log(LogLevel::kWarning, "--token-file without TLS: the token crosses the network in plaintext");
    }
  }
  if (!config.replay_path.empty()) {
    absl::StatusOr<std::unique_ptr<kernel::ReplaySource>> replay = kernel::ReplaySource::Open(config.replay_path);
    if (!replay.ok()) return replay.status();
    Log(LogLevel::kInfo, absl::StrCat("replaying ", config.replay_path, ": ", (*replay)->socket_count(), " sockets"));
    source = std::move(*replay);
    options.replay = true;
  } else {
    std::shared_ptr<kernel::DumpRecorder> recorder;
    if (!config.record_path.empty()) {
      recorder = std::make_shared<kernel::DumpRecorder>(config.record_path);
      Log(LogLevel::kInfo, absl::StrCat("recording every dump to ", config.record_path));
    }
    if (config.all_netns || !config.netns.empty()) {
      absl::StatusOr<std::unique_ptr<kernel::MultiNetnsSource>> m =
          kernel::MultiNetnsSource::Create(config.netns, config.all_netns);
      if (!m.ok()) return m.status();
      multi = m->get();
      options.netns = multi;
      Log(LogLevel::kInfo, absl::StrCat("reading ", (*m)->Describe(), ": ", (*m)->Namespaces().size(),
                                        " namespaces now"));
      source = std::move(*m);
    } else {
      auto reader = std::make_unique<kernel::SockDiagReader>(recorder);
      live = reader.get();
      source = std::move(reader);
    }
  }

  std::shared_ptr<grpc::ServerCredentials> creds;
  if (!config.tls_cert.empty()) {
    grpc::SslServerCredentialsOptions ssl(config.client_ca.empty()
                                              ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                              : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    absl::StatusOr<std::string> cert = ReadFile(config.tls_cert, "--tls-cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFile(config.tls_key, "--tls-key");
    if (!key.ok()) return key.status();
    pair.cert_chain = *cert;
    pair.private_key = *key;
    ssl.pem_key_cert_pairs.push_back(pair);
    if (!config.client_ca.empty()) {
      absl::StatusOr<std::string> ca = ReadFile(config.client_ca, "--client-ca");
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *ca;
    }
    creds = grpc::SslServerCredentials(ssl);
  } else {
    creds = grpc::InsecureServerCredentials();
    if (config.insecure) Log(LogLevel::kWarning, "--insecure: serving connection data without TLS");
  }

  std::unique_ptr<WatchHub> hub;
  std::unique_ptr<kernel::BpfSeqReader> seq;
  std::unique_ptr<kernel::BpfFilesReader> files_reader;
  if (!options.replay) {
    WatchOptions watch;
    absl::ParseDuration(config.poll_interval, &watch.poll_interval);
    watch.queue_limit = config.watch_queue;
    watch.log_records = config.log_records;
    std::unique_ptr<kernel::BpfEventReader> events;
    if (config.events != "poll") {
      // Spanning namespaces, the programs report every namespace's sockets.
      absl::StatusOr<std::unique_ptr<kernel::BpfEventReader>> opened =
          kernel::BpfEventReader::Open(multi != nullptr ? 0 : source->netns());
      if (opened.ok()) {
        events = std::move(*opened);
        Log(LogLevel::kInfo, "change events: BPF tracepoints");
      } else if (config.events == "bpf") {
        return absl::FailedPreconditionError(absl::StrCat("--events bpf: ", opened.status().message()));
      } else {
        const std::string why = absl::StrCat("change events: polling every ", config.poll_interval, ", because ",
                                             opened.status().message());
        Log(LogLevel::kInfo, why);
        options.notes.push_back(why);
      }
    }
    if (events) {
      EventTracker::Lookup find;
      std::function<void()> forget;
      if (multi != nullptr) {
        find = [multi](const v1::Connection& c) { return multi->FindOne(c); };
        forget = [multi] { multi->DropReaders(); };
      } else {
        find = [live](const v1::Connection& c) { return live->FindOne(c); };
      }
      hub = std::make_unique<WatchHub>(source.get(), watch, std::move(events), std::move(find), std::move(forget));
    } else {
      hub = std::make_unique<WatchHub>(source.get(), watch);
    }
    options.hub = hub.get();
    if (config.seq != "off") {
      absl::StatusOr<std::unique_ptr<kernel::BpfSeqReader>> opened = kernel::BpfSeqReader::Open();
      if (opened.ok()) {
        seq = std::move(*opened);
        options.seq = seq.get();
        Log(LogLevel::kInfo, "sequence numbers: BPF iter/tcp");
      } else if (config.seq == "bpf") {
        return absl::FailedPreconditionError(absl::StrCat("--seq bpf: ", opened.status().message()));
      } else {
        const std::string why = absl::StrCat("sequence numbers: none, because ", opened.status().message());
        Log(LogLevel::kInfo, why);
        options.notes.push_back(why);
      }
    } else {
      options.notes.push_back("sequence numbers: off (--seq off)");
    }
    // Owners (-p): the kernel's walk of the file tables when BPF loads; the
    // /proc walk otherwise (same answer, ten times the time at 100k sockets).
    absl::StatusOr<std::unique_ptr<kernel::BpfFilesReader>> files = kernel::BpfFilesReader::Open();
    if (files.ok()) {
      files_reader = std::move(*files);
      options.files = files_reader.get();
      Log(LogLevel::kInfo, "owners: BPF iter/task_file");
    } else {
      Log(LogLevel::kInfo, absl::StrCat("owners: /proc, because ", files.status().message()));
    }
  }
  ProbeOptions probe;
  probe.allowed = config.allow_probe && !options.replay;
  for (const std::string& cidr : config.probe_allow) probe.allow.push_back(*ParsePrefix(cidr));
  Prober prober(probe);
  options.prober = &prober;
  if (probe.allowed) {
    Log(LogLevel::kInfo, probe.allow.empty() ? "probe: on, to any address (--allow-probe)"
                                             : absl::StrCat("probe: on, to ", absl::StrJoin(config.probe_allow, ", ")));
  }
  InspectorService service(source.get(), options);
  // Not gRPC's built-in health service: it would start gRPC's callback
  // threads (proto/grpc/health/v1/health.proto).
  HealthService health_service;
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(config.listen, creds, &bound_port);
  builder.RegisterService(&service);
  builder.RegisterService(&health_service);
  builder.SetMaxSendMessageSize(64 << 20);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_request_bytes));  // requests are small
  // No gRPC thread quota: the sync server refuses calls with "thread pool
  // exhausted" well below its nominal size (50 watch streams failed at 136);
  // the service's own admission (--max-calls) bounds the handlers instead.
  // Keepalive: a client that vanished (host down, cable out) is noticed and
  // its streams end, instead of holding a subscription for ever.
  absl::Duration keepalive;
  absl::ParseDuration(config.keepalive, &keepalive);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(absl::ToInt64Milliseconds(keepalive)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  // No BDP probe: it sizes the window for data this end receives, and the
  // agent receives only small requests. With it, every request's DATA frame
  // drew a PING, and its ACK a wakeup: 12% of the CPU of a GetHostInfo on
  // a new connection (docs/performance.md). The client's probe, which sizes
  // the window a large listing streams into, is the client's.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  // One listening socket: with SO_REUSEPORT gRPC opens several, and with
  // port 0 they end up on different ports, one of them unreported.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // The synchronous methods' calls wait on one queue: by default the sync
  // server keeps a queue per core and several threads. That queue does not
  // poll (the UnaryLoop's thread is the server's one poller, see
  // unary_loop.h); handlers still get threads of their own, so streams run
  // concurrently as before. Two threads may wait on it: a thread that takes
  // a call leaves one waiting, so none is started, and it returns to wait
  // afterwards instead of ending. With one, every ListConnections started a
  // thread and ended one. A queue that does not poll wakes one waiter per
  // call, not both.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 2);
  std::unique_ptr<RunningServer> server = RunningServer::Start(builder, &health_service, [&](UnaryLoop* loop) {
    service.ServeOn(loop);
    health_service.ServeOn(loop);
  });
  if (!server || bound_port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", config.listen,
                                               " (address in use, or not an address of this host?)"));
  }
  // Health only, in plaintext: it says SERVING or not, nothing about sockets.
  HealthService health_only;
  std::unique_ptr<RunningServer> health;
  if (!config.health_listen.empty()) {
    grpc::ServerBuilder hb;
    hb.RegisterService(&health_only);
    int health_port = 0;
    hb.AddListeningPort(config.health_listen, grpc::InsecureServerCredentials(), &health_port);
    hb.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    hb.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);  // as above
    hb.SetMaxReceiveMessageSize(1024);
    health = RunningServer::Start(hb, &health_only, [&](UnaryLoop* loop) { health_only.ServeOn(loop); });
    if (!health || health_port == 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", config.health_listen, " (--health-listen)"));
    }
    Log(LogLevel::kInfo, absl::StrCat("health only, plaintext, on ", config.health_listen));
  }
  if (!config.port_file.empty()) {
    const std::string tmp = config.port_file + ".tmp";
    {
      std::ofstream out(tmp);
      out << bound_port << "\n";
    }
    if (rename(tmp.c_str(), config.port_file.c_str()) != 0) {
      return absl::UnavailableError(absl::StrCat("--port-file ", config.port_file, ": cannot write"));
    }
  }
  absl::StatusOr<HostPort> hp = ParseHostPort(config.listen, 0, /*allow_port_zero=*/true);
  HostPort shown = *hp;
  shown.port = static_cast<uint16_t>(bound_port);
  Log(LogLevel::kInfo, absl::StrCat("serving ", source->Describe(), " on ", shown.ToString(), " (version ",
                                    options.version, ", pid ", getpid(), ")"));

  int sig = 0;
  sigwait(&sigs, &sig);
  Log(LogLevel::kInfo, absl::StrCat("signal ", sig, ": shutting down"));
  // Streams in progress get a moment to finish, then are cancelled.
  health_only.Shutdown();  // the kubelet hears it while streams finish
  server->Stop(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (health) health->Stop(std::chrono::system_clock::now());
  Log(LogLevel::kInfo, "stopped");
  return absl::OkStatus();
}

}  // namespace tcbscope
