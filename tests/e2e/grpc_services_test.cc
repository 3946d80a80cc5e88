// The agent as a generic gRPC client sees it: health checking, server
// reflection good enough for grpcurl to list the services, fetch their
// descriptors and call a method knowing nothing but what reflection said,
// and ListConnections' field mask on the live kernel.
#include <dirent.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc_clients/reflection_client.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tcbscope/v1/inspector.grpc.pb.h"
#include "testing/sockets.h"
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
  grpc::ClientContext unknown_ctx;
  req.set_service("no.such.Service");
  EXPECT_EQ(stub->Check(&unknown_ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  // The agent's own health service: reflection can describe it too.
  refl::ServerReflectionRequest sym;
  sym.set_file_containing_symbol("grpc.health.v1.Health");
  EXPECT_GT(Ask(sym).file_descriptor_response().file_descriptor_proto_size(), 0);
}

// An address in use is one line and exit status 1, for the main port and for
// --health-listen's (the main server, already started, is then stopped).
TEST(AgentStartTest, AnAddressInUseIsAnErrorNotACrash) {
  testing::SocketSet sockets;
  int held_fd = -1;
  const int held = sockets.Listen("127.0.0.1", 1, &held_fd);
  ASSERT_GT(held, 0);
  const std::string in_use = absl::StrCat("127.0.0.1:", held);
  testing::CommandResult main_port =
      testing::RunCommand({testing::AgentBinary(), "--listen", in_use, "--seq", "off"}, 30000);
  EXPECT_EQ(main_port.exit_code, 1) << main_port.err;
  EXPECT_NE(main_port.err.find("cannot listen on " + in_use), std::string::npos) << main_port.err;
  testing::CommandResult health_port = testing::RunCommand(
      {testing::AgentBinary(), "--listen", "127.0.0.1:0", "--seq", "off", "--health-listen", in_use}, 30000);
  EXPECT_EQ(health_port.exit_code, 1) << health_port.err;
  EXPECT_NE(health_port.err.find("(--health-listen)"), std::string::npos) << health_port.err;
}

// The short calls are answered on the agent's one polling thread. Any use of
// gRPC's callback API in the agent (a callback method, gRPC's built-in
// health service) starts gRPC's "nexting_thread"s, which pass the poller's
// role to each other at every network event: 17 context switches per
// GetHostInfo instead of 5 (docs/performance.md).
TEST_F(GrpcServicesTest, NoCallbackThreadsAfterShortCalls) {
  auto inspector = v1::Inspector::NewStub(channel_);
  auto health = grpc::health::v1::Health::NewStub(channel_);
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext info_ctx, counters_ctx, health_ctx;
    v1::HostInfo info;
    ASSERT_TRUE(inspector->GetHostInfo(&info_ctx, v1::GetHostInfoRequest(), &info).ok());
    v1::Counters counters;
    ASSERT_TRUE(inspector->GetCounters(&counters_ctx, v1::GetCountersRequest(), &counters).ok());
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&health_ctx, grpc::health::v1::HealthCheckRequest(), &resp).ok());
  }
  const std::string tasks = absl::StrCat("/proc/", agent_.pid(), "/task");
  DIR* dir = opendir(tasks.c_str());
  ASSERT_NE(dir, nullptr);
  std::vector<std::string> names;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream comm(absl::StrCat(tasks, "/", e->d_name, "/comm"));
    std::string name;
    if (std::getline(comm, name)) names.push_back(name);
  }
  closedir(dir);
  EXPECT_GT(names.size(), 1u);
  for (const std::string& n : names) EXPECT_NE(n, "nexting_thread");
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

// Every connection of one ListConnections call, or its status.
grpc::Status ListAll(const std::shared_ptr<grpc::Channel>& channel, const v1::ListConnectionsRequest& req,
                     std::vector<v1::Connection>* out) {
  auto stub = v1::Inspector::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto reader = stub->ListConnections(&ctx, req);
  v1::ConnectionBatch batch;
  while (reader->Read(&batch)) {
    for (const v1::Connection& c : batch.connections()) out->push_back(c);
  }
  return reader->Finish();
}

TEST_F(GrpcServicesTest, ListConnectionsSendsOnlyTheFieldsAsked) {
  testing::SocketSet sockets;
  testing::SocketSet::Pair pair = sockets.EstablishedPair("127.0.0.1");
  v1::ListConnectionsRequest req;
  req.set_tcp_info(true);
  req.set_filter(absl::StrCat("sport = :", pair.server_port));
  std::vector<v1::Connection> full, masked;
  ASSERT_TRUE(ListAll(channel_, req, &full).ok());
  ASSERT_EQ(full.size(), 1u);
  ASSERT_TRUE(full[0].has_tcp_info());
  ASSERT_FALSE(full[0].congestion().empty());

  req.mutable_fields()->add_paths("remote");
  req.mutable_fields()->add_paths("tcp_info.snd_mss");
  ASSERT_TRUE(ListAll(channel_, req, &masked).ok());
  ASSERT_EQ(masked.size(), 1u) << "the filter still reads the local port the mask leaves out";
  const v1::Connection& m = masked[0];
  EXPECT_EQ(m.remote().port(), full[0].remote().port());
  EXPECT_FALSE(m.has_local());
  EXPECT_EQ(m.state(), v1::TCP_STATE_UNSPECIFIED);
  EXPECT_TRUE(m.congestion().empty());
  EXPECT_FALSE(m.has_memory());
  EXPECT_EQ(m.tcp_info().snd_mss(), full[0].tcp_info().snd_mss());
  EXPECT_NE(m.tcp_info().snd_mss(), 0u);
  EXPECT_EQ(m.tcp_info().pmtu(), 0u);
  EXPECT_NE(full[0].tcp_info().pmtu(), 0u);
}

TEST_F(GrpcServicesTest, ListConnectionsRefusesAnUnknownFieldByName) {
  v1::ListConnectionsRequest req;
  req.mutable_fields()->add_paths("tcp_info.rtt_us");
  req.mutable_fields()->add_paths("tcp_info.warp_factor");
  std::vector<v1::Connection> out;
  grpc::Status s = ListAll(channel_, req, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("tcp_info.warp_factor"), std::string::npos) << s.error_message();
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace tcbscope
