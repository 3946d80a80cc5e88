// Netlink message parsing and writing: the per-socket cost of a dump with
// tcp_info (the recording has sockets with and without).
#include <fstream>
#include <sstream>
#include <vector>

#include "agent/kernel/inet_diag_parser.h"
#include "agent/kernel/inet_diag_wire.h"
#include "benchmark/benchmark.h"
#include "google/protobuf/arena.h"

namespace tcbscope::kernel {
namespace {

std::vector<std::string> Messages() {
  std::ifstream in(std::string(TCBSCOPE_SOURCE_DIR) + "/tests/data/ss_tani.dump", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::vector<std::string> out;
  auto s = WalkDiagStream(ss.str(), [&](const nlmsghdr* m) {
    out.emplace_back(reinterpret_cast<const char*>(m), m->nlmsg_len);
    return absl::OkStatus();
  });
  return out;
}

void BM_ParseInetDiagMessage(benchmark::State& state) {
  const std::vector<std::string> msgs = Messages();
  v1::Connection c;
  for (auto _ : state) {
    for (const std::string& m : msgs) {
      c.Clear();
      benchmark::DoNotOptimize(ParseInetDiagMessage(reinterpret_cast<const nlmsghdr*>(m.data()), 1, &c));
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(msgs.size()));
}
BENCHMARK(BM_ParseInetDiagMessage);

// What a listing did per socket before its batches were written straight:
// build the Connection (on an arena, as the agent does), then serialize it.
void BM_BuildThenSerialize(benchmark::State& state) {
  const std::vector<std::string> msgs = Messages();
  WireBuffer out;
  google::protobuf::Arena arena;
  for (auto _ : state) {
    for (const std::string& m : msgs) {
      auto* c = google::protobuf::Arena::CreateMessage<v1::Connection>(&arena);
      benchmark::DoNotOptimize(ParseInetDiagMessage(reinterpret_cast<const nlmsghdr*>(m.data()), 1, c));
      AppendMessageField(v1::ConnectionBatch::kConnectionsFieldNumber, *c, &out);
    }
    out.Truncate(0);
    arena.Reset();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(msgs.size()));
}
BENCHMARK(BM_BuildThenSerialize);

// The same bytes written straight from each message.
void BM_AppendConnectionWire(benchmark::State& state) {
  const std::vector<std::string> msgs = Messages();
  WireBuffer out;
  const ConnectionFields all;
  auto no_seq = [](uint64_t, int, int) -> const tcb_seq_record* { return nullptr; };
  for (auto _ : state) {
    for (const std::string& m : msgs) {
      benchmark::DoNotOptimize(
          AppendConnectionWire(reinterpret_cast<const nlmsghdr*>(m.data()), 1, "", all, no_seq, &out));
    }
    out.Truncate(0);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(msgs.size()));
}
BENCHMARK(BM_AppendConnectionWire);

}  // namespace
}  // namespace tcbscope::kernel
