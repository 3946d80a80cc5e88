// The streamed JSON rendering must equal json_util's rendering of the whole
// message, byte for byte, whatever the batching.
#include "client/render/json_output.h"

#include "absl/strings/str_join.h"
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
  v1::ConnectionBatch batch;
  for (int i = 0; i < full.connections_size(); ++i) {
    *batch.add_connections() = full.connections(i);
    if (batch.connections_size() == batch_size) {
      json.Add(&batch);
      EXPECT_EQ(batch.connections_size(), 0);
    }
  }
  json.Add(&batch);
  absl::StatusOr<std::vector<std::string>> conns = json.Finish();
  EXPECT_TRUE(conns.ok());
  v1::HostConnections shell = full;
  shell.clear_connections();
  absl::StatusOr<std::vector<std::string>> pieces = HostConnectionsJson(shell, *std::move(conns));
  EXPECT_TRUE(pieces.ok());
  return absl::StrJoin(*pieces, "");
}

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
      }
    }
  }
}

TEST(JsonOutputTest, ErrorHostHasNoConnections) {
  v1::HostConnections h;
  h.set_host("[2001:db8::2]:7411");
  h.mutable_error()->set_code("UNAVAILABLE");
  h.mutable_error()->set_message("unreachable: \"refused\"");
  EXPECT_EQ(Streamed(h, 10), *ToJson(h));
}

}  // namespace
}  // namespace tcbscope
