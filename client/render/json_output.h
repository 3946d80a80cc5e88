// JSON output: the proto's own JSON mapping (protobuf json_util), field names
// as in the .proto, one document per command.
#ifndef TCBSCOPE_CLIENT_RENDER_JSON_OUTPUT_H_
#define TCBSCOPE_CLIENT_RENDER_JSON_OUTPUT_H_

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "tcbscope/client/encoded_batch.pb.h"
#include "tcbscope/v1/results.pb.h"

namespace tcbscope {

// `message` as json_util renders it (compact, proto field names).
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message);

// Writes `message` as one JSON document and a newline. An error means the
// message could not be rendered. A failed write is not returned: it stays in
// `out`'s error flag, which RunCli checks once for every command.
absl::Status PrintJson(const google::protobuf::Message& message, FILE* out);

// Writes what PrintJson writes, byte for byte, in pieces: each top-level
// field is rendered alone, and a repeated message field in groups of
// `group` elements, each piece written as soon as it is made. json_util
// otherwise holds the whole message's binary form and its whole text at
// once: for a correlation of 2 x 100k connections that was seconds of page
// faults (docs/performance.md). The message is borrowed, not changed: its
// fields are moved out and back by pointer. Errors as PrintJson's.
// REQUIRES: group > 0.
absl::Status PrintJsonInPieces(google::protobuf::Message* message, FILE* out, int group = 1000);

// A JSON text held in pieces and written out in order. The document of a
// 100k-connection `list -i` is about 100 MB: it is never joined into one
// string, and its pieces are filled in place (no regrowth, no copies).
// Not thread-safe; movable.
class JsonText {
 public:
  JsonText() = default;
  JsonText(JsonText&&) = default;
  JsonText& operator=(JsonText&&) = default;

  void Append(absl::string_view s);  // copied
  void Append(JsonText&& other);     // moved
  // REQUIRES: n <= size().
  void RemovePrefix(size_t n);
  void RemoveSuffix(size_t n);
  // REQUIRES: size() > 0.
  char& front();
  bool StartsWith(absl::string_view s) const;
  bool EndsWith(absl::string_view s) const;
  size_t size() const;
  bool empty() const { return size() == 0; }
  // Stops at the first failed write; the failure stays in the stream's
  // error flag, which RunCli reports.
  void WriteTo(FILE* out) const;
  std::string ToString() const;  // joined; for tests and small texts

 private:
  friend class JsonTextOutput;
  struct Chunk {
    std::unique_ptr<char[]> data;  // uninitialised: nothing is zero-filled
    size_t begin = 0, end = 0, capacity = 0;
  };
  static Chunk NewChunk(size_t capacity);
  std::vector<Chunk> chunks_;
};

class ConnectionsJson;

// The threads that render batches to JSON for every host of one command: two,
// however many hosts stream at once. Thread-safe. Must outlive the
// ConnectionsJson that use it.
class JsonRenderPool {
 public:
  JsonRenderPool();
  ~JsonRenderPool();
  JsonRenderPool(const JsonRenderPool&) = delete;
  JsonRenderPool& operator=(const JsonRenderPool&) = delete;

 private:
  friend class ConnectionsJson;
  struct Task {
    ConnectionsJson* owner;
    size_t position;  // of the batch in the owner's output
    google::protobuf::RepeatedPtrField<std::string> connections;
  };
  void Submit(Task task);
  void Work();

  static constexpr int kWorkers = 2;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;  // guarded by mu_
  bool done_ = false;       // guarded by mu_
  std::vector<std::thread> workers_;
};

// Renders a host's connections to JSON while they are still arriving: each
// batch is handed over as it comes off the wire, still encoded, and rendered
// by json_util on a pool's thread, so the JSON work overlaps the agent's dump
// instead of following it, and the connections are never parsed into
// messages. The text is json_util's own rendering of each batch, joined into
// the array json_util would print for the whole repeated field (tests check
// the result byte for byte against MessageToJsonString).
// Add() and Finish() are never called concurrently (one stream's batches
// come one at a time, from whichever gRPC thread reads them).
class ConnectionsJson {
 public:
  // Renders on `pool`'s threads; without one, on a pool of its own.
  explicit ConnectionsJson(JsonRenderPool* pool = nullptr);
  // Waits for its batches still being rendered.
  ~ConnectionsJson();
  ConnectionsJson(const ConnectionsJson&) = delete;
  ConnectionsJson& operator=(const ConnectionsJson&) = delete;

  // Hands each batch's text to `sink`, in order, as soon as it and every
  // batch before it are rendered, instead of keeping it for Finish. The sink
  // runs on the rendering threads, one call at a time. The ~100 MB document
  // of a 100k listing is then never held whole (docs/performance.md).
  // REQUIRES: called before the first Add.
  void StreamTo(std::function<void(JsonText)> sink);
  // Takes the batch's connections (the batch is left without them).
  void Add(client::EncodedConnectionBatch* batch);
  // Waits for this host's batches; returns the elements of the JSON array
  // (without the brackets; empty when there were no connections, or when
  // they all went to the sink).
  absl::StatusOr<JsonText> Finish();
  uint64_t count() const { return count_; }
  // After Finish: whether any text went to the sink.
  bool streamed();

 private:
  friend class JsonRenderPool;
  // A pool thread's result for the batch at `position`.
  void Rendered(size_t position, absl::StatusOr<JsonText> text);
  void WaitForPending();

  std::unique_ptr<JsonRenderPool> own_pool_;
  JsonRenderPool* pool_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t pending_ = 0;             // batches submitted, not yet rendered; guarded by mu_
  std::vector<JsonText> pieces_;   // by position; guarded by mu_
  std::function<void(JsonText)> sink_;
  std::vector<bool> ready_;        // by position, when streaming; guarded by mu_
  size_t next_out_ = 0;            // the next position the sink gets; guarded by mu_
  absl::Status status_;            // guarded by mu_
  size_t next_ = 0;                // position of the next batch (Add's thread)
  uint64_t count_ = 0;
};

// The JSON of `host` with `connections` (ConnectionsJson::Finish) as its
// connections field; equals ToJson of the host with those connections.
absl::StatusOr<JsonText> HostConnectionsJson(const v1::HostConnections& host, JsonText connections);

// For a host whose connections went out as they arrived (StreamTo): the text
// before them, {"host":"...","connections":[ and the text after them: "]",
// then error, captured_at and dump_interrupted, and the closing brace.
// Without an error, head + connections + tail is HostConnectionsJson's text.
// An error, known only at the end, follows the connections already written
// (json_util's own order puts it first; a JSON reader takes either).
absl::StatusOr<std::string> StreamedHostHead(const v1::HostConnections& host);
absl::StatusOr<std::string> StreamedHostTail(const v1::HostConnections& host);

}  // namespace tcbscope

#endif  // TCBSCOPE_CLIENT_RENDER_JSON_OUTPUT_H_
