// Runs tcbscope-agent: builds the source (kernel or replay), the gRPC server
// (Inspector, health, reflection), and serves until SIGINT/SIGTERM.
#ifndef TCBSCOPE_AGENT_AGENT_SERVER_H_
#define TCBSCOPE_AGENT_AGENT_SERVER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace tcbscope {

struct AgentConfig {
  std::string listen = "127.0.0.1:7411";  // ADDR:PORT; port 0 picks a free one
  std::string port_file;                  // if set, the bound port is written here
  std::string record_path;                // --record: save each dump (ss -D format)
  std::string replay_path;                // --replay: serve a recording
  bool insecure = false;                  // allow a non-loopback listen without TLS
  std::string tls_cert, tls_key, client_ca;
  std::string token_file;                 // require this bearer token on every call
  uint32_t batch_size = 1000;
  std::string poll_interval = "1s";       // WatchConnections polling period
  uint32_t watch_queue = 10000;           // events a slow watcher may have queued
  bool log_records = false;               // log every BPF change record read (diagnosis)
  // Change events: "auto" (BPF when it loads, else polling), "bpf" (fail to
  // start without it) or "poll".
  std::string events = "auto";
  // Sequence numbers: "auto" (BPF iter/tcp when it loads), "bpf" or "off".
  std::string seq = "auto";
  // Limits (docs/manual.md, "Limits").
  uint32_t max_calls = 128;           // RPCs in progress at once, all clients together
  uint32_t max_streams = 64;          // WatchConnections streams at once
  uint32_t max_dumps = 4;             // snapshots read from the kernel at once; others wait their turn
  uint32_t max_request_bytes = 65536; // largest request message accepted
  uint32_t max_filter_bytes = 4096;
  uint32_t max_filter_depth = 32;
  std::string keepalive = "30s";      // ping idle connections this often; 10 s without an answer ends them
  // Namespaces: every one of the host, and/or these (NAME in /run/netns or
  // a PATH such as /proc/PID/ns/net). Entering them needs CAP_SYS_ADMIN.
  bool all_netns = false;
  std::vector<std::string> netns;
  // Plaintext ADDR:PORT serving only grpc.health.v1 (for probes that cannot
  // do TLS, such as the kubelet's); empty = none.
  std::string health_listen;
  bool allow_probe = false;               // serve Probe (connection attempts from this host)
  std::vector<std::string> probe_allow;   // CIDRs Probe may target; empty = any
};

// Checks the configuration without starting anything: InvalidArgument with
// one line when a flag is wrong (bad address, non-loopback without TLS or
// --insecure, both --record and --replay, unreadable files).
absl::Status ValidateAgentConfig(const AgentConfig& config);

// Serves until a termination signal. Returns the reason it could not start,
// or OK after a clean shutdown. REQUIRES: ValidateAgentConfig(config).ok().
absl::Status RunAgent(const AgentConfig& config);

}  // namespace tcbscope

#endif  // TCBSCOPE_AGENT_AGENT_SERVER_H_
