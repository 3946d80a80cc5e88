#include "client/render/json_output.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/type_resolver_util.h"

namespace tcbscope {

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) return absl::InternalError(absl::StrCat("JSON output: ", status.ToString()));
  return json;
}

absl::Status PrintJson(const google::protobuf::Message& message, FILE* out) {
  absl::StatusOr<std::string> json = ToJson(message);
  if (!json.ok()) return json.status();
  json->push_back('\n');
  fwrite(json->data(), 1, json->size(), out);  // a failure stays in the stream's error flag
  return absl::OkStatus();
}

namespace {

// json_util's rendering of `message` without its enclosing braces: its set
// fields, comma-separated, as they appear inside the whole message's text
// (json_util writes fields in number order). Empty when none is set.
absl::StatusOr<std::string> JsonFields(const google::protobuf::Message& message) {
  absl::StatusOr<std::string> j = ToJson(message);
  if (!j.ok()) return j.status();
  return j->substr(1, j->size() - 2);
}

// Appends `fields` (JsonFields) to a message's text, after a comma unless
// nothing is there yet but its opening brace or bracket.
void AppendFields(absl::string_view fields, std::string* out) {
  if (fields.empty()) return;
  if (!out->empty() && out->back() != '{' && out->back() != '[') out->push_back(',');
  out->append(fields.data(), fields.size());
}

}  // namespace

absl::Status PrintJsonInPieces(google::protobuf::Message* message, FILE* out, int group) {
  using google::protobuf::FieldDescriptor;
  using google::protobuf::Message;
  const google::protobuf::Reflection* r = message->GetReflection();
  google::protobuf::Arena* arena = message->GetArena();
  // On the message's arena (or the heap, as it is): moving between the two
  // is then a pointer move.
  Message* part = message->New(arena);
  std::unique_ptr<Message> owned(arena == nullptr ? part : nullptr);
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(*message, &fields);  // set fields, in number order, as json_util writes them
  // A failed write stays in the stream's error flag (json_output.h).
  auto write = [&](absl::string_view s) { fwrite(s.data(), 1, s.size(), out); };
  absl::Status status;
  write("{");
  for (size_t i = 0; i < fields.size() && status.ok(); ++i) {
    const FieldDescriptor* f = fields[i];
    if (i > 0) write(",");
    const bool grouped =
        f->is_repeated() && f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && r->FieldSize(*message, f) > group;
    if (!grouped) {
      r->SwapFields(message, part, {f});
      absl::StatusOr<std::string> j = JsonFields(*part);
      r->SwapFields(message, part, {f});
      if (!j.ok()) {
        status = j.status();
        break;
      }
      write(*j);
      continue;
    }
    // Out of the message (last first, kept in order), into `part` a group at
    // a time, and back at the end.
    std::vector<Message*> elements(static_cast<size_t>(r->FieldSize(*message, f)));
    for (size_t k = elements.size(); k-- > 0;) elements[k] = r->UnsafeArenaReleaseLast(message, f);
    for (size_t at = 0; at < elements.size() && status.ok(); at += static_cast<size_t>(group)) {
      const size_t n = std::min(elements.size() - at, static_cast<size_t>(group));
      for (size_t k = 0; k < n; ++k) r->UnsafeArenaAddAllocatedMessage(part, f, elements[at + k]);
      absl::StatusOr<std::string> j = ToJson(*part);
      for (size_t k = n; k-- > 0;) elements[at + k] = r->UnsafeArenaReleaseLast(part, f);
      if (!j.ok()) {
        status = j.status();
        break;
      }
      // {"name":[a,b]}: the first group keeps the head, the last the "]",
      // the ones between only their elements.
      absl::string_view text(*j);
      text.remove_suffix(2);  // "]}"
      if (at > 0) {
        text.remove_prefix(text.find('[') + 1);
        write(",");
      } else {
        text.remove_prefix(1);  // "{"
      }
      write(text);
    }
    for (Message* m : elements) r->UnsafeArenaAddAllocatedMessage(message, f, m);
    write("]");
  }
  write("}\n");
  return status;
}

namespace {

// json_util renders a ConnectionBatch holding only connections as
// {"connections":[...]}.
constexpr absl::string_view kBatchHead = "{\"connections\":[";
constexpr absl::string_view kBatchTail = "]}";

google::protobuf::util::TypeResolver* GeneratedTypes() {
  // What MessageToJsonString uses for generated messages; thread-safe.
  static google::protobuf::util::TypeResolver* const resolver = google::protobuf::util::NewTypeResolverForDescriptorPool(
      "type.googleapis.com", google::protobuf::DescriptorPool::generated_pool());
  return resolver;
}

}  // namespace

// Hands json_util's output stream whole chunks of a JsonText, uninitialised
// (a string would be zero-filled and regrown). The first chunk is sized for
// the text expected, the next ones double, up to 1 MiB: a batch of one
// connection takes a few hundred bytes, not a megabyte.
class JsonTextOutput : public google::protobuf::io::ZeroCopyOutputStream {
 public:
  JsonTextOutput(JsonText* text, size_t expected)
      : text_(text), next_(std::clamp<size_t>(expected, 256, kMaxChunk)) {}
  bool Next(void** data, int* size) override {
    JsonText::Chunk c = JsonText::NewChunk(next_);
    next_ = std::min(next_ * 2, kMaxChunk);
    c.end = c.capacity;
    *data = c.data.get();
    *size = static_cast<int>(c.capacity);
    bytes_ += static_cast<int64_t>(c.capacity);
    text_->chunks_.push_back(std::move(c));
    return true;
  }
  void BackUp(int count) override {
    text_->chunks_.back().end -= static_cast<size_t>(count);
    bytes_ -= count;
  }
  int64_t ByteCount() const override { return bytes_; }

 private:
  static constexpr size_t kMaxChunk = 1 << 20;
  JsonText* text_;
  size_t next_;
  int64_t bytes_ = 0;
};

JsonText::Chunk JsonText::NewChunk(size_t capacity) {
  Chunk c;
  c.data.reset(new char[capacity]);
  c.capacity = capacity;
  return c;
}

void JsonText::Append(absl::string_view s) {
  if (s.empty()) return;
  if (chunks_.empty() || chunks_.back().capacity - chunks_.back().end < s.size()) {
    chunks_.push_back(NewChunk(std::max<size_t>(s.size(), 256)));
  }
  Chunk& c = chunks_.back();
  memcpy(c.data.get() + c.end, s.data(), s.size());
  c.end += s.size();
}

void JsonText::Append(JsonText&& other) {
  for (Chunk& c : other.chunks_) {
    if (c.begin < c.end) chunks_.push_back(std::move(c));
  }
  other.chunks_.clear();
}

void JsonText::RemovePrefix(size_t n) {
  for (Chunk& c : chunks_) {
    const size_t take = std::min(n, c.end - c.begin);
    c.begin += take;
    n -= take;
    if (n == 0) return;
  }
}

void JsonText::RemoveSuffix(size_t n) {
  for (auto it = chunks_.rbegin(); it != chunks_.rend() && n > 0; ++it) {
    const size_t take = std::min(n, it->end - it->begin);
    it->end -= take;
    n -= take;
  }
}

char& JsonText::front() {
  for (Chunk& c : chunks_) {
    if (c.begin < c.end) return c.data[c.begin];
  }
  return chunks_.front().data[0];  // REQUIRES was not met
}

bool JsonText::StartsWith(absl::string_view s) const {
  for (const Chunk& c : chunks_) {
    if (s.empty()) return true;
    const size_t n = std::min(s.size(), c.end - c.begin);
    if (absl::string_view(c.data.get() + c.begin, n) != s.substr(0, n)) return false;
    s.remove_prefix(n);
  }
  return s.empty();
}

bool JsonText::EndsWith(absl::string_view s) const {
  for (auto it = chunks_.rbegin(); it != chunks_.rend(); ++it) {
    if (s.empty()) return true;
    const size_t n = std::min(s.size(), it->end - it->begin);
    if (absl::string_view(it->data.get() + it->end - n, n) != s.substr(s.size() - n)) return false;
    s.remove_suffix(n);
  }
  return s.empty();
}

size_t JsonText::size() const {
  size_t n = 0;
  for (const Chunk& c : chunks_) n += c.end - c.begin;
  return n;
}

void JsonText::WriteTo(FILE* out) const {
  for (const Chunk& c : chunks_) {
    const size_t n = c.end - c.begin;
    if (n > 0 && fwrite(c.data.get() + c.begin, 1, n, out) != n) return;
  }
}

std::string JsonText::ToString() const {
  std::string s;
  s.reserve(size());
  for (const Chunk& c : chunks_) s.append(c.data.get() + c.begin, c.end - c.begin);
  return s;
}

JsonRenderPool::JsonRenderPool() {
  for (int i = 0; i < kWorkers; ++i) workers_.emplace_back([this] { Work(); });
}

JsonRenderPool::~JsonRenderPool() {
  {
    std::lock_guard<std::mutex> l(mu_);
    done_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void JsonRenderPool::Submit(Task task) {
  {
    std::lock_guard<std::mutex> l(mu_);
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void JsonRenderPool::Work() {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  static const std::string kBatchUrl =
      absl::StrCat("type.googleapis.com/", v1::ConnectionBatch::descriptor()->full_name());
  std::string binary;
  while (true) {
    Task task;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return done_ || !queue_.empty(); });
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    // The batch re-encoded with its connections alone (field 1), which is
    // what json_util would be given for such a message.
    binary.clear();
    for (const std::string& c : task.connections) {
      uint8_t head[1 + 5];
      head[0] = 0x0a;  // field 1, length-delimited
      const uint8_t* end =
          google::protobuf::io::CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(c.size()), head + 1);
      binary.append(reinterpret_cast<const char*>(head), static_cast<size_t>(end - head));
      binary.append(c);
    }
    task.connections.Clear();
    JsonText text;
    absl::Status status;
    {
      // The text is about four times the binary (field names, quoted 64-bit
      // numbers); a short first guess only costs another chunk.
      JsonTextOutput out(&text, 4 * binary.size() + 64);
      google::protobuf::io::ArrayInputStream in(binary.data(), static_cast<int>(binary.size()));
      auto s = google::protobuf::util::BinaryToJsonStream(GeneratedTypes(), kBatchUrl, &in, &out, options);
      if (!s.ok()) status = absl::InternalError(absl::StrCat("JSON output: ", s.ToString()));
    }
    if (status.ok() && (text.size() < kBatchHead.size() + kBatchTail.size() || !text.StartsWith(kBatchHead) ||
                        !text.EndsWith(kBatchTail))) {
      status = absl::InternalError("JSON output: unexpected batch rendering");
    }
    if (status.ok()) {
      // Only the head and tail are cut; a separating comma takes the place
      // of the head's last character.
      text.RemoveSuffix(kBatchTail.size());
      if (task.position == 0) {
        text.RemovePrefix(kBatchHead.size());
      } else {
        text.RemovePrefix(kBatchHead.size() - 1);
        text.front() = ',';
      }
    }
    if (status.ok()) {
      task.owner->Rendered(task.position, std::move(text));
    } else {
      task.owner->Rendered(task.position, status);
    }
  }
}

ConnectionsJson::ConnectionsJson(JsonRenderPool* pool) : pool_(pool) {
  if (pool_ == nullptr) {
    own_pool_ = std::make_unique<JsonRenderPool>();
    pool_ = own_pool_.get();
  }
}

ConnectionsJson::~ConnectionsJson() { WaitForPending(); }

void ConnectionsJson::StreamTo(std::function<void(JsonText)> sink) { sink_ = std::move(sink); }

bool ConnectionsJson::streamed() {
  std::lock_guard<std::mutex> l(mu_);
  return next_out_ > 0;
}

void ConnectionsJson::Add(client::EncodedConnectionBatch* batch) {
  if (batch->connections_size() == 0) return;
  count_ += batch->connections_size();
  JsonRenderPool::Task task{this, next_++, {}};
  task.connections.Swap(batch->mutable_connections());
  {
    std::lock_guard<std::mutex> l(mu_);
    ++pending_;
  }
  pool_->Submit(std::move(task));
}

void ConnectionsJson::Rendered(size_t position, absl::StatusOr<JsonText> text) {
  std::lock_guard<std::mutex> l(mu_);
  if (text.ok()) {
    if (pieces_.size() <= position) pieces_.resize(position + 1);
    pieces_[position] = *std::move(text);
  } else {
    status_ = text.status();
  }
  if (sink_ && status_.ok()) {
    // Written in order: this piece and any later ones that waited for it.
    if (ready_.size() <= position) ready_.resize(position + 1);
    ready_[position] = true;
    while (next_out_ < ready_.size() && ready_[next_out_]) {
      sink_(std::move(pieces_[next_out_]));
      pieces_[next_out_] = JsonText();
      ++next_out_;
    }
  }
  // Notified under the lock: once pending_ is 0 the waiter may destroy this.
  if (--pending_ == 0) cv_.notify_all();
}

void ConnectionsJson::WaitForPending() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return pending_ == 0; });
}

absl::StatusOr<JsonText> ConnectionsJson::Finish() {
  WaitForPending();
  std::lock_guard<std::mutex> l(mu_);
  if (!status_.ok()) return status_;
  JsonText all;
  for (JsonText& t : pieces_) all.Append(std::move(t));
  pieces_.clear();
  return all;
}

namespace {

// `host`'s fields other than connections, as JsonFields: those numbered
// before it (host, error) and after it (captured_at, dump_interrupted).
struct FieldsAroundConnections {
  std::string before, after;
};

absl::StatusOr<FieldsAroundConnections> AroundConnections(const v1::HostConnections& host) {
  v1::HostConnections before, after;
  before.set_host(host.host());
  if (host.has_error()) *before.mutable_error() = host.error();
  if (host.has_captured_at()) *after.mutable_captured_at() = host.captured_at();
  after.set_dump_interrupted(host.dump_interrupted());
  absl::StatusOr<std::string> b = JsonFields(before);
  if (!b.ok()) return b.status();
  absl::StatusOr<std::string> a = JsonFields(after);
  if (!a.ok()) return a.status();
  return FieldsAroundConnections{*std::move(b), *std::move(a)};
}

}  // namespace

absl::StatusOr<std::string> StreamedHostHead(const v1::HostConnections& host) {
  v1::HostConnections named;
  named.set_host(host.host());
  absl::StatusOr<std::string> fields = JsonFields(named);
  if (!fields.ok()) return fields.status();
  std::string head = "{";
  AppendFields(*fields, &head);
  AppendFields("\"connections\":[", &head);
  return head;
}

absl::StatusOr<std::string> StreamedHostTail(const v1::HostConnections& host) {
  v1::HostConnections error;
  if (host.has_error()) *error.mutable_error() = host.error();
  absl::StatusOr<std::string> error_fields = JsonFields(error);
  if (!error_fields.ok()) return error_fields.status();
  absl::StatusOr<FieldsAroundConnections> around = AroundConnections(host);
  if (!around.ok()) return around.status();
  std::string tail = "]";
  AppendFields(*error_fields, &tail);
  AppendFields(around->after, &tail);
  tail.push_back('}');
  return tail;
}

absl::StatusOr<JsonText> HostConnectionsJson(const v1::HostConnections& host, JsonText connections) {
  // The fields before and after `connections` render separately and join
  // around it into exactly json_util's rendering of the whole.
  absl::StatusOr<FieldsAroundConnections> around = AroundConnections(host);
  if (!around.ok()) return around.status();
  std::string text = "{";
  AppendFields(around->before, &text);
  JsonText out;
  if (!connections.empty()) {
    AppendFields("\"connections\":[", &text);
    out.Append(text);
    out.Append(std::move(connections));
    text = "]";
  }
  AppendFields(around->after, &text);
  text.push_back('}');
  out.Append(text);
  return out;
}

}  // namespace tcbscope
