// The snapshot path (filter, state mask, batching, last-batch marking) on a
// recorded dump, with a plain callback in place of the gRPC stream.
#include "agent/snapshot_streamer.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"
#include "agent/kernel/replay_source.h"
#include "gtest/gtest.h"

namespace tcbscope {
namespace {

std::unique_ptr<kernel::ReplaySource> Recording() {
  std::ifstream in(std::string(TCBSCOPE_SOURCE_DIR) + "/tests/data/ss_tani.dump", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  auto r = kernel::ReplaySource::FromBytes(ss.str(), "ss_tani.dump");
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(*r) : nullptr;
}

struct Collected {
  std::vector<v1::ConnectionBatch> batches;
  std::vector<std::string> bytes;  // each batch as it was written
  SnapshotStats stats;
  size_t connections() const {
    size_t n = 0;
    for (const auto& b : batches) n += b.connections_size();
    return n;
  }
};

enum class Path { kDirect, kBuilt };

absl::Status Snapshot(kernel::DiagSource& src, const v1::ListConnectionsRequest& req, Collected* out,
                      uint32_t batch_size = 1000, SeqTable* seq = nullptr, Path path = Path::kDirect) {
  SnapshotOptions opts;
  opts.batch_size = batch_size;
  opts.direct_encoding = path == Path::kDirect;
  return StreamSnapshot(
      src, req, opts, nullptr,
      [&](kernel::WireBuffer* b, bool last) {
        out->bytes.emplace_back(b->view());
        v1::ConnectionBatch batch;
        EXPECT_TRUE(batch.ParseFromArray(b->data(), static_cast<int>(b->size()))) << "batch " << out->bytes.size();
        EXPECT_EQ(batch.last(), last);
        out->batches.push_back(std::move(batch));
        return true;
      },
      seq, &out->stats);
}

TEST(SnapshotStreamerTest, BatchesAndMarksTheLast) {
  auto src = Recording();
  v1::ListConnectionsRequest req;
  req.set_all(true);
  Collected all;
  ASSERT_TRUE(Snapshot(*src, req, &all, 1000).ok());
  ASSERT_EQ(all.batches.size(), 1u);
  EXPECT_TRUE(all.batches[0].last());
  const size_t n = all.connections();
  EXPECT_EQ(all.batches[0].total(), n);
  EXPECT_GE(n, 10u);

  Collected small;
  ASSERT_TRUE(Snapshot(*src, req, &small, 3).ok());
  EXPECT_EQ(small.connections(), n);
  EXPECT_EQ(small.batches.size(), n / 3 + 1);
  for (size_t i = 0; i + 1 < small.batches.size(); ++i) {
    EXPECT_EQ(small.batches[i].connections_size(), 3);
    EXPECT_FALSE(small.batches[i].last());
    // Every batch of one snapshot carries the same capture time.
    EXPECT_EQ(small.batches[i].captured_at().seconds(), small.batches.back().captured_at().seconds());
    EXPECT_EQ(small.batches[i].captured_at().nanos(), small.batches.back().captured_at().nanos());
  }
  EXPECT_TRUE(small.batches.back().last());
  EXPECT_EQ(small.batches.back().total(), n);
}

TEST(SnapshotStreamerTest, DefaultStatesAreSsConnected) {
  auto src = Recording();
  Collected c;
  ASSERT_TRUE(Snapshot(*src, v1::ListConnectionsRequest(), &c).ok());
  ASSERT_GT(c.connections(), 0u);
  for (const auto& b : c.batches) {
    for (const auto& conn : b.connections()) {
      EXPECT_NE(conn.state(), v1::TCP_STATE_LISTEN);
      EXPECT_NE(conn.state(), v1::TCP_STATE_TIME_WAIT);
    }
  }
  v1::ListConnectionsRequest listening;
  listening.set_listening(true);
  Collected l;
  ASSERT_TRUE(Snapshot(*src, listening, &l).ok());
  ASSERT_GT(l.connections(), 0u);
  for (const auto& conn : l.batches[0].connections()) EXPECT_EQ(conn.state(), v1::TCP_STATE_LISTEN);
}

TEST(SnapshotStreamerTest, BadFilterFailsBeforeAnyBatch) {
  auto src = Recording();
  v1::ListConnectionsRequest req;
  req.set_filter("sport = = 1");
  Collected c;
  absl::Status s = Snapshot(*src, req, &c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(c.batches.empty());
}

TEST(SnapshotStreamerTest, GoneReaderStopsTheDump) {
  auto src = Recording();
  v1::ListConnectionsRequest req;
  req.set_all(true);
  int writes = 0;
  SnapshotOptions opts;
  opts.batch_size = 1;
  absl::Status s = StreamSnapshot(*src, req, opts, nullptr, [&](kernel::WireBuffer*, bool) {
    ++writes;
    return false;
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(writes, 1);
}

TEST(SnapshotStreamerTest, FilterSelectsPorts) {
  auto src = Recording();
  v1::ListConnectionsRequest req;
  req.set_all(true);
  req.set_filter("sport = :45002");
  Collected c;
  ASSERT_TRUE(Snapshot(*src, req, &c).ok());
  ASSERT_GE(c.connections(), 2u);  // the listener and the accepted socket
  for (const auto& conn : c.batches[0].connections()) EXPECT_EQ(conn.local().port(), 45002u);
}

// The recording's messages, each delivered `times` times: a large host made
// of a small recording.
class RepeatingSource : public kernel::DiagSource {
 public:
  RepeatingSource(std::unique_ptr<kernel::ReplaySource> inner, int times) : inner_(std::move(inner)), times_(times) {}
  absl::StatusOr<kernel::DumpResult> Dump(const kernel::DumpRequest& request,
                                          const kernel::DiagMessageCallback& on_socket) override {
    return inner_->Dump(request, [&](const nlmsghdr* m) -> absl::Status {
      for (int i = 0; i < times_; ++i) {
        if (absl::Status s = on_socket(m); !s.ok()) return s;
      }
      return absl::OkStatus();
    });
  }
  uint64_t netns() const override { return inner_->netns(); }
  std::string Describe() const override { return "repeating " + inner_->Describe(); }

 private:
  std::unique_ptr<kernel::ReplaySource> inner_;
  int times_;
};

// A socket the filter refuses was still built on the arena, so the arena is
// emptied every kBuiltBeforeReset sockets: the memory of a filtered listing
// follows what it sends, not the host's size.
TEST(SnapshotStreamerTest, RefusedSocketsDoNotAccumulate) {
  RepeatingSource src(Recording(), 1000);
  v1::ListConnectionsRequest req;
  req.set_all(true);
  req.set_tcp_info(true);
  Collected all;
  ASSERT_TRUE(Snapshot(src, req, &all, 1000000).ok());
  const size_t n = all.connections();
  ASSERT_GE(n, 10000u);
  ASSERT_EQ(all.batches.size(), 1u) << "nothing refused, one batch";
  EXPECT_EQ(all.stats.written_directly, n);
  EXPECT_EQ(all.stats.built, 0u) << "nothing needed a Connection";
  EXPECT_EQ(all.stats.max_arena_bytes, 0u);

  req.set_filter("sport = :45002");  // a few of the recording's sockets
  Collected some;
  ASSERT_TRUE(Snapshot(src, req, &some, 1000000).ok());
  ASSERT_GT(some.connections(), 0u);
  EXPECT_EQ(some.stats.built, n);
  for (const auto& b : some.batches) {
    for (const auto& conn : b.connections()) EXPECT_EQ(conn.local().port(), 45002u);
  }
  EXPECT_EQ(some.batches.back().total(), some.connections());
  EXPECT_TRUE(some.batches.back().last());
  // Built, n connections take more than their bytes; the arena held a
  // small part of that.
  EXPECT_GT(some.stats.max_arena_bytes, 0u);
  EXPECT_LT(some.stats.max_arena_bytes, all.bytes[0].size() / 2) << n << " connections";

  req.set_filter("sport = :1");  // none
  Collected none;
  ASSERT_TRUE(Snapshot(src, req, &none, 1000000).ok());
  ASSERT_EQ(none.batches.size(), 1u);
  EXPECT_EQ(none.connections(), 0u);
  EXPECT_TRUE(none.batches[0].last());
}

// The connections of a batch exactly as written (each field 1's bytes), and
// the batch's other fields, parsed, without the capture time (each run has
// its own).
struct RawBatch {
  std::vector<std::string> connections;
  v1::ConnectionBatch rest;
};

RawBatch Split(const std::string& bytes) {
  RawBatch out;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  std::string rest;
  google::protobuf::io::StringOutputStream rest_stream(&rest);
  google::protobuf::io::CodedOutputStream rest_out(&rest_stream);
  while (uint32_t tag = in.ReadTag()) {
    if (google::protobuf::internal::WireFormatLite::GetTagFieldNumber(tag) ==
        v1::ConnectionBatch::kConnectionsFieldNumber) {
      uint32_t len = 0;
      std::string c;
      EXPECT_TRUE(in.ReadVarint32(&len) && in.ReadString(&c, static_cast<int>(len)));
      out.connections.push_back(std::move(c));
    } else {
      EXPECT_TRUE(google::protobuf::internal::WireFormatLite::SkipField(&in, tag, &rest_out));
    }
  }
  rest_out.Trim();
  EXPECT_TRUE(out.rest.ParseFromString(rest));
  out.rest.clear_captured_at();
  return out;
}

// The same snapshot written straight from the netlink messages and built as
// Connections gives the same bytes, for every kind of request that can be
// written straight: the contract of AppendConnectionWire, end to end.
// A source whose sockets come from a named namespace, as --all-netns gives.
class NamedNamespace : public kernel::DiagSource {
 public:
  explicit NamedNamespace(kernel::DiagSource* inner) : inner_(inner) {}
  absl::StatusOr<kernel::DumpResult> Dump(const kernel::DumpRequest& request,
                                          const kernel::DiagMessageCallback& on_socket) override {
    return inner_->Dump(request, on_socket);
  }
  uint64_t netns() const override { return 4026532000u; }
  absl::string_view CurrentNetnsName() const override { return "a-namespace-named-past-sso"; }
  std::string Describe() const override { return "named " + inner_->Describe(); }

 private:
  kernel::DiagSource* inner_;
};

TEST(SnapshotStreamerTest, WrittenStraightIsByteForByteWhatBuildingGives) {
  RepeatingSource repeating(Recording(), 40);  // past the buffer's first 64 KiB
  NamedNamespace named(&repeating);
  // One record per socket but every third (opened after the pass).
  SeqTable table;
  size_t records = 0, sockets = 0;
  {
    v1::ListConnectionsRequest all;
    all.set_all(true);
    Collected plain;
    ASSERT_TRUE(Snapshot(*Recording(), all, &plain).ok());
    absl::flat_hash_set<uint64_t> seen;
    for (const auto& b : plain.batches) {
      for (const auto& c : b.connections()) {
        if (!seen.insert(c.cookie()).second || sockets++ % 3 == 2) continue;
        tcb_seq_record r{};
        r.cookie = c.cookie();
        r.family = c.family() == v1::FAMILY_INET ? AF_INET : AF_INET6;
        r.state = static_cast<uint8_t>(c.state());
        r.snd_una = static_cast<uint32_t>(sockets * 7919);
        r.rcv_nxt = static_cast<uint32_t>(sockets);
        r.bytes_acked = uint64_t{sockets} << 33;
        table.Add(r);
        ++records;
      }
    }
  }
  ASSERT_GT(records, 3u);
  ASSERT_LT(records, sockets);
  struct Case {
    const char* name;
    kernel::DiagSource* source;
    std::vector<std::string> fields;
    bool seq;
    uint32_t batch_size;
  };
  const std::vector<Case> cases = {
      {"everything", &repeating, {}, false, 1000},
      {"batches of 7", &repeating, {}, false, 7},
      {"sequence numbers", &repeating, {}, true, 1000},
      {"a named namespace", &named, {}, true, 1000},
      {"a mask", &repeating, {"local", "state", "tcp_info.rtt_us", "tcp_info.bytes_acked", "seq"}, true, 100},
      {"a mask without tcp_info", &repeating, {"remote", "cookie", "timer", "memory"}, false, 1000},
      {"tcp_info wholly", &named, {"tcp_info", "netns_name"}, false, 1000},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.name);
    v1::ListConnectionsRequest req;
    req.set_all(true);
    req.set_tcp_info(true);
    for (const std::string& f : k.fields) req.mutable_fields()->add_paths(f);
    SeqTable built_table = table, direct_table = table;
    Collected direct, built;
    ASSERT_TRUE(Snapshot(*k.source, req, &direct, k.batch_size, k.seq ? &direct_table : nullptr, Path::kDirect).ok());
    ASSERT_TRUE(Snapshot(*k.source, req, &built, k.batch_size, k.seq ? &built_table : nullptr, Path::kBuilt).ok());
    EXPECT_GT(direct.stats.written_directly, 0u);
    EXPECT_EQ(direct.stats.built, 0u);
    EXPECT_EQ(built.stats.written_directly, 0u);
    ASSERT_EQ(direct.bytes.size(), built.bytes.size());
    size_t with_seq = 0, named_rows = 0;
    for (size_t i = 0; i < direct.bytes.size(); ++i) {
      RawBatch d = Split(direct.bytes[i]), b = Split(built.bytes[i]);
      ASSERT_EQ(d.connections.size(), b.connections.size()) << "batch " << i;
      for (size_t j = 0; j < d.connections.size(); ++j) {
        if (d.connections[j] == b.connections[j]) continue;
        v1::Connection dc, bc;
        dc.ParseFromString(d.connections[j]);
        bc.ParseFromString(b.connections[j]);
        ADD_FAILURE() << "batch " << i << " connection " << j << " differs:\n written " << dc.ShortDebugString()
                      << "\n built   " << bc.ShortDebugString();
        return;
      }
      EXPECT_EQ(d.rest.SerializeAsString(), b.rest.SerializeAsString()) << d.rest.ShortDebugString();
      for (const auto& c : direct.batches[i].connections()) {
        with_seq += c.has_seq();
        named_rows += c.netns_name() == "a-namespace-named-past-sso";
      }
    }
    if (k.seq) {
      EXPECT_GT(with_seq, 0u) << "the records joined no row";
      EXPECT_LT(with_seq, direct.stats.written_directly) << "every row had a record";
    }
    EXPECT_EQ(named_rows > 0, k.source == &named);
  }
}

TEST(SnapshotStreamerTest, FieldMaskSendsOnlyWhatIsNamed) {
  auto src = Recording();
  v1::ListConnectionsRequest req;
  req.set_all(true);
  req.set_tcp_info(true);
  Collected full;
  ASSERT_TRUE(Snapshot(*src, req, &full).ok());
  req.mutable_fields()->add_paths("local");
  req.mutable_fields()->add_paths("tcp_info.rtt_us");
  Collected masked;
  ASSERT_TRUE(Snapshot(*src, req, &masked).ok());
  ASSERT_EQ(masked.connections(), full.connections());
  ASSERT_EQ(masked.batches.size(), 1u);
  size_t with_info = 0;
  for (int i = 0; i < full.batches[0].connections_size(); ++i) {
    const v1::Connection& f = full.batches[0].connections(i);
    const v1::Connection& m = masked.batches[0].connections(i);
    EXPECT_EQ(m.local().address(), f.local().address());
    EXPECT_EQ(m.local().port(), f.local().port());
    EXPECT_FALSE(m.has_remote());
    EXPECT_EQ(m.state(), v1::TCP_STATE_UNSPECIFIED);
    EXPECT_EQ(m.inode(), 0u);
    EXPECT_FALSE(m.has_memory());
    EXPECT_TRUE(m.congestion().empty());
    ASSERT_EQ(m.has_tcp_info(), f.has_tcp_info());
    if (!f.has_tcp_info()) continue;
    ++with_info;
    EXPECT_EQ(m.tcp_info().rtt_us(), f.tcp_info().rtt_us());
    EXPECT_EQ(m.tcp_info().kernel_bytes(), f.tcp_info().kernel_bytes()) << "metadata always comes";
    EXPECT_EQ(m.tcp_info().pmtu(), 0u);
    EXPECT_EQ(m.tcp_info().snd_mss(), 0u);
    EXPECT_LT(m.ByteSizeLong(), f.ByteSizeLong() / 2);
  }
  EXPECT_GT(with_info, 0u) << "the recording has tcp_info";
}

TEST(SnapshotStreamerTest, FieldMaskFilterStillSeesEveryField) {
  // The filter reads the remote port, which the mask leaves out.
  auto src = Recording();
  v1::ListConnectionsRequest req;
  req.set_all(true);
  req.set_filter("dport = :45002");
  Collected full;
  ASSERT_TRUE(Snapshot(*src, req, &full).ok());
  ASSERT_GE(full.connections(), 1u);
  req.mutable_fields()->add_paths("local");
  Collected masked;
  ASSERT_TRUE(Snapshot(*src, req, &masked).ok());
  EXPECT_EQ(masked.connections(), full.connections());
}

TEST(SnapshotStreamerTest, BadFieldMaskFailsBeforeAnyBatch) {
  auto src = Recording();
  v1::ListConnectionsRequest req;
  req.mutable_fields()->add_paths("tcp_info.no_such_field");
  Collected c;
  absl::Status s = Snapshot(*src, req, &c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("tcp_info.no_such_field"), std::string::npos) << s;
  EXPECT_TRUE(c.batches.empty());
}

// The recording, with the rows of some sockets made time-wait rows as the
// kernel sends them: the time-wait timer, and the state TIME_WAIT or (closed
// from FIN_WAIT2) FIN_WAIT2.
class TimeWaitRows : public kernel::DiagSource {
 public:
  TimeWaitRows(kernel::DiagSource* inner, absl::flat_hash_set<uint64_t> cookies)
      : inner_(inner), cookies_(std::move(cookies)) {}
  absl::StatusOr<kernel::DumpResult> Dump(const kernel::DumpRequest& request,
                                          const kernel::DiagMessageCallback& on_socket) override {
    return inner_->Dump(request, [&](const nlmsghdr* m) {
      inet_diag_msg d;
      std::memcpy(&d, NLMSG_DATA(m), sizeof(d));
      if (!cookies_.contains(static_cast<uint64_t>(d.id.idiag_cookie[1]) << 32 | d.id.idiag_cookie[0])) {
        return on_socket(m);
      }
      std::vector<uint32_t> copy(m->nlmsg_len / 4 + 1);  // 4-byte aligned, as netlink's
      std::memcpy(copy.data(), m, m->nlmsg_len);
      auto* header = reinterpret_cast<nlmsghdr*>(copy.data());
      auto* diag = reinterpret_cast<inet_diag_msg*>(NLMSG_DATA(header));
      diag->idiag_timer = 3;
      diag->idiag_state = rows_++ % 2 == 0 ? TCP_TIME_WAIT : TCP_FIN_WAIT2;
      return on_socket(header);
    });
  }
  uint64_t netns() const override { return inner_->netns(); }
  std::string Describe() const override { return "time-wait rows"; }

 private:
  kernel::DiagSource* inner_;
  absl::flat_hash_set<uint64_t> cookies_;
  int rows_ = 0;
};

TEST(SnapshotStreamerTest, SequenceRecordsJoinTheirOwnRowsOnly) {
  auto recording = Recording();
  v1::ListConnectionsRequest req;
  req.set_all(true);
  Collected plain;
  ASSERT_TRUE(Snapshot(*recording, req, &plain).ok());
  // Records as the pass would have made them, in the dump's order: every
  // socket but each fifth (opened after the pass), and, for the sockets that
  // become time-wait rows below, the record of the full socket they were
  // before closing (a time-wait socket keeps its cookie). snd_una marks whose
  // record it is.
  auto marker = [](uint64_t cookie) { return static_cast<uint32_t>(cookie * 2654435761u); };
  SeqTable table;
  absl::flat_hash_set<uint64_t> recorded, time_wait;
  size_t rows = 0;
  for (const auto& b : plain.batches) {
    for (const auto& c : b.connections()) {
      const size_t row = rows++;
      if (row % 5 == 4) continue;
      const bool closes = c.state() == v1::TCP_STATE_ESTABLISHED && row % 2 == 1;
      tcb_seq_record r{};
      r.cookie = c.cookie();
      r.family = c.family() == v1::FAMILY_INET ? AF_INET : AF_INET6;
      r.state = closes ? static_cast<uint8_t>(TCP_FIN_WAIT1) : static_cast<uint8_t>(c.state());
      r.snd_una = marker(c.cookie());
      table.Add(r);
      (closes ? time_wait : recorded).insert(c.cookie());
    }
  }
  ASSERT_GE(recorded.size(), 5u);
  ASSERT_GE(time_wait.size(), 2u);  // both ways a time-wait row is reported

  for (Path path : {Path::kDirect, Path::kBuilt}) {
    SCOPED_TRACE(path == Path::kDirect ? "written straight" : "built");
    TimeWaitRows src(recording.get(), time_wait);
    SeqTable path_table = table;
    Collected joined;
    ASSERT_TRUE(Snapshot(src, req, &joined, 1000, &path_table, path).ok());
    size_t with_seq = 0, time_wait_rows = 0;
    for (const auto& b : joined.batches) {
      for (const auto& c : b.connections()) {
        if (recorded.contains(c.cookie())) {
          ASSERT_TRUE(c.has_seq()) << c.ShortDebugString();
          EXPECT_EQ(c.seq().snd_una(), marker(c.cookie())) << "another socket's record";
          ++with_seq;
        } else if (time_wait.contains(c.cookie())) {
          ASSERT_EQ(c.timer().kind(), v1::Timer::KIND_TIME_WAIT);
          EXPECT_FALSE(c.has_seq()) << "a time-wait row got its closed socket's numbers: " << c.ShortDebugString();
          ++time_wait_rows;
        } else {
          EXPECT_FALSE(c.has_seq()) << "a row without a record got numbers: " << c.ShortDebugString();
        }
      }
    }
    EXPECT_EQ(with_seq, recorded.size());
    EXPECT_EQ(time_wait_rows, time_wait.size());
    // In the dump's own order, only the rows without a record looked further.
    EXPECT_LE(path_table.index_lookups(), rows - recorded.size());
  }
}

}  // namespace
}  // namespace tcbscope
