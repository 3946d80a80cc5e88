// Diffing two 100k-socket snapshots: the per-poll cost of the polling
// change source.
#include "benchmark/benchmark.h"
#include "common/diff.h"

namespace tcbscope {
namespace {

void BM_DiffSnapshots(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  google::protobuf::RepeatedPtrField<v1::Connection> before, after;
  for (int i = 1; i <= n; ++i) {
    v1::Connection* c = before.Add();
    c->set_cookie(i);
    c->set_state(v1::TCP_STATE_ESTABLISHED);
    c->mutable_tcp_info()->set_bytes_acked(1000);
    c->mutable_tcp_info()->set_last_data_recv_ms(i);
  }
  after = before;
  for (int i = 0; i < n; i += 100) {
    after.Mutable(i)->mutable_tcp_info()->set_bytes_acked(2000);  // 1% moved
    after.Mutable(i + 1)->mutable_tcp_info()->set_last_data_recv_ms(0);  // noise, not a change
  }
  for (auto _ : state) {
    SnapshotDiff d = DiffSnapshots(before, after);
    if (d.changed.size() != static_cast<size_t>(n / 100)) state.SkipWithError("wrong change count");
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_DiffSnapshots)->Arg(100000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tcbscope
