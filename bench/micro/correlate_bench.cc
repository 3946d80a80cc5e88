// Correlation and comparison of two large snapshots (the client's CPU for
// `tcbscope correlate` on hosts with many connections).
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "common/compare.h"
#include "common/correlate.h"
#include "common/tcb_batch.h"
#include "google/protobuf/arena.h"

namespace tcbscope {
namespace {

void Fill(int n, google::protobuf::RepeatedPtrField<v1::Connection>* a,
          google::protobuf::RepeatedPtrField<v1::Connection>* b) {
  for (int i = 0; i < n; ++i) {
    const std::string ca = "198.51.100." + std::to_string(1 + i % 100);
    const int cp = 1024 + i / 100;
    v1::Connection* x = a->Add();
    x->set_family(v1::FAMILY_INET);
    x->set_state(v1::TCP_STATE_ESTABLISHED);
    x->mutable_local()->set_address(ca);
    x->mutable_local()->set_port(cp);
    x->mutable_remote()->set_address("198.51.100.200");
    x->mutable_remote()->set_port(443);
    x->mutable_tcp_info()->set_bytes_acked(1001);
    x->mutable_tcp_info()->set_bytes_sent(1000);
    x->mutable_tcp_info()->set_snd_wnd(65536);
    x->mutable_tcp_info()->set_rcv_wnd(65536);
    x->mutable_tcp_info()->set_last_data_sent_ms(5000);
    x->mutable_tcp_info()->set_last_data_recv_ms(5000);
    x->mutable_tcp_info()->set_last_ack_recv_ms(5000);
    v1::Connection* y = b->Add();
    y->set_family(v1::FAMILY_INET);
    y->set_state(v1::TCP_STATE_ESTABLISHED);
    y->mutable_local()->set_address("198.51.100.200");
    y->mutable_local()->set_port(443);
    y->mutable_remote()->set_address(ca);
    y->mutable_remote()->set_port(cp);
    y->mutable_tcp_info()->set_bytes_received(1000);
    y->mutable_tcp_info()->set_bytes_acked(1);
    y->mutable_tcp_info()->set_snd_wnd(65536);
    y->mutable_tcp_info()->set_rcv_wnd(65536);
    y->mutable_tcp_info()->set_last_data_sent_ms(5000);
    y->mutable_tcp_info()->set_last_data_recv_ms(5000);
    y->mutable_tcp_info()->set_last_ack_recv_ms(5000);
  }
}

void BM_CorrelateAndCompare(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  google::protobuf::RepeatedPtrField<v1::Connection> a, b;
  Fill(n, &a, &b);
  v1::HostInfo ia, ib;
  ia.set_boot_id("a");
  ib.set_boot_id("b");
  for (int i = 1; i <= 100; ++i) ia.add_addresses()->set_address("198.51.100." + std::to_string(i));
  ib.add_addresses()->set_address("198.51.100.200");
  for (auto _ : state) {
    state.PauseTiming();  // Correlate consumes its input: give it a fresh copy
    google::protobuf::RepeatedPtrField<v1::Connection> a2 = a, b2 = b;
    state.ResumeTiming();
    v1::CorrelateResult r;
    Correlate(HostSnapshot{"a", &ia, &a2, absl::Now()}, HostSnapshot{"b", &ib, &b2, absl::Now()}, &r);
    CompareAll(CompareContext{}, &r);
    if (r.pairs_size() != n) state.SkipWithError("not all pairs found");
    if (r.findings_error() + r.findings_warning() != 0) state.SkipWithError("a healthy pair got a finding");
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_CorrelateAndCompare)->Arg(1000)->Arg(100000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tcbscope

namespace tcbscope {
namespace {

void BM_CorrelateOnly(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  google::protobuf::RepeatedPtrField<v1::Connection> a, b;
  Fill(n, &a, &b);
  v1::HostInfo ia, ib;
  ia.set_boot_id("a");
  ib.set_boot_id("b");
  ib.add_addresses()->set_address("198.51.100.200");
  for (auto _ : state) {
    state.PauseTiming();
    google::protobuf::RepeatedPtrField<v1::Connection> a2 = a, b2 = b;
    state.ResumeTiming();
    v1::CorrelateResult r;
    Correlate(HostSnapshot{"a", &ia, &a2, absl::Now()}, HostSnapshot{"b", &ib, &b2, absl::Now()}, &r);
    state.PauseTiming();
    r.Clear();  // destruction is not correlation
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_CorrelateOnly)->Arg(100000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tcbscope

namespace tcbscope {
namespace {

// What `correlate`'s table does once both snapshots are in: pair the compact
// TCBs and compare each pair (building the TcbLists is not timed; the client
// builds them while the batches arrive).
void BM_MatchAndCompareTcbs(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  google::protobuf::RepeatedPtrField<v1::Connection> a, b;
  Fill(n, &a, &b);
  TcbList ta, tb;
  for (const v1::Connection& c : a) ta.Add(TcbOf(c));
  for (const v1::Connection& c : b) tb.Add(TcbOf(c));
  v1::HostInfo ia, ib;
  ia.set_boot_id("a");
  ib.set_boot_id("b");
  ib.add_addresses()->set_address("198.51.100.200");
  Findings findings;
  for (auto _ : state) {
    const Matching m = Match(TcbSnapshot{&ia, &ta}, TcbSnapshot{&ib, &tb});
    int with_findings = 0;
    for (const Matching::Pair& p : m.pairs) {
      findings.Clear();
      CompareTcbs(CompareContext{}, ta[static_cast<size_t>(p.a)], tb[static_cast<size_t>(p.b)], p.passive_side,
                  &findings, nullptr);
      with_findings += findings.empty() ? 0 : 1;
    }
    if (static_cast<int>(m.pairs.size()) != n) state.SkipWithError("not all pairs found");
    if (with_findings != 0) state.SkipWithError("a healthy pair got a finding");
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_MatchAndCompareTcbs)->Arg(100000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tcbscope

namespace tcbscope {
namespace {

// Receiving one side's snapshot for `correlate`'s table: n connections in
// batches of 1,000 as an agent sends them (with sequence numbers), made
// into Tcbs. Two ways: read straight into Tcbs (TcbBatch, what the CLI
// does), and parsed into messages on a reused arena, then TcbOf.
std::vector<std::string> Batches(int n) {
  google::protobuf::RepeatedPtrField<v1::Connection> a, b;
  Fill(n, &a, &b);
  std::vector<std::string> out;
  v1::ConnectionBatch batch;
  for (int i = 0; i < n; ++i) {
    v1::Connection* c = batch.add_connections();
    *c = a.Get(i);
    c->mutable_seq()->set_snd_una(4000000000u + static_cast<uint32_t>(i));
    c->mutable_seq()->set_snd_nxt(4000000000u + static_cast<uint32_t>(i));
    c->mutable_seq()->set_rcv_nxt(17);
    c->mutable_seq()->set_bytes_acked(1000);
    if (batch.connections_size() == 1000 || i == n - 1) {
      batch.set_last(i == n - 1);
      out.push_back(batch.SerializeAsString());
      batch.Clear();
    }
  }
  return out;
}

void BM_ReceiveAsTcbs(benchmark::State& state) {
  const std::vector<std::string> batches = Batches(static_cast<int>(state.range(0)));
  TcbBatch batch;
  for (auto _ : state) {
    TcbList list;
    for (const std::string& wire : batches) {
      if (!batch.Decode(wire).ok()) state.SkipWithError("a batch did not decode");
      for (const Tcb& t : batch.tcbs()) list.Add(t);
    }
    benchmark::DoNotOptimize(list.size());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ReceiveAsTcbs)->Arg(100000)->Unit(benchmark::kMillisecond);

void BM_ReceiveAsMessagesThenTcbOf(benchmark::State& state) {
  const std::vector<std::string> batches = Batches(static_cast<int>(state.range(0)));
  google::protobuf::Arena arena;
  for (auto _ : state) {
    TcbList list;
    for (const std::string& wire : batches) {
      arena.Reset();
      auto* batch = google::protobuf::Arena::CreateMessage<v1::ConnectionBatch>(&arena);
      if (!batch->ParseFromString(wire)) state.SkipWithError("a batch did not parse");
      for (const v1::Connection& c : batch->connections()) list.Add(TcbOf(c));
    }
    benchmark::DoNotOptimize(list.size());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ReceiveAsMessagesThenTcbOf)->Arg(100000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tcbscope
