// The agent as a generic gRPC client sees it: health checking, and server
// reflection good enough for grpcurl to list the services, fetch their
// descriptors and call a method knowing nothing but what reflection said.
#include <memory>
#include <string>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "grpc_clients/health_client.grpc.pb.h"
#include "grpc_clients/reflection_client.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "testing/subprocess.h"

namespace tcbscope {
namespace {

namespace refl = grpc::reflection::v1alpha;

class GrpcServicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(agent_.ok()) << agent_.error();
    channel_ = grpc::CreateChannel(agent_.address(), grpc::InsecureChannelCredentials());
  }

  // One request/response exchange on the reflection stream.
  refl::ServerReflectionResponse Ask(const refl::ServerReflectionRequest& req) {
    auto stub = refl::ServerReflection::NewStub(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto stream = stub->ServerReflectionInfo(&ctx);
    EXPECT_TRUE(stream->Write(req));
    stream->WritesDone();
    refl::ServerReflectionResponse resp;
    EXPECT_TRUE(stream->Read(&resp));
    EXPECT_TRUE(stream->Finish().ok());
    return resp;
  }

  testing::AgentProcess agent_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(GrpcServicesTest, HealthServiceSaysServing) {
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  ASSERT_TRUE(stub->Check(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(GrpcServicesTest, ReflectionListsDescribesAndLetsAGenericClientCall) {
  refl::ServerReflectionRequest list;
  list.set_list_services("*");
  refl::ServerReflectionResponse services = Ask(list);
  std::vector<std::string> names;
  for (const auto& s : services.list_services_response().service()) names.push_back(s.name());
  EXPECT_NE(std::find(names.begin(), names.end(), "tcbscope.v1.Inspector"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "grpc.health.v1.Health"), names.end());

  // Descriptors: the file defining Inspector and everything it imports.
  refl::ServerReflectionRequest sym;
  sym.set_file_containing_symbol("tcbscope.v1.Inspector");
  refl::ServerReflectionResponse files = Ask(sym);
  ASSERT_GT(files.file_descriptor_response().file_descriptor_proto_size(), 0);
  google::protobuf::DescriptorPool pool;
  // Imports first: add files until all are in (reflection may send any order).
  std::vector<google::protobuf::FileDescriptorProto> pending;
  for (const std::string& bytes : files.file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto fdp;
    ASSERT_TRUE(fdp.ParseFromString(bytes));
    pending.push_back(fdp);
  }
  for (int round = 0; round < 5 && !pending.empty(); ++round) {
    std::vector<google::protobuf::FileDescriptorProto> later;
    for (const auto& fdp : pending) {
      bool deps_ready = true;
      for (const std::string& dep : fdp.dependency()) deps_ready &= pool.FindFileByName(dep) != nullptr;
      if (deps_ready) {
        ASSERT_NE(pool.BuildFile(fdp), nullptr) << fdp.name();
      } else {
        later.push_back(fdp);
      }
    }
    pending.swap(later);
  }
  ASSERT_TRUE(pending.empty());
  const google::protobuf::ServiceDescriptor* svc = pool.FindServiceByName("tcbscope.v1.Inspector");
  ASSERT_NE(svc, nullptr);
  const google::protobuf::MethodDescriptor* m = svc->FindMethodByName("GetHostInfo");
  ASSERT_NE(m, nullptr);
  EXPECT_NE(svc->FindMethodByName("ListConnections"), nullptr);

  // Call GetHostInfo with messages built only from the reflected descriptors.
  google::protobuf::DynamicMessageFactory factory(&pool);
  std::unique_ptr<google::protobuf::Message> req(factory.GetPrototype(m->input_type())->New());
  std::string req_bytes;
  ASSERT_TRUE(req->SerializeToString(&req_bytes));
  grpc::GenericStub generic(channel_);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::ByteBuffer out(nullptr, 0);
  grpc::Slice slice(req_bytes);
  grpc::ByteBuffer in(&slice, 1);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  generic.UnaryCall(&ctx, "/tcbscope.v1.Inspector/GetHostInfo", grpc::StubOptions(), &in, &out,
                    [&](grpc::Status s) {
                      std::lock_guard<std::mutex> l(mu);
                      status = s;
                      done = true;
                      cv.notify_one();
                    });
  {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return done; });
  }
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(out.Dump(&slices).ok());
  std::string resp_bytes;
  for (const auto& s : slices) resp_bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  std::unique_ptr<google::protobuf::Message> resp(factory.GetPrototype(m->output_type())->New());
  ASSERT_TRUE(resp->ParseFromString(resp_bytes));
  const google::protobuf::FieldDescriptor* hostname = m->output_type()->FindFieldByName("hostname");
  ASSERT_NE(hostname, nullptr);
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  EXPECT_EQ(resp->GetReflection()->GetString(*resp, hostname), host);
}

}  // namespace
}  // namespace tcbscope
