// Filter parsing and evaluation cost.
#include "benchmark/benchmark.h"
#include "common/filter.h"

namespace tcbscope {
namespace {

v1::Connection Sample(int i) {
  v1::Connection c;
  c.set_family(v1::FAMILY_INET);
  c.set_state(v1::TCP_STATE_ESTABLISHED);
  c.mutable_local()->set_address("198.51.100." + std::to_string(i % 250));
  c.mutable_local()->set_port(1024 + i % 60000);
  c.mutable_remote()->set_address("198.51.100.250");
  c.mutable_remote()->set_port(443);
  return c;
}

void BM_FilterParse(benchmark::State& state) {
  for (auto _ : state) {
    auto f = Filter::Parse("state established ( dport = :443 or dport = :80 ) and src 198.51.100.0/24");
    benchmark::DoNotOptimize(f);
  }
}
BENCHMARK(BM_FilterParse);

void BM_FilterMatch(benchmark::State& state) {
  auto f = *Filter::Parse("( dport = :443 or dport = :80 ) and src 198.51.100.0/25 and not sport < :2048");
  std::vector<v1::Connection> conns;
  for (int i = 0; i < 1000; ++i) conns.push_back(Sample(i));
  int64_t matched = 0;
  for (auto _ : state) {
    for (const auto& c : conns) matched += f.Matches(c);
  }
  benchmark::DoNotOptimize(matched);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(conns.size()));
}
BENCHMARK(BM_FilterMatch);

}  // namespace
}  // namespace tcbscope
