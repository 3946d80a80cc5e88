// Netlink message parsing: the per-socket cost of a dump with tcp_info.
#include <fstream>
#include <sstream>
#include <vector>

#include "agent/kernel/inet_diag_parser.h"
#include "benchmark/benchmark.h"

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

}  // namespace
}  // namespace tcbscope::kernel
