// tcbscope-agent: serves this host's TCP control blocks over gRPC.
#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "agent/agent_server.h"
#include "agent/log.h"
#include "common/sanitizers.h"

int main(int argc, char** argv) {
  // Debian's Abseil checks every Mutex acquisition against a lock graph (a
  // debugging aid; gRPC locks on every call): ~4% of the agent's CPU for a
  // short call. The sanitizer build, which runs the tests, keeps the check.
#if !TCBSCOPE_ADDRESS_SANITIZER
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  tcbscope::AgentConfig config;
  CLI::App app{"tcbscope-agent: a read-only gRPC service serving this host's TCP sockets"};
  app.add_option("--listen", config.listen, "ADDR:PORT to serve on (port 0 picks one)")
      ->capture_default_str();
  app.add_option("--port-file", config.port_file, "write the bound port to this file once listening");
  app.add_option("--record", config.record_path, "save each sock_diag dump to FILE (ss -D format)");
  app.add_option("--replay", config.replay_path, "serve a recorded dump (ss -D / --record file) instead of the kernel");
  app.add_flag("--insecure", config.insecure, "allow a non-loopback --listen without TLS");
  app.add_option("--tls-cert", config.tls_cert, "server certificate chain (PEM)");
  app.add_option("--tls-key", config.tls_key, "server private key (PEM)");
  app.add_option("--client-ca", config.client_ca, "require client certificates signed by this CA (mutual TLS)");
  app.add_option("--token-file", config.token_file, "require this bearer token (file, 16+ characters) on every call");
  app.add_option("--poll-interval", config.poll_interval, "how often WatchConnections looks for changes")
      ->capture_default_str();
  app.add_option("--watch-queue", config.watch_queue, "events a slow watcher may have waiting before it is resynced")
      ->capture_default_str();
  app.add_flag("--log-records", config.log_records,
               "log every BPF change record as it is read (diagnosis: one line per TCP state change watched)");
  app.add_option("--events", config.events, "change events: auto (BPF if it loads), bpf or poll")
      ->capture_default_str();
  app.add_option("--seq", config.seq, "sequence numbers: auto (BPF iter/tcp if it loads), bpf or off")
      ->capture_default_str();
  app.add_option("--max-calls", config.max_calls, "RPCs in progress at once (more get RESOURCE_EXHAUSTED)")
      ->capture_default_str();
  app.add_option("--max-streams", config.max_streams, "WatchConnections streams at once")->capture_default_str();
  app.add_option("--max-dumps", config.max_dumps, "snapshots read from the kernel at once (the rest wait their turn)")
      ->capture_default_str();
  app.add_option("--max-request-bytes", config.max_request_bytes, "largest request accepted")->capture_default_str();
  app.add_option("--max-filter-bytes", config.max_filter_bytes, "longest filter accepted")->capture_default_str();
  app.add_option("--max-filter-depth", config.max_filter_depth, "deepest filter nesting accepted")
      ->capture_default_str();
  app.add_option("--keepalive", config.keepalive, "ping idle client connections this often")->capture_default_str();
  app.add_flag("--all-netns", config.all_netns,
               "read every network namespace of the host (containers, pods); needs CAP_SYS_ADMIN");
  app.add_option("--netns", config.netns, "read this network namespace (NAME in /run/netns, or a PATH); repeatable");
  app.add_option("--health-listen", config.health_listen,
                 "ADDR:PORT serving only the gRPC health service, in plaintext (for the kubelet)");
  app.add_flag("--allow-probe", config.allow_probe, "serve Probe: connection attempts from this host (diagnose --probe)");
  app.add_option("--probe-allow", config.probe_allow, "CIDR that Probe may target (repeatable; default any)");
  app.add_option("--batch-size", config.batch_size, "connections per streamed message")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "tcbscope-agent: " << e.what() << " (see --help)\n";
    return 2;
  }
  absl::Status s = tcbscope::ValidateAgentConfig(config);
  if (!s.ok()) {
    std::cerr << "tcbscope-agent: " << s.message() << "\n";
    return 2;
  }
  s = tcbscope::RunAgent(config);
  if (!s.ok()) {
    tcbscope::Log(tcbscope::LogLevel::kError, s.message());
    return absl::IsInvalidArgument(s) ? 2 : 1;
  }
  return 0;
}
