// JSON output: the proto's own JSON mapping (protobuf json_util), field names
// as in the .proto, one document per command.
#ifndef TCBSCOPE_CLIENT_RENDER_JSON_OUTPUT_H_
#define TCBSCOPE_CLIENT_RENDER_JSON_OUTPUT_H_

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "tcbscope/v1/results.pb.h"

namespace tcbscope {

// `message` as json_util renders it (compact, proto field names).
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message);

// Writes `message` as one JSON document and a newline.
absl::Status PrintJson(const google::protobuf::Message& message, FILE* out);

// Renders a host's connections to JSON while they are still arriving: each
// batch is handed over as it comes off the wire and rendered on one of two
// worker threads, so the JSON work overlaps the agent's dump instead of
// following it.
// The text is json_util's own rendering of each batch, joined into the
// array json_util would print for the whole repeated field (the e2e tests
// check the result byte for byte against MessageToJsonString).
// Add() and Finish() are called from one thread.
class ConnectionsJson {
 public:
  ConnectionsJson();
  ~ConnectionsJson();
  ConnectionsJson(const ConnectionsJson&) = delete;
  ConnectionsJson& operator=(const ConnectionsJson&) = delete;

  // Takes the batch's connections (the batch is left without them).
  void Add(v1::ConnectionBatch* batch);
  // Waits for the worker; returns the elements of the JSON array (without the
  // brackets) in pieces to be written one after the other (no piece when
  // there were no connections). Pieces avoid copying 100 MB documents around.
  absl::StatusOr<std::vector<std::string>> Finish();
  uint64_t count() const { return count_; }

 private:
  void Work();

  static constexpr int kWorkers = 2;

  std::mutex mu_;
  std::condition_variable cv_;
  // Batches waiting, with their position in the output.
  std::deque<std::pair<size_t, v1::ConnectionBatch>> queue_;  // guarded by mu_
  bool done_ = false;                                         // guarded by mu_
  std::vector<std::string> pieces_;  // by position; guarded by mu_
  absl::Status status_;              // guarded by mu_
  size_t next_ = 0;                  // position of the next batch (Add's thread)
  uint64_t count_ = 0;
  std::vector<std::thread> workers_;
};

// The JSON of `host` with `connections` (ConnectionsJson::Finish) as its
// connections field, as pieces; joined, they equal ToJson of the host with
// those connections.
absl::StatusOr<std::vector<std::string>> HostConnectionsJson(const v1::HostConnections& host,
                                                             std::vector<std::string> connections);

}  // namespace tcbscope

#endif  // TCBSCOPE_CLIENT_RENDER_JSON_OUTPUT_H_
