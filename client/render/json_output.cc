#include "client/render/json_output.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

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
  if (fwrite(json->data(), 1, json->size(), out) != json->size()) return absl::UnavailableError("write failed");
  return absl::OkStatus();
}

ConnectionsJson::ConnectionsJson() {
  for (int i = 0; i < kWorkers; ++i) workers_.emplace_back([this] { Work(); });
}

ConnectionsJson::~ConnectionsJson() {
  {
    std::lock_guard<std::mutex> l(mu_);
    done_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
}

void ConnectionsJson::Add(v1::ConnectionBatch* batch) {
  if (batch->connections_size() == 0) return;
  count_ += batch->connections_size();
  v1::ConnectionBatch only;
  only.mutable_connections()->Swap(batch->mutable_connections());
  {
    std::lock_guard<std::mutex> l(mu_);
    queue_.emplace_back(next_++, std::move(only));
  }
  cv_.notify_one();
}

void ConnectionsJson::Work() {
  // A batch holding only connections renders as {"connections":[...]}.
  static constexpr absl::string_view kHead = "{\"connections\":[";
  static constexpr absl::string_view kTail = "]}";
  while (true) {
    std::pair<size_t, v1::ConnectionBatch> item;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return done_ || !queue_.empty(); });
      if (queue_.empty()) return;
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    absl::StatusOr<std::string> json = ToJson(item.second);
    if (json.ok() && (!absl::StartsWith(*json, kHead) || !absl::EndsWith(*json, kTail))) {
      json = absl::InternalError("JSON output: unexpected batch rendering");
    }
    if (json.ok()) {
      // Keep the batch's text in place; only its head and tail are cut (a
      // separating comma takes the place of the head's last character).
      json->resize(json->size() - kTail.size());
      if (item.first == 0) {
        json->erase(0, kHead.size());
      } else {
        json->erase(0, kHead.size() - 1);
        (*json)[0] = ',';
      }
    }
    std::lock_guard<std::mutex> l(mu_);
    if (!json.ok()) {
      status_ = json.status();
      continue;
    }
    if (pieces_.size() <= item.first) pieces_.resize(item.first + 1);
    pieces_[item.first] = *std::move(json);
  }
}

absl::StatusOr<std::vector<std::string>> ConnectionsJson::Finish() {
  {
    std::lock_guard<std::mutex> l(mu_);
    done_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
  if (!status_.ok()) return status_;
  return std::move(pieces_);
}

absl::StatusOr<std::vector<std::string>> HostConnectionsJson(const v1::HostConnections& host,
                                                             std::vector<std::string> connections) {
  // Fields before `connections` (host, error) and after it (captured_at,
  // dump_interrupted) render separately; json_util prints fields in number
  // order, so the three parts join into exactly its rendering of the whole.
  v1::HostConnections before, after;
  before.set_host(host.host());
  if (host.has_error()) *before.mutable_error() = host.error();
  if (host.has_captured_at()) *after.mutable_captured_at() = host.captured_at();
  after.set_dump_interrupted(host.dump_interrupted());
  absl::StatusOr<std::string> a = ToJson(before);
  if (!a.ok()) return a.status();
  absl::StatusOr<std::string> b = ToJson(after);
  if (!b.ok()) return b.status();
  std::vector<std::string> out;
  out.reserve(connections.size() + 2);
  std::string head = a->substr(0, a->size() - 1);  // without its closing brace
  if (!connections.empty()) {
    absl::StrAppend(&head, head.size() > 1 ? "," : "", "\"connections\":[");
    out.push_back(std::move(head));
    for (std::string& piece : connections) out.push_back(std::move(piece));
    head = "]";
  }
  const absl::string_view rest = absl::string_view(*b).substr(1, b->size() - 2);  // without braces
  if (!rest.empty()) absl::StrAppend(&head, head.size() > 1 || !connections.empty() ? "," : "", rest);
  head.push_back('}');
  out.push_back(std::move(head));
  return out;
}

}  // namespace tcbscope
