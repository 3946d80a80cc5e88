// The streamed JSON rendering must equal json_util's rendering of the whole
// message, byte for byte, whatever the batching.
#include "client/render/json_output.h"

#include <functional>

#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace tcbscope {
namespace {

v1::Connection Conn(int i) {
  v1::Connection c;
  c.set_family(i % 3 ? v1::FAMILY_INET : v1::FAMILY_INET6);
  c.set_state(static_cast<v1::TcpState>(1 + i % 11));
  c.mutable_local()->set_address(i % 3 ? "198.51.100.1" : "2001:db8::1");
  c.mutable_local()->set_port(1000 + i);
  c.mutable_remote()->set_address("198.51.100.\"2");  // escaping must survive too
  c.mutable_remote()->set_port(i % 7);
  c.set_recv_q(i);
  if (i % 2) c.mutable_tcp_info()->set_rtt_us(i * 3);
  return c;
}

std::string Streamed(const v1::HostConnections& full, int batch_size) {
  ConnectionsJson json;
  client::EncodedConnectionBatch batch;
  for (int i = 0; i < full.connections_size(); ++i) {
    batch.add_connections(full.connections(i).SerializeAsString());
    if (batch.connections_size() == batch_size) {
      json.Add(&batch);
      EXPECT_EQ(batch.connections_size(), 0);
    }
  }
  json.Add(&batch);
  absl::StatusOr<JsonText> conns = json.Finish();
  EXPECT_TRUE(conns.ok());
  EXPECT_EQ(json.count(), static_cast<uint64_t>(full.connections_size()));
  v1::HostConnections shell = full;
  shell.clear_connections();
  absl::StatusOr<JsonText> text = HostConnectionsJson(shell, *std::move(conns));
  EXPECT_TRUE(text.ok());
  return text->ToString();
}

// The same, with the connections handed to a sink as they are rendered
// (StreamTo) and the host's head and tail around them. `error` is set only
// at the end, as a host that fails mid-stream would be.
std::string StreamedOut(const v1::HostConnections& full, int batch_size, const v1::HostError* error = nullptr) {
  v1::HostConnections shell = full;
  shell.clear_connections();
  shell.clear_error();
  absl::StatusOr<std::string> head = StreamedHostHead(shell);
  EXPECT_TRUE(head.ok());
  std::string sunk;
  int calls = 0;
  {
    ConnectionsJson json;
    json.StreamTo([&](JsonText t) {
      sunk += t.ToString();
      ++calls;
    });
    client::EncodedConnectionBatch batch;
    for (int i = 0; i < full.connections_size(); ++i) {
      batch.add_connections(full.connections(i).SerializeAsString());
      if (batch.connections_size() == batch_size) json.Add(&batch);
    }
    json.Add(&batch);
    absl::StatusOr<JsonText> rest = json.Finish();
    EXPECT_TRUE(rest.ok() && rest->empty()) << "everything went to the sink";
    EXPECT_EQ(json.streamed(), full.connections_size() > 0);
  }
  EXPECT_EQ(calls, (full.connections_size() + batch_size - 1) / batch_size);
  if (error != nullptr) *shell.mutable_error() = *error;
  absl::StatusOr<std::string> tail = StreamedHostTail(shell);
  EXPECT_TRUE(tail.ok());
  return *head + sunk + *tail;
}

// The client reads ListConnections batches through its encoded view; it must
// stay the API message's wire format.
TEST(JsonOutputTest, EncodedBatchMatchesTheApi) {
  const google::protobuf::Descriptor* api = v1::ConnectionBatch::descriptor();
  const google::protobuf::Descriptor* view = client::EncodedConnectionBatch::descriptor();
  ASSERT_EQ(api->field_count(), view->field_count());
  for (int i = 0; i < api->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = api->field(i);
    const google::protobuf::FieldDescriptor* g = view->FindFieldByNumber(f->number());
    ASSERT_NE(g, nullptr) << f->name();
    EXPECT_EQ(f->name(), g->name());
    EXPECT_EQ(f->is_repeated(), g->is_repeated()) << f->name();
    if (f->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE && f->message_type() == v1::Connection::descriptor()) {
      EXPECT_EQ(g->type(), google::protobuf::FieldDescriptor::TYPE_BYTES) << f->name();
    } else {
      EXPECT_EQ(f->type(), g->type()) << f->name();
      if (f->message_type() != nullptr) {
        EXPECT_EQ(f->message_type(), g->message_type()) << f->name();
      }
    }
  }
  // And a batch written as the API message reads back through the view.
  v1::ConnectionBatch b;
  *b.add_connections() = Conn(1);
  *b.add_connections() = Conn(3);
  b.mutable_captured_at()->set_seconds(7);
  b.set_last(true);
  b.set_total(2);
  client::EncodedConnectionBatch e;
  ASSERT_TRUE(e.ParseFromString(b.SerializeAsString()));
  ASSERT_EQ(e.connections_size(), 2);
  EXPECT_EQ(e.connections(1), Conn(3).SerializeAsString());
  EXPECT_EQ(e.captured_at().seconds(), 7);
  EXPECT_TRUE(e.last());
  EXPECT_EQ(e.total(), 2u);
}

TEST(JsonOutputTest, TextPieces) {
  JsonText t;
  EXPECT_TRUE(t.empty());
  EXPECT_TRUE(t.StartsWith(""));
  EXPECT_FALSE(t.EndsWith("x"));
  t.Append("ab");
  JsonText u;
  u.Append("cd");
  u.Append(std::string(300, 'e'));  // past the first piece's room
  u.Append("fg");
  t.Append(std::move(u));
  EXPECT_EQ(t.size(), 306u);
  EXPECT_TRUE(t.StartsWith("abcde"));
  EXPECT_TRUE(t.EndsWith("eefg"));
  EXPECT_FALSE(t.EndsWith("efh"));
  t.RemovePrefix(3);  // across the first piece
  t.RemoveSuffix(2);
  t.front() = 'X';
  EXPECT_EQ(t.ToString(), "X" + std::string(300, 'e'));
}

// Kept until Finish, or handed to a sink as rendered: either way the text
// is json_util's rendering of the whole host.
TEST(JsonOutputTest, StreamedEqualsWhole) {
  for (int n : {0, 1, 999, 1000, 1001, 2500}) {
    for (int with_time : {0, 1}) {
      v1::HostConnections h;
      h.set_host("198.51.100.1:7411");
      for (int i = 0; i < n; ++i) *h.add_connections() = Conn(i);
      if (with_time) {
        h.mutable_captured_at()->set_seconds(1800000000);
        h.mutable_captured_at()->set_nanos(5000);
        h.set_dump_interrupted(true);
      }
      for (int batch : {1, 7, 1000}) {
        if (n > 1000 && batch < 1000) continue;  // keep the test quick
        EXPECT_EQ(Streamed(h, batch), *ToJson(h)) << "n=" << n << " batch=" << batch << " time=" << with_time;
        // With no connection nothing is sunk, and the host is written whole.
        if (n > 0) {
          EXPECT_EQ(StreamedOut(h, batch), *ToJson(h)) << "n=" << n << " batch=" << batch;
        }
      }
    }
  }
}

TEST(JsonOutputTest, AnErrorAfterStreamingFollowsTheConnectionsAndReadsBack) {
  v1::HostConnections h;
  h.set_host("198.51.100.1:7411");
  for (int i = 0; i < 30; ++i) *h.add_connections() = Conn(i);
  v1::HostError error;
  error.set_code("UNAVAILABLE");
  error.set_message("the agent went away");
  const std::string text = StreamedOut(h, 7, &error);
  EXPECT_LT(text.find("\"connections\""), text.find("\"error\""));
  v1::HostConnections back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(text, &back).ok()) << text;
  *h.mutable_error() = error;
  EXPECT_EQ(back.SerializeAsString(), h.SerializeAsString());
}

TEST(JsonOutputTest, ErrorHostHasNoConnections) {
  v1::HostConnections h;
  h.set_host("[2001:db8::2]:7411");
  h.mutable_error()->set_code("UNAVAILABLE");
  h.mutable_error()->set_message("unreachable: \"refused\"");
  EXPECT_EQ(Streamed(h, 10), *ToJson(h));
}

std::string Printed(const std::function<absl::Status(FILE*)>& print) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  EXPECT_TRUE(print(f).ok());
  fclose(f);
  std::string out(buf, len);
  free(buf);
  return out;
}

void FillCorrelation(int pairs, v1::CorrelateResult* r) {
  r->set_host_a("198.51.100.1:7411");
  r->set_host_b("198.51.100.2:7411");
  for (int i = 0; i < pairs; ++i) {
    v1::ConnectionPair* p = r->add_pairs();
    *p->mutable_a() = Conn(i);
    *p->mutable_b() = Conn(i + 1);
    p->set_matched_by("addresses");
    p->add_directions()->set_direction("A->B");
    if (i % 5 == 0) p->add_findings()->set_code("ZERO_WINDOW");
  }
  r->add_only_a()->mutable_connection()->set_state(v1::TCP_STATE_SYN_SENT);
  r->set_skew_ms(-2.5);
  r->set_findings_warning(static_cast<uint32_t>((pairs + 4) / 5));
}

TEST(JsonOutputTest, InPiecesEqualsWholeAndLeavesTheMessageAsItWas) {
  google::protobuf::Arena arena;
  for (bool on_arena : {false, true}) {
    for (int pairs : {0, 1, 999, 1000, 1001, 2500}) {
      v1::CorrelateResult heap;
      v1::CorrelateResult* r = on_arena ? google::protobuf::Arena::CreateMessage<v1::CorrelateResult>(&arena) : &heap;
      FillCorrelation(pairs, r);
      const std::string before = r->SerializeAsString();
      const std::string whole = Printed([&](FILE* f) { return PrintJson(*r, f); });
      for (int group : {1, 7, 1000}) {
        if (pairs > 1000 && group < 1000) continue;
        EXPECT_EQ(Printed([&](FILE* f) { return PrintJsonInPieces(r, f, group); }), whole)
            << "pairs=" << pairs << " group=" << group << " arena=" << on_arena;
        EXPECT_EQ(r->SerializeAsString(), before) << "pairs=" << pairs << " group=" << group;
      }
    }
  }
  v1::CorrelateResult empty;
  EXPECT_EQ(Printed([&](FILE* f) { return PrintJsonInPieces(&empty, f); }), "{}\n");
}

}  // namespace
}  // namespace tcbscope
