// WatchHub's BPF path with the kernel behind its seams: a recorded dump (the
// replay source) stands for the socket table, and a scripted event reader
// for the ring buffer and the kernel's count of skipped records.
#include "agent/watch_hub.h"

#include <sys/socket.h>

#include <cstring>
#include <thread>
#include <tuple>

#include "absl/synchronization/mutex.h"
#include "agent/kernel/replay_source.h"
#include "gtest/gtest.h"
#include "tests/agent/test_data.h"

namespace tcbscope {
namespace {

std::string ReadData(const std::string& name) { return tcbscope::testing::ReadTestData(name); }

// Hands out the records it is given and reports `missed` as the kernel's
// count of skipped ones. Shared with the test, which scripts it.
struct Script {
  absl::Mutex mu;
  std::vector<tcb_event> records ABSL_GUARDED_BY(mu);
  uint64_t missed ABSL_GUARDED_BY(mu) = 0;
  bool attached ABSL_GUARDED_BY(mu) = false;
  int attaches ABSL_GUARDED_BY(mu) = 0;
  int polls ABSL_GUARDED_BY(mu) = 0;
};

class ScriptedReader : public kernel::BpfEventReader {
 public:
  explicit ScriptedReader(std::shared_ptr<Script> script) : script_(std::move(script)) {}
  absl::StatusOr<int> Poll(absl::Duration timeout, const std::function<void(const tcb_event&)>& on_event) override {
    std::vector<tcb_event> now;
    {
      absl::MutexLock l(&script_->mu);
      ++script_->polls;
      auto any = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(script_->mu) { return !script_->records.empty(); };
      script_->mu.AwaitWithTimeout(absl::Condition(&any), timeout);
      now.swap(script_->records);
    }
    for (const tcb_event& r : now) on_event(r);
    return static_cast<int>(now.size());
  }
  absl::Status Attach() override {
    absl::MutexLock l(&script_->mu);
    if (!script_->attached) ++script_->attaches;
    script_->attached = true;
    return absl::OkStatus();
  }
  void Detach() override {
    absl::MutexLock l(&script_->mu);
    script_->attached = false;
  }
  uint64_t lost() const override { return 0; }
  uint64_t missed() const override {
    absl::MutexLock l(&script_->mu);
    return script_->missed;
  }
  std::string ResetReason(uint32_t) const override { return ""; }

 private:
  std::shared_ptr<Script> script_;
};

// Counts the dumps asked of the source it wraps; each takes at least
// `delay`, so that subscribers arriving together overlap.
class CountingSource : public kernel::DiagSource {
 public:
  CountingSource(kernel::DiagSource* inner, absl::Duration delay) : inner_(inner), delay_(delay) {}
  absl::StatusOr<kernel::DumpResult> Dump(const kernel::DumpRequest& request,
                                          const kernel::DiagMessageCallback& on_socket) override {
    {
      absl::MutexLock l(&mu_);
      ++dumps_;
    }
    absl::SleepFor(delay_);
    return inner_->Dump(request, on_socket);
  }
  uint64_t netns() const override { return inner_->netns(); }
  std::string Describe() const override { return inner_->Describe(); }
  int dumps() {
    absl::MutexLock l(&mu_);
    return dumps_;
  }

 private:
  kernel::DiagSource* inner_;
  const absl::Duration delay_;
  absl::Mutex mu_;
  int dumps_ ABSL_GUARDED_BY(mu_) = 0;
};

// The recording's last established socket with a cookie, or null.
const v1::Connection* AnEstablishedSocket(const Snapshot& table) {
  const v1::Connection* est = nullptr;
  for (const v1::Connection& c : table) {
    if (c.state() == v1::TCP_STATE_ESTABLISHED && c.cookie() != 0) est = &c;
  }
  return est;
}

// Hands the hub a record saying that socket `cookie` went from ESTABLISHED
// to CLOSE at `ktime_ns` (CLOCK_MONOTONIC; now if 0).
void RecordClose(Script* script, uint64_t cookie, uint64_t ktime_ns = 0) {
  tcb_event r;
  std::memset(&r, 0, sizeof(r));
  r.kind = TCB_EVENT_STATE;
  r.family = AF_INET;
  r.cookie = cookie;
  r.oldstate = v1::TCP_STATE_ESTABLISHED;
  r.newstate = v1::TCP_STATE_CLOSE;
  r.ktime_ns = ktime_ns != 0 ? ktime_ns : kernel::MonotonicNowNs();
  absl::MutexLock l(&script->mu);
  script->records.push_back(r);
}

// Waits up to 5 s for `n` events.
std::vector<std::shared_ptr<const HubEvent>> NextEvents(WatchHub::Subscription* sub, size_t n) {
  std::vector<std::shared_ptr<const HubEvent>> got;
  const absl::Time end = absl::Now() + absl::Seconds(5);
  while (got.size() < n && absl::Now() < end) {
    if (!sub->Next(absl::Milliseconds(100), &got)) ADD_FAILURE() << "the subscriber was told to resync";
  }
  return got;
}

// A BPF hub over the recording ss_tan.dump (the kernel's table) and a
// scripted reader (the ring buffer); the lookup finds nothing.
class WatchHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<kernel::ReplaySource>> source =
        kernel::ReplaySource::FromBytes(ReadData("ss_tan.dump"), "ss_tan");
    ASSERT_TRUE(source.ok()) << source.status();
    source_ = *std::move(source);
    hub_ = std::make_unique<WatchHub>(
        source_.get(), WatchOptions{}, std::make_unique<ScriptedReader>(script_),
        [](const v1::Connection&) -> absl::StatusOr<std::optional<v1::Connection>> { return std::nullopt; });
  }

  std::shared_ptr<Script> script_ = std::make_shared<Script>();
  std::unique_ptr<kernel::ReplaySource> source_;
  std::unique_ptr<WatchHub> hub_;  // after source_: destroyed first
};

// Ten watchers arriving at once at a polling hub that holds no table cost
// one dump, not ten, and all start from the same table.
TEST(WatchHubPollTest, SubscribersArrivingTogetherShareOneDump) {
  absl::StatusOr<std::unique_ptr<kernel::ReplaySource>> replay =
      kernel::ReplaySource::FromBytes(ReadData("ss_tan.dump"), "ss_tan");
  ASSERT_TRUE(replay.ok()) << replay.status();
  CountingSource source(replay->get(), absl::Milliseconds(200));
  WatchOptions options;
  options.poll_interval = absl::Hours(1);  // no poll during the test
  WatchHub hub(&source, options);
  constexpr int kWatchers = 10;
  std::vector<absl::StatusOr<std::pair<std::shared_ptr<WatchHub::Subscription>, std::shared_ptr<const Snapshot>>>>
      got(kWatchers, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kWatchers; ++i) threads.emplace_back([&, i] { got[i] = hub.Subscribe(nullptr); });
  for (auto& t : threads) t.join();
  for (const auto& g : got) {
    ASSERT_TRUE(g.ok()) << g.status();
    EXPECT_EQ(g->second.get(), got[0]->second.get()) << "two watchers started from different tables";
  }
  EXPECT_GT(got[0]->second->size(), 0);
  EXPECT_EQ(source.dumps(), 1);
  for (const auto& g : got) hub.Unsubscribe(g->first);
}

TEST_F(WatchHubTest, SkippedRecordsAreMadeUpForByADump) {
  WatchHub& hub = *hub_;
  Script* script = script_.get();
  auto subscribed = hub.Subscribe(nullptr);
  ASSERT_TRUE(subscribed.ok()) << subscribed.status();
  WatchHub::Subscription* sub = subscribed->first.get();
  const v1::Connection* est = AnEstablishedSocket(*subscribed->second);
  ASSERT_NE(est, nullptr) << "the recording has an established socket";

  // A record says it closed; the recording (the "kernel") still has it.
  RecordClose(script, est->cookie());
  std::vector<std::shared_ptr<const HubEvent>> got = NextEvents(sub, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]->kind, HubEvent::Kind::kRemoved);
  EXPECT_FALSE(got[0]->found_by_dump);
  // With no skipped records, no dump is compared: nothing more comes.
  got.clear();
  EXPECT_TRUE(sub->Next(absl::Milliseconds(300), &got));
  EXPECT_TRUE(got.empty());

  // The kernel reports a skipped record: the next dump is compared with what
  // the hub knows, and the socket it still holds comes back.
  {
    absl::MutexLock l(&script->mu);
    script->missed = 1;
  }
  got = NextEvents(sub, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]->kind, HubEvent::Kind::kAdded);
  EXPECT_TRUE(got[0]->found_by_dump);
  EXPECT_EQ(got[0]->after->cookie(), est->cookie());
  EXPECT_EQ(got[0]->after->local().port(), est->local().port());
  // Once: the count has not moved since.
  got.clear();
  EXPECT_TRUE(sub->Next(absl::Milliseconds(300), &got));
  EXPECT_TRUE(got.empty());
  hub.Unsubscribe(subscribed->first);
}

// A watcher arriving while the previous one still holds its table, with no
// event sent in between, starts from that table; after an event, or once
// the table is let go, it gets a dump of its own.
TEST(WatchHubBpfTest, ANewcomerSharesTheDumpUntilAnEventIsSent) {
  absl::StatusOr<std::unique_ptr<kernel::ReplaySource>> replay =
      kernel::ReplaySource::FromBytes(ReadData("ss_tan.dump"), "ss_tan");
  ASSERT_TRUE(replay.ok()) << replay.status();
  CountingSource source(replay->get(), absl::ZeroDuration());
  auto script = std::make_shared<Script>();
  WatchHub hub(&source, WatchOptions{}, std::make_unique<ScriptedReader>(script),
               [](const v1::Connection&) -> absl::StatusOr<std::optional<v1::Connection>> { return std::nullopt; });
  auto a = hub.Subscribe(nullptr);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(source.dumps(), 1);
  const v1::Connection* est = AnEstablishedSocket(*a->second);
  ASSERT_NE(est, nullptr) << "the recording has an established socket";
  // A close the kernel records after a's dump but the hub reads only after b
  // has joined: b starts where a did, so it must hear of it too.
  const uint64_t closed_at = kernel::MonotonicNowNs();
  absl::SleepFor(absl::Milliseconds(2));
  auto b = hub.Subscribe(nullptr);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(source.dumps(), 1) << "the second watcher dumped again";
  EXPECT_EQ(b->second.get(), a->second.get());
  EXPECT_EQ(b->first->snapshot_time(), a->first->snapshot_time());
  RecordClose(script.get(), est->cookie(), closed_at);
  for (auto* s : {a->first.get(), b->first.get()}) {
    std::vector<std::shared_ptr<const HubEvent>> got = NextEvents(s, 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0]->kind, HubEvent::Kind::kRemoved);
    EXPECT_EQ(got[0]->before->cookie(), est->cookie());
  }
  // The table a holds no longer says where the watchers are.
  auto c = hub.Subscribe(nullptr);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(source.dumps(), 2);
  EXPECT_NE(c->second.get(), a->second.get());
  // Once every stream has let its table go, a newcomer dumps.
  a->second.reset();
  b->second.reset();
  c->second.reset();
  auto d = hub.Subscribe(nullptr);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(source.dumps(), 3);
  for (auto* s : {&a, &b, &c, &d}) hub.Unsubscribe((*s)->first);
}

// The programs run only while someone watches, and an idle hub's thread
// sleeps (it does not poll the ring buffer).
TEST_F(WatchHubTest, ProgramsAreAttachedOnlyWhileSomeoneWatches) {
  WatchHub& hub = *hub_;
  Script* script = script_.get();
  auto state = [&] {
    absl::MutexLock l(&script->mu);
    return std::make_tuple(script->attached, script->attaches, script->polls);
  };
  auto wait_detached = [&] {
    const absl::Time end = absl::Now() + absl::Seconds(5);
    while (std::get<0>(state()) && absl::Now() < end) absl::SleepFor(absl::Milliseconds(10));
    return !std::get<0>(state());
  };
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_FALSE(std::get<0>(state())) << "attached with nobody watching";
  const int idle_polls = std::get<2>(state());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_LE(std::get<2>(state()), idle_polls + 1) << "an idle hub keeps polling";

  auto a = hub.Subscribe(nullptr);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(std::get<0>(state()));
  auto b = hub.Subscribe(nullptr);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(std::get<1>(state()), 1) << "a second watcher attached again";
  hub.Unsubscribe(a->first);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_TRUE(std::get<0>(state())) << "detached while a watcher remains";
  hub.Unsubscribe(b->first);
  EXPECT_TRUE(wait_detached()) << "still attached after the last watcher left";

  // A new watcher attaches them again.
  auto c = hub.Subscribe(nullptr);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(std::get<0>(state()));
  EXPECT_EQ(std::get<1>(state()), 2);
  hub.Unsubscribe(c->first);
  EXPECT_TRUE(wait_detached());
}

}  // namespace
}  // namespace tcbscope
