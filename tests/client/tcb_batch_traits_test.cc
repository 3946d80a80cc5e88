// How gRPC's received bytes reach a TcbBatch: whole or in slices; and a
// batch that does not decode, which ends the call at once with its reason.
#include "client/tcb_batch_traits.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "client/agent_client.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace tcbscope {
namespace {

std::string Batch(int connections, bool last = true) {
  v1::ConnectionBatch b;
  for (int i = 0; i < connections; ++i) {
    v1::Connection* c = b.add_connections();
    c->mutable_local()->set_address("198.51.100.1");
    c->mutable_local()->set_port(static_cast<uint32_t>(40000 + i));
    c->mutable_remote()->set_address("198.51.100.2");
    c->mutable_remote()->set_port(7411);
    c->set_state(v1::TCP_STATE_ESTABLISHED);
    c->mutable_tcp_info()->set_rtt_us(static_cast<uint32_t>(i));
  }
  b.set_last(last);
  return b.SerializeAsString();
}

// `wire` cut into slices of `piece` bytes (the last may be shorter).
grpc::ByteBuffer InSlices(const std::string& wire, size_t piece) {
  std::vector<grpc::Slice> slices;
  for (size_t at = 0; at < wire.size(); at += piece) slices.emplace_back(wire.substr(at, piece));
  return grpc::ByteBuffer(slices.data(), slices.size());
}

TEST(TcbBatchTraitsTest, ReadsABatchWholeOrInSlices) {
  const std::string wire = Batch(50);
  for (size_t piece : {wire.size(), size_t{1}, size_t{7}, size_t{100}}) {
    grpc::ByteBuffer buffer = InSlices(wire, piece);
    TcbBatch batch;
    grpc::Status s = grpc::SerializationTraits<TcbBatch>::Deserialize(&buffer, &batch);
    ASSERT_TRUE(s.ok()) << piece << ": " << s.error_message();
    ASSERT_EQ(batch.tcbs().size(), 50u) << piece;
    for (size_t i = 0; i < 50; ++i) {
      EXPECT_EQ(batch.tcbs()[i].local.port, 40000 + i);
      EXPECT_EQ(batch.tcbs()[i].info.rtt_us, i);
    }
    EXPECT_TRUE(batch.last());
    EXPECT_EQ(buffer.Length(), 0u) << "the buffer is consumed";
  }
}

// Not a ConnectionBatch: a connection's field runs past the message's end.
std::string Garbage() { return Batch(3, false) + std::string("\x0a\x7f", 2); }

TEST(TcbBatchTraitsTest, ABatchThatDoesNotDecodeIsReadAndSaysWhy) {
  grpc::ByteBuffer buffer = InSlices(Garbage(), 16);
  TcbBatch batch;
  grpc::Status s = grpc::SerializationTraits<TcbBatch>::Deserialize(&buffer, &batch);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(batch.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(batch.status().message().find("not well-formed"), std::string::npos) << batch.status();
}

// An agent (on loopback) whose ListConnections sends one good batch, one
// that is not a ConnectionBatch, then far more than flow control lets
// through unread, and ends OK.
class GarbageAgent : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    class Stream : public grpc::ServerGenericBidiReactor {
     public:
      Stream() {
        messages_.push_back(Batch(10, false));
        messages_.push_back(Garbage());
        for (int i = 0; i < 300; ++i) messages_.push_back(Batch(1000, i == 299));
        StartRead(&request_);
      }
      void OnReadDone(bool ok) override {
        if (!ok) return Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request"));
        Next();
      }
      void OnWriteDone(bool ok) override {
        if (!ok) return Finish(grpc::Status::CANCELLED);
        Next();
      }
      void OnDone() override { delete this; }

     private:
      void Next() {
        if (next_ == messages_.size()) return Finish(grpc::Status::OK);
        grpc::Slice slice(messages_[next_++]);
        out_ = grpc::ByteBuffer(&slice, 1);
        StartWrite(&out_);
      }
      grpc::ByteBuffer request_, out_;
      std::vector<std::string> messages_;
      size_t next_ = 0;
    };
    return new Stream;
  }
};

TEST(TcbBatchTraitsTest, AnUnreadableBatchEndsTheCallAtOnce) {
  GarbageAgent agent;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterCallbackGenericService(&agent);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ClientOptions options;
  options.timeout = absl::Seconds(20);
  absl::StatusOr<std::unique_ptr<AgentClient>> client =
      AgentClient::Create(HostPort{"127.0.0.1", static_cast<uint16_t>(port)}, options);
  ASSERT_TRUE(client.ok()) << client.status();
  size_t batches = 0, connections = 0;
  v1::HostConnections out;
  const absl::Time start = absl::Now();
  absl::Status s = (*client)->ListConnectionTcbs(v1::ListConnectionsRequest(), &out, [&](TcbBatch* b) {
    ++batches;
    connections += b->tcbs().size();
  });
  EXPECT_LT(absl::Now() - start, absl::Seconds(10)) << "waited on a stream no one reads";
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_NE(s.message().find("a batch from the agent could not be read"), std::string::npos) << s;
  EXPECT_EQ(batches, 1u);
  EXPECT_EQ(connections, 10u);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
}

}  // namespace
}  // namespace tcbscope
