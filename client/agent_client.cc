#include "client/agent_client.h"

#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "client/fan_out.h"
#include "client/tcb_batch_traits.h"
#include "common/tcb_batch.h"
#include "grpcpp/grpcpp.h"

namespace tcbscope {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(what, " ", path, ": cannot be read"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string StatusCodeName(absl::StatusCode code) { return absl::StatusCodeToString(code); }

void StartOnEachHost(const std::vector<HostPort>& hosts, const ClientOptions& options,
                     const std::function<void(size_t, AgentClient&, std::function<void(absl::Status)>)>& start,
                     std::vector<absl::Status>* statuses, size_t in_flight) {
  statuses->assign(hosts.size(), absl::OkStatus());
  StartEachBounded(
      hosts.size(),
      [&](size_t i, std::function<void()> done) -> std::shared_ptr<void> {
        absl::StatusOr<std::unique_ptr<AgentClient>> client = AgentClient::Create(hosts[i], options);
        if (!client.ok()) {
          (*statuses)[i] = client.status();
          done();
          return nullptr;
        }
        std::shared_ptr<AgentClient> held = *std::move(client);
        start(i, *held, [statuses, i, done = std::move(done)](absl::Status s) {
          (*statuses)[i] = std::move(s);
          done();
        });
        return held;
      },
      in_flight);
}

absl::StatusOr<std::unique_ptr<AgentClient>> AgentClient::Create(const HostPort& host, const ClientOptions& given) {
  ClientOptions options = given;
  HostPort target = host;
  if (given.config != nullptr) {
    const Credentials* named = nullptr;
    if (auto it = given.config->hosts.find(host.host); it != given.config->hosts.end()) {
      target = it->second.address;
      named = &it->second.credentials;
    }
    auto pick = [&](std::string* field, std::string Credentials::*member) {
      if (!field->empty()) return;
      if (named != nullptr && !(named->*member).empty()) {
        *field = named->*member;
      } else {
        *field = given.config->defaults.*member;
      }
    };
    pick(&options.tls_ca, &Credentials::tls_ca);
    pick(&options.tls_cert, &Credentials::tls_cert);
    pick(&options.tls_key, &Credentials::tls_key);
    pick(&options.token_file, &Credentials::token_file);
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!options.tls_ca.empty() || !options.tls_cert.empty()) {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls_ca.empty()) {
      absl::StatusOr<std::string> ca = ReadFile(options.tls_ca, "--tls-ca");
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *ca;
    }
    if (options.tls_cert.empty() != options.tls_key.empty()) {
      return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
    }
    if (!options.tls_cert.empty()) {
      absl::StatusOr<std::string> cert = ReadFile(options.tls_cert, "--tls-cert");
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key = ReadFile(options.tls_key, "--tls-key");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  std::string token;
  if (!options.token_file.empty()) {
    absl::StatusOr<std::string> t = ReadFile(options.token_file, "--token-file");
    if (!t.ok()) return t.status();
    token = std::string(absl::StripAsciiWhitespace(*t));
    if (token.empty()) return absl::InvalidArgumentError(absl::StrCat("--token-file ", options.token_file, ": empty"));
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  if (!options.large_answers) args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  // Retry a lost agent soon (watch resumes within 2 s of its return). Not
  // GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: gRPC also takes it as the shortest
  // time a connection attempt may take, so a small value aborts handshakes
  // that are merely slow ("tcp handshaker shutdown" from busy hosts).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // A call that could not reach the agent at all is tried twice more: the
  // kernel now and then fails one connect() of many started at once (seen
  // as "connect: No such file or directory" in a 32-host fan-out, about one
  // in 2,000). gRPC retries only before any response arrived, so a stream is
  // never repeated, and every call is read-only (Probe is rate-limited on
  // the agent). A host that is down still fails within half a second.
  args.SetServiceConfigJSON(R"({"methodConfig": [{"name": [{"service": "tcbscope.v1.Inspector"}],
      "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.1s", "maxBackoff": "0.4s",
                      "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]})");
  // An address needs no resolver: an "ipv4:"/"ipv6:" target goes straight
  // to the address instead of through the DNS resolver's work queue. The
  // authority (and so the name TLS checks) stays HOST:PORT, as with a name.
  std::string uri = target.ToString();
  if (absl::StatusOr<IpAddress> ip = IpAddress::Parse(target.host); ip.ok()) {
    args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, uri);
    uri = absl::StrCat(ip->is_v4() ? "ipv4:" : "ipv6:", uri);
  }
  auto channel = grpc::CreateCustomChannel(uri, creds, args);
  return std::unique_ptr<AgentClient>(new AgentClient(host, options, std::move(channel), std::move(token)));
}

AgentClient::AgentClient(HostPort host, ClientOptions options, std::shared_ptr<grpc::Channel> channel,
                         std::string token)
    : host_(std::move(host)),
      options_(std::move(options)),
      channel_(std::move(channel)),
      stub_(v1::Inspector::NewStub(channel_)),
      token_(std::move(token)) {}

void AgentClient::Prepare(grpc::ClientContext* ctx) const {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  if (!token_.empty()) ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token_));
}

absl::Status AgentClient::Convert(const grpc::Status& s) const {
  if (s.ok()) return absl::OkStatus();
  const auto code = static_cast<absl::StatusCode>(s.error_code());
  std::string msg = s.error_message();
  if (code == absl::StatusCode::kDeadlineExceeded) {
    msg = absl::StrCat("no answer within ", absl::FormatDuration(options_.timeout), " (", msg, ")");
  } else if (code == absl::StatusCode::kUnavailable) {
    msg = absl::StrCat("unreachable: ", msg);
  }
  return absl::Status(code, msg);
}

absl::Status AgentClient::GetHostInfo(v1::HostInfo* out) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  return Convert(stub_->GetHostInfo(&ctx, v1::GetHostInfoRequest(), out));
}

void AgentClient::StartGetHostInfo(v1::HostInfo* out, CompletionThread* completions,
                                   std::function<void(absl::Status)> done) {
  class Call final : public CompletionThread::Tag {
   public:
    Call(const AgentClient* client, std::function<void(absl::Status)> done) : client_(client), done_(std::move(done)) {
      client_->Prepare(&context_);
    }
    void Start(v1::Inspector::Stub* stub, v1::HostInfo* out, grpc::CompletionQueue* cq) {
      reader_ = stub->AsyncGetHostInfo(&context_, v1::GetHostInfoRequest(), cq);
      reader_->Finish(out, &status_, this);
    }
    void Done(bool) override {
      // The call is gone before the caller hears of it: after `done` the
      // caller may destroy the client, or exit.
      absl::Status status = client_->Convert(status_);
      std::function<void(absl::Status)> done = std::move(done_);
      delete this;
      done(std::move(status));
    }

   private:
    const AgentClient* const client_;
    std::function<void(absl::Status)> done_;
    grpc::ClientContext context_;
    grpc::Status status_;
    std::unique_ptr<grpc::ClientAsyncResponseReader<v1::HostInfo>> reader_;
  };
  (new Call(this, std::move(done)))->Start(stub_.get(), out, completions->cq());
}

absl::Status AgentClient::GetCounters(v1::Counters* out) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  return Convert(stub_->GetCounters(&ctx, v1::GetCountersRequest(), out));
}

absl::Status AgentClient::Probe(const v1::ProbeRequest& request, v1::ProbeResult* out) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  if (options_.timeout != absl::InfiniteDuration()) {
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout + absl::Milliseconds(request.timeout_ms())));
  }
  return Convert(stub_->Probe(&ctx, request, out));
}

namespace {

// Where the batches a caller's on_batch sees are read into: a message on an
// arena that is reset before each read, over one block kept for the stream.
// A heap message reused across reads would not do: Clear() keeps repeated
// fields' elements, but deletes every connection's TcpInfo, SequenceSpace,
// SocketMemory and Timer, so each batch would allocate and zero them anew
// (a tenth of `correlate`'s CPU at 100k connections). Here they are pointer
// bumps into memory the first batch already touched.
class ReusedArena {
 public:
  ReusedArena() : block_(new char[kBlockBytes]), arena_(Options(block_.get())) {}
  // A new empty batch; the previous one (and everything on it) is gone.
  template <typename Batch>
  Batch* Fresh() {
    arena_.Reset();
    return google::protobuf::Arena::CreateMessage<Batch>(&arena_);
  }

 private:
  // The agent sends 1,000 connections a batch, ~0.6 MiB of objects with
  // tcp_info; a bigger batch spills into blocks freed at the next reset.
  static constexpr size_t kBlockBytes = 2 << 20;
  static google::protobuf::ArenaOptions Options(char* block) {
    google::protobuf::ArenaOptions o;
    o.initial_block = block;
    o.initial_block_size = kBlockBytes;
    return o;
  }
  std::unique_ptr<char[]> block_;
  google::protobuf::Arena arena_;
};

// Why a batch a read filled cannot be used. A TcbBatch that did not decode
// says so itself (its read succeeds: client/tcb_batch_traits.h); a message
// protobuf could not parse fails its read instead, and is never seen.
absl::Status Unreadable(const google::protobuf::MessageLite&) { return absl::OkStatus(); }
absl::Status Unreadable(const TcbBatch& batch) { return batch.status(); }

// One ListConnections stream's reading, whichever thread reads it: each
// batch (the API's ConnectionBatch or the client's encoded view of it) goes to
// `on_batch`, and the next read starts only when that returns. The drivers
// below delete it when the call has ended, then run `done` with the call's
// status.
template <typename Batch>
class BatchStream {
 public:
  // `batch` is the message each read fills: owned by the stream unless it
  // lives on an arena (`owned` false). With `reused`, each read gets a fresh
  // batch from it instead (and `batch` is null).
  BatchStream(const v1::ListConnectionsRequest& request, Batch* batch, bool owned, v1::HostConnections* out,
              std::function<void(Batch*)> on_batch, std::function<absl::Status(const grpc::Status&)> convert,
              std::function<void(absl::Status)> done, std::unique_ptr<ReusedArena> reused)
      : request_(request),
        reused_(std::move(reused)),
        batch_(reused_ && kOnArena ? Fresh() : batch),
        owned_(owned ? batch : nullptr),
        out_(out),
        on_batch_(std::move(on_batch)),
        convert_(std::move(convert)),
        done_(std::move(done)) {}
  virtual ~BatchStream() = default;

  grpc::ClientContext* context() { return &ctx_; }
  const v1::ListConnectionsRequest* request() const { return &request_; }

 protected:
  // Where the next read goes.
  Batch* batch() { return batch_; }
  // The batch taken last said it was the last: nothing more is to be read,
  // and the call's status may be asked for at once.
  bool saw_last() const { return saw_last_; }
  // A read has filled batch(): hands it on. False when it could not be
  // used: the call is then being cancelled, and must not read again.
  bool Take() {
    if (absl::Status bad = Unreadable(*batch_); !bad.ok()) {
      unreadable_ = absl::InternalError(absl::StrCat("a batch from the agent could not be read: ", bad.message()));
      ctx_.TryCancel();
      return false;
    }
    if (!out_->has_captured_at()) *out_->mutable_captured_at() = batch_->captured_at();
    if (batch_->dump_interrupted()) out_->set_dump_interrupted(true);
    saw_last_ = batch_->last();
    on_batch_(batch_);
    if (reused_) batch_ = Fresh();
    return true;
  }
  // The call has ended with `s`: deletes this, then tells the caller.
  void End(const grpc::Status& s) {
    absl::Status status = unreadable_.ok() ? convert_(s) : unreadable_;
    if (status.ok() && !saw_last_) status = absl::DataLossError("the agent ended the stream before the last batch");
    // Gone before the caller hears: after `done` it may destroy the client.
    std::function<void(absl::Status)> done = std::move(done_);
    delete this;
    done(std::move(status));
  }

 private:
  // Only a message can live on the reused arena; any other batch (TcbBatch)
  // is the one given, read into again and again.
  static constexpr bool kOnArena = std::is_base_of_v<google::protobuf::MessageLite, Batch>;
  // A new batch on the reused arena (a batch not on one: the same again).
  Batch* Fresh() {
    if constexpr (kOnArena) {
      return reused_->template Fresh<Batch>();
    } else {
      return batch_;
    }
  }

  grpc::ClientContext ctx_;
  const v1::ListConnectionsRequest request_;  // sent when the call starts
  const std::unique_ptr<ReusedArena> reused_;
  Batch* batch_;
  const std::unique_ptr<Batch> owned_;
  v1::HostConnections* const out_;
  const std::function<void(Batch*)> on_batch_;
  const std::function<absl::Status(const grpc::Status&)> convert_;
  std::function<void(absl::Status)> done_;
  bool saw_last_ = false;     // read and written by one read at a time
  absl::Status unreadable_;  // why the call was cancelled, if it was
};

// A stream read on gRPC's callback threads.
template <typename Batch>
class CallbackBatchReader final : public grpc::ClientReadReactor<Batch>, public BatchStream<Batch> {
 public:
  using BatchStream<Batch>::BatchStream;

  void Start() {
    this->StartRead(this->batch());
    this->StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream has ended; OnDone follows
    if (this->Take() && !this->saw_last()) this->StartRead(this->batch());  // else OnDone follows
  }
  void OnDone(const grpc::Status& s) override { this->End(s); }
};

// A stream read on a CompletionThread: the call's start, each read and its
// end are completions on that thread's queue, taken one at a time.
template <typename Batch>
class QueuedBatchReader final : public CompletionThread::Tag, public BatchStream<Batch> {
 public:
  using BatchStream<Batch>::BatchStream;

  // Takes `call`, made on the thread's queue and not yet started, and starts
  // it: made started, its start's completion could run on the queue's thread
  // before the call had been stored here.
  void Start(grpc::ClientAsyncReader<Batch>* call) {
    reader_.reset(call);
    reader_->StartCall(this);
  }
  void Done(bool ok) override {
    switch (step_) {
      case Step::kStarting:
      case Step::kReading:
        if (step_ == Step::kReading && ok) ok = this->Take();
        // After the last batch the status is asked for without another
        // read: gRPC allows it once the caller knows nothing more will come.
        if (ok && !this->saw_last()) {
          step_ = Step::kReading;
          reader_->Read(this->batch(), this);
        } else {
          // Not started, no more to read, or the last batch taken: the
          // status says which.
          step_ = Step::kFinishing;
          reader_->Finish(&status_, this);
        }
        return;
      case Step::kFinishing:
        reader_.reset();
        this->End(status_);
        return;
    }
  }

 private:
  enum class Step { kStarting, kReading, kFinishing };
  Step step_ = Step::kStarting;
  std::unique_ptr<grpc::ClientAsyncReader<Batch>> reader_;
  grpc::Status status_;
};

// Runs `start(done)` and waits for its `done`: a blocking call made of a
// callback one.
absl::Status Wait(const std::function<void(std::function<void(absl::Status)>)>& start) {
  absl::Notification finished;
  absl::Status status;
  start([&](absl::Status s) {
    status = std::move(s);
    finished.Notify();
  });
  finished.WaitForNotification();
  return status;
}

}  // namespace

void AgentClient::StartListConnections(const v1::ListConnectionsRequest& request, v1::HostConnections* out,
                                       std::function<void(v1::ConnectionBatch*)> on_batch,
                                       std::function<void(absl::Status)> done, CompletionThread* completions) {
  auto convert = [this](const grpc::Status& s) { return Convert(s); };
  v1::ConnectionBatch* batch = nullptr;
  bool owned = false;
  std::unique_ptr<ReusedArena> reused;
  std::function<void(v1::ConnectionBatch*)> take;
  if (on_batch) {
    reused = std::make_unique<ReusedArena>();
    take = std::move(on_batch);
  } else {
    // Move, not copy: 100k connections make copying visible. The batch is
    // parsed on `out`'s arena (if any), so both fields are on the same arena
    // (or both on the heap), which is what the unsafe variants require.
    take = [out, moved = std::vector<v1::Connection*>()](v1::ConnectionBatch* b) mutable {
      auto* conns = b->mutable_connections();
      auto* dst = out->mutable_connections();
      moved.resize(static_cast<size_t>(conns->size()));
      conns->UnsafeArenaExtractSubrange(0, conns->size(), moved.data());
      dst->Reserve(dst->size() + static_cast<int>(moved.size()));
      for (v1::Connection* c : moved) dst->UnsafeArenaAddAllocated(c);
    };
    google::protobuf::Arena* arena = out->GetArena();
    batch = google::protobuf::Arena::CreateMessage<v1::ConnectionBatch>(arena);
    owned = arena == nullptr;
  }
  if (completions != nullptr) {
    auto* reader = new QueuedBatchReader<v1::ConnectionBatch>(request, batch, owned, out, std::move(take), convert,
                                                              std::move(done), std::move(reused));
    Prepare(reader->context());
    reader->Start(
        stub_->PrepareAsyncListConnections(reader->context(), *reader->request(), completions->cq()).release());
    return;
  }
  auto* reader = new CallbackBatchReader<v1::ConnectionBatch>(request, batch, owned, out, std::move(take), convert,
                                                              std::move(done), std::move(reused));
  Prepare(reader->context());
  stub_->async()->ListConnections(reader->context(), reader->request(), reader);
  reader->Start();
}

template <typename Batch>
void AgentClient::StartListConnectionsAs(const v1::ListConnectionsRequest& request, v1::HostConnections* out,
                                         std::function<void(Batch*)> on_batch, std::function<void(absl::Status)> done,
                                         CompletionThread* completions) {
  auto convert = [this](const grpc::Status& s) { return Convert(s); };
  // The method the generated stub calls, read as another type. gRPC keeps a
  // pointer to the name for the call's life, so the name is static; the
  // call is made before this returns, so the RpcMethod may be a local.
  static const std::string kMethod = absl::StrCat("/", v1::Inspector::service_full_name(), "/ListConnections");
  const grpc::internal::RpcMethod method(kMethod.c_str(), grpc::internal::RpcMethod::SERVER_STREAMING);
  if (completions != nullptr) {
    auto* reader = new QueuedBatchReader<Batch>(request, new Batch, true, out, std::move(on_batch), convert,
                                                std::move(done), nullptr);
    Prepare(reader->context());
    reader->Start(grpc::internal::ClientAsyncReaderFactory<Batch>::Create(
        channel_.get(), completions->cq(), method, reader->context(), *reader->request(), /*start=*/false, nullptr));
    return;
  }
  auto* reader = new CallbackBatchReader<Batch>(request, new Batch, true, out, std::move(on_batch), convert,
                                                std::move(done), nullptr);
  Prepare(reader->context());
  grpc::internal::ClientCallbackReaderFactory<Batch>::Create(channel_.get(), method, reader->context(),
                                                             reader->request(), reader);
  reader->Start();
}

void AgentClient::StartListConnectionsEncoded(const v1::ListConnectionsRequest& request, v1::HostConnections* out,
                                              std::function<void(client::EncodedConnectionBatch*)> on_batch,
                                              std::function<void(absl::Status)> done, CompletionThread* completions) {
  StartListConnectionsAs(request, out, std::move(on_batch), std::move(done), completions);
}

absl::Status AgentClient::ListConnections(const v1::ListConnectionsRequest& request, v1::HostConnections* out,
                                          const std::function<void(v1::ConnectionBatch*)>& on_batch) {
  return Wait([&](std::function<void(absl::Status)> done) {
    StartListConnections(request, out, on_batch, std::move(done));
  });
}

absl::Status AgentClient::ListConnectionTcbs(const v1::ListConnectionsRequest& request, v1::HostConnections* out,
                                             const std::function<void(TcbBatch*)>& on_batch) {
  return Wait([&](std::function<void(absl::Status)> done) {
    StartListConnectionsAs<TcbBatch>(request, out, on_batch, std::move(done), nullptr);
  });
}

absl::Status AgentClient::ListConnectionsEncoded(const v1::ListConnectionsRequest& request, v1::HostConnections* out,
                                                 const std::function<void(client::EncodedConnectionBatch*)>& on_batch) {
  return Wait([&](std::function<void(absl::Status)> done) {
    StartListConnectionsEncoded(request, out, on_batch, std::move(done));
  });
}

}  // namespace tcbscope

namespace tcbscope {

absl::Status AgentClient::Watch(const v1::WatchConnectionsRequest& request, grpc::ClientContext* ctx,
                                const std::function<void(const v1::WatchEvent&)>& on_event) {
  if (!token_.empty()) ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token_));
  // Packed: the changes an agent sends together arrive in one message, and
  // are handed on one by one, each as if it had come alone.
  v1::WatchConnectionsRequest packed = request;
  packed.set_packed(true);
  std::unique_ptr<grpc::ClientReader<v1::WatchEvent>> reader = stub_->WatchConnections(ctx, packed);
  v1::WatchEvent event;
  google::protobuf::RepeatedPtrField<v1::WatchEvent> following;
  while (reader->Read(&event)) {
    following.Clear();
    following.Swap(event.mutable_following());
    on_event(event);
    for (const v1::WatchEvent& e : following) on_event(e);
  }
  grpc::Status s = reader->Finish();
  if (s.error_code() == grpc::StatusCode::CANCELLED) return absl::OkStatus();
  if (s.ok()) return absl::UnavailableError("the agent ended the stream");
  return Convert(s);
}

}  // namespace tcbscope
