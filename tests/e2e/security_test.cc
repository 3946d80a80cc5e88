// TLS, mutual TLS and bearer tokens, with certificates the test makes with
// openssl: what must be refused is refused, and the right credentials work.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tcbscope/v1/inspector.grpc.pb.h"
#include "tcbscope/v1/results.pb.h"
#include "testing/subprocess.h"

namespace tcbscope {
namespace {

using testing::AgentProcess;
using testing::CommandResult;
using testing::RunCommand;

class SecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (RunCommand({"openssl", "version"}).exit_code != 0) return;
    char tmpl[] = "/tmp/tcbscope-pki-XXXXXX";
    dir_ = mkdtemp(tmpl);
    auto sh = [](const std::string& script) {
      CommandResult r = RunCommand({"sh", "-c", script}, 60000);
      EXPECT_EQ(r.exit_code, 0) << script << "\n" << r.err;
    };
    const std::string d = dir_;
    const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    for (const char* ca : {"ca", "other-ca"}) {
      sh(absl::StrCat("openssl req -x509 ", key, " -keyout ", d, "/", ca, ".key -out ", d, "/", ca,
                      ".pem -days 2 -subj /CN=tcbscope-test-", ca, " 2>/dev/null"));
    }
    // Leaf certificates signed by `ca`: the agent's for 127.0.0.1, a client's.
    auto leaf = [&](const std::string& name, const std::string& ext) {
      {
        std::ofstream e(d + "/" + name + ".ext");
        e << ext << "\n";
      }
      sh(absl::StrCat("openssl req ", key, " -keyout ", d, "/", name, ".key -out ", d, "/", name,
                      ".csr -subj /CN=", name, " 2>/dev/null && openssl x509 -req -in ", d, "/", name, ".csr -CA ", d,
                      "/ca.pem -CAkey ", d, "/ca.key -CAcreateserial -out ", d, "/", name, ".pem -days 2 -extfile ", d,
                      "/", name, ".ext 2>/dev/null"));
    };
    leaf("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth");
    leaf("client", "extendedKeyUsage=clientAuth");
    std::ofstream(d + "/token") << "s3cret-token-of-32-characters-xx\n";
    std::ofstream(d + "/wrong-token") << "not-the-token-but-long-enough-xx\n";
    std::ofstream(d + "/short-token") << "short\n";
  }
  static void TearDownTestSuite() {
    if (!dir_.empty()) RunCommand({"rm", "-rf", dir_});
  }
  void SetUp() override {
    if (dir_.empty()) GTEST_SKIP() << "openssl is not installed";
  }

  static std::string F(const std::string& name) { return dir_ + "/" + name; }

  // `tcbscope info AGENT -o json ARGS`; returns the exit code and the host's
  // error code (empty when it answered).
  static std::pair<int, std::string> Info(const AgentProcess& agent, std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::CliBinary(), "info", agent.address(), "-o", "json", "--timeout", "5s"};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = RunCommand(argv);
    v1::InfoResult info;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &info).ok()) << r.out << r.err;
    std::string code = info.hosts_size() > 0 && info.hosts(0).has_error() ? info.hosts(0).error().code() : "";
    return {r.exit_code, code};
  }

  static inline std::string dir_;
};

TEST_F(SecurityTest, TlsAgentAcceptsOnlyTls) {
  AgentProcess agent({"--tls-cert", F("server.pem"), "--tls-key", F("server.key")});
  ASSERT_TRUE(agent.ok()) << agent.error();
  EXPECT_EQ(Info(agent, {"--tls-ca", F("ca.pem")}), std::make_pair(0, std::string()));
  // Plaintext client: refused.
  EXPECT_EQ(Info(agent, {}).first, 3);
  // A CA that did not sign the agent's certificate: refused.
  EXPECT_EQ(Info(agent, {"--tls-ca", F("other-ca.pem")}).first, 3);
}

TEST_F(SecurityTest, MutualTlsRequiresAClientCertificate) {
  AgentProcess agent({"--tls-cert", F("server.pem"), "--tls-key", F("server.key"), "--client-ca", F("ca.pem")});
  ASSERT_TRUE(agent.ok()) << agent.error();
  EXPECT_EQ(Info(agent, {"--tls-ca", F("ca.pem")}).first, 3);  // no client certificate
  EXPECT_EQ(Info(agent, {"--tls-ca", F("ca.pem"), "--tls-cert", F("client.pem"), "--tls-key", F("client.key")}),
            std::make_pair(0, std::string()));
  // The environment works as well as the flags.
  CommandResult r = RunCommand({testing::CliBinary(), "info", agent.address()}, 30000,
                               {"TCBSCOPE_TLS_CA=" + F("ca.pem"), "TCBSCOPE_TLS_CERT=" + F("client.pem"),
                                "TCBSCOPE_TLS_KEY=" + F("client.key")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// The configuration file names a host and its credentials: `tcbscope info
// lab-agent` then needs no flags; a flag still wins over the file.
TEST_F(SecurityTest, ConfigFileNamesHostsAndCredentials) {
  AgentProcess agent({"--tls-cert", F("server.pem"), "--tls-key", F("server.key"), "--client-ca", F("ca.pem"),
                      "--token-file", F("token")});
  ASSERT_TRUE(agent.ok()) << agent.error();
  // Relative paths resolve against the file's directory (the PKI's).
  std::ofstream(F("config")) << "# made by security_test\n"
                             << "tls-ca = ca.pem\n"
                             << "timeout = 5s\n"
                             << "[host lab-agent]\n"
                             << "address = " << agent.address() << "\n"
                             << "tls-cert = client.pem\n"
                             << "tls-key = client.key\n"
                             << "token-file = token\n";
  const std::vector<std::string> env = {"TCBSCOPE_CONFIG=" + F("config")};
  CommandResult r = RunCommand({testing::CliBinary(), "info", "lab-agent", "-o", "json"}, 30000, env);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"host\":\"lab-agent:7411\""), std::string::npos) << r.out;
  // --config names it as well.
  r = RunCommand({testing::CliBinary(), "--config", F("config"), "info", "lab-agent"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // The command line wins: a CA that did not sign the agent is refused.
  r = RunCommand({testing::CliBinary(), "info", "lab-agent", "--tls-ca", F("other-ca.pem")}, 30000, env);
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  // A broken file: one line naming file and line, exit 2, nothing contacted.
  std::ofstream(F("bad-config")) << "tls-ca = ca.pem\nshade = blue\n";
  r = RunCommand({testing::CliBinary(), "info", "lab-agent"}, 30000, {"TCBSCOPE_CONFIG=" + F("bad-config")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(F("bad-config") + ":2:"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  // Named but missing: an error, not silently no configuration.
  r = RunCommand({testing::CliBinary(), "info", "lab-agent"}, 30000, {"TCBSCOPE_CONFIG=" + F("no-such-config")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

// The kubelet cannot present a client certificate: --health-listen gives it a
// plaintext port that says SERVING and serves nothing else.
TEST_F(SecurityTest, HealthListenServesOnlyHealthInPlaintext) {
  // A free port (the agent binds it a moment later).
  const int probe = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  ASSERT_EQ(bind(probe, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  ASSERT_EQ(getsockname(probe, reinterpret_cast<sockaddr*>(&sa), &len), 0);
  const std::string health_addr = absl::StrCat("127.0.0.1:", ntohs(sa.sin_port));
  close(probe);
  AgentProcess agent({"--tls-cert", F("server.pem"), "--tls-key", F("server.key"), "--client-ca", F("ca.pem"),
                      "--health-listen", health_addr});
  ASSERT_TRUE(agent.ok()) << agent.error() << agent.Log();
  auto channel = grpc::CreateChannel(health_addr, grpc::InsecureChannelCredentials());
  {
    auto health = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
  {
    auto inspector = v1::Inspector::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::HostInfo info;
    EXPECT_EQ(inspector->GetHostInfo(&ctx, v1::GetHostInfoRequest(), &info).error_code(),
              grpc::StatusCode::UNIMPLEMENTED)
        << "the health port must not serve the Inspector";
  }
  // The main port still requires the client certificate.
  EXPECT_EQ(Info(agent, {"--tls-ca", F("ca.pem")}).first, 3);
  // A malformed --health-listen stops the agent at start.
  CommandResult bad = RunCommand({testing::AgentBinary(), "--health-listen", "not-an-address"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
}

TEST_F(SecurityTest, BearerToken) {
  AgentProcess agent({"--token-file", F("token")});
  ASSERT_TRUE(agent.ok()) << agent.error();
  EXPECT_EQ(Info(agent, {}), std::make_pair(3, std::string("UNAUTHENTICATED")));
  EXPECT_EQ(Info(agent, {"--token-file", F("wrong-token")}), std::make_pair(3, std::string("UNAUTHENTICATED")));
  EXPECT_EQ(Info(agent, {"--token-file", F("token")}), std::make_pair(0, std::string()));
  // Every call is checked, not only the first.
  CommandResult list = RunCommand({testing::CliBinary(), "list", agent.address()});
  EXPECT_EQ(list.exit_code, 3);
  EXPECT_NE(list.err.find("bearer token"), std::string::npos) << list.err;
  CommandResult counters = RunCommand({testing::CliBinary(), "counters", agent.address(), "--token-file", F("token")});
  EXPECT_EQ(counters.exit_code, 0) << counters.err;
}

TEST_F(SecurityTest, BadCredentialsStopTheAgentAtStart) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--token-file", F("short-token")},
        std::vector<std::string>{"--token-file", F("missing")},
        std::vector<std::string>{"--tls-cert", F("server.pem"), "--tls-key", F("missing.key")}}) {
    CommandResult r = RunCommand([&] {
      std::vector<std::string> argv = {testing::AgentBinary(), "--listen", "127.0.0.1:0"};
      argv.insert(argv.end(), args.begin(), args.end());
      return argv;
    }());
    EXPECT_NE(r.exit_code, 0) << args[1];
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

}  // namespace
}  // namespace tcbscope
