// The watch stream's messages from hub events: one a change unpacked; packed,
// consecutive changes share a message within bounds, and numbering and times
// are those each change would have had alone.
#include "agent/watch_messages.h"

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "common/proto_time.h"
#include "gtest/gtest.h"

namespace tcbscope {
namespace {

std::shared_ptr<const HubEvent> Added(int port, int second, size_t padding = 0) {
  auto c = std::make_shared<v1::Connection>();
  c->mutable_local()->set_address("127.0.0.1");
  c->mutable_local()->set_port(static_cast<uint32_t>(port));
  c->set_state(v1::TCP_STATE_ESTABLISHED);
  if (padding > 0) c->set_netns_name(std::string(padding, 'n'));
  auto e = std::make_shared<HubEvent>();
  e->kind = HubEvent::Kind::kAdded;
  e->time = absl::FromUnixSeconds(second);
  e->after = std::move(c);
  return e;
}

// The events of `messages` in stream order, as a client reading `following`
// sees them: (sequence, port, seconds).
std::vector<std::tuple<uint64_t, uint32_t, int64_t>> Flatten(const std::vector<v1::WatchEvent>& messages) {
  std::vector<std::tuple<uint64_t, uint32_t, int64_t>> out;
  auto one = [&](const v1::WatchEvent& e) {
    out.emplace_back(e.sequence(), e.added().local().port(), e.time().seconds());
  };
  for (const v1::WatchEvent& m : messages) {
    one(m);
    for (const v1::WatchEvent& f : m.following()) {
      EXPECT_EQ(f.following_size(), 0) << "only the top level carries following";
      one(f);
    }
  }
  return out;
}

std::vector<v1::WatchEvent> AllMessages(const HubEvents& events, bool packed, uint64_t* sequence) {
  std::vector<v1::WatchEvent> out;
  for (size_t i = 0; i < events.size();) {
    const size_t next = NextWatchMessage(events, i, packed, sequence, &out.emplace_back());
    EXPECT_GT(next, i);
    i = next;
  }
  return out;
}

TEST(WatchMessagesTest, UnpackedIsOneMessageEachChange) {
  HubEvents events = {Added(1000, 10), Added(1001, 11), Added(1002, 12)};
  uint64_t sequence = 7;
  const std::vector<v1::WatchEvent> m = AllMessages(events, false, &sequence);
  ASSERT_EQ(m.size(), 3u);
  for (const v1::WatchEvent& e : m) EXPECT_EQ(e.following_size(), 0);
  EXPECT_EQ(sequence, 10u);
  EXPECT_EQ(Flatten(m), (std::vector<std::tuple<uint64_t, uint32_t, int64_t>>{
                            {8, 1000, 10}, {9, 1001, 11}, {10, 1002, 12}}));
}

TEST(WatchMessagesTest, PackedSharesOneMessageAndKeepsEachChangesNumberAndTime) {
  HubEvents events = {Added(1000, 10), Added(1001, 11), Added(1002, 12)};
  uint64_t packed_seq = 7, unpacked_seq = 7;
  const std::vector<v1::WatchEvent> packed = AllMessages(events, true, &packed_seq);
  ASSERT_EQ(packed.size(), 1u);
  EXPECT_EQ(packed[0].following_size(), 2);
  EXPECT_EQ(Flatten(packed), Flatten(AllMessages(events, false, &unpacked_seq)));
  EXPECT_EQ(packed_seq, unpacked_seq);
}

TEST(WatchMessagesTest, PackingStopsAtTheEventBound) {
  HubEvents events;
  for (size_t i = 0; i < 2 * kMaxPackedEvents + 3; ++i) events.push_back(Added(static_cast<int>(i), 1));
  uint64_t sequence = 0;
  const std::vector<v1::WatchEvent> m = AllMessages(events, true, &sequence);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(static_cast<size_t>(m[0].following_size()) + 1, kMaxPackedEvents);
  EXPECT_EQ(static_cast<size_t>(m[1].following_size()) + 1, kMaxPackedEvents);
  EXPECT_EQ(m[2].following_size(), 2);
  EXPECT_EQ(Flatten(m).size(), events.size());
  EXPECT_EQ(sequence, events.size());
}

TEST(WatchMessagesTest, PackingStopsAtTheByteBound) {
  // Each event ~20 KiB: a message closes once it passes the byte bound.
  constexpr size_t kPadding = 20 << 10;
  HubEvents events;
  for (int i = 0; i < 40; ++i) events.push_back(Added(i, 1, kPadding));
  uint64_t sequence = 0;
  const std::vector<v1::WatchEvent> m = AllMessages(events, true, &sequence);
  ASSERT_GT(m.size(), 1u);
  for (const v1::WatchEvent& e : m) {
    EXPECT_LT(e.ByteSizeLong(), kMaxPackedBytes + 2 * kPadding);
  }
  EXPECT_EQ(Flatten(m).size(), events.size());
}

TEST(WatchMessagesTest, EveryKindIsFilled) {
  auto conn = std::make_shared<v1::Connection>();
  conn->set_state(v1::TCP_STATE_CLOSE_WAIT);
  auto before = std::make_shared<v1::Connection>();
  before->set_state(v1::TCP_STATE_ESTABLISHED);
  HubEvent changed;
  changed.kind = HubEvent::Kind::kChanged;
  changed.before = before;
  changed.after = conn;
  changed.fields = {"state"};
  changed.found_by_dump = true;
  changed.time = absl::FromUnixSeconds(5);
  v1::WatchEvent e;
  FillWatchEvent(changed, &e);
  EXPECT_EQ(e.changed().old().state(), v1::TCP_STATE_ESTABLISHED);
  EXPECT_EQ(e.changed().new_().state(), v1::TCP_STATE_CLOSE_WAIT);
  EXPECT_EQ(e.changed().changed_fields_size(), 1);
  EXPECT_TRUE(e.found_by_dump());
  EXPECT_EQ(e.time().seconds(), 5);

  HubEvent removed;
  removed.kind = HubEvent::Kind::kRemoved;
  removed.before = before;
  v1::WatchEvent r;
  FillWatchEvent(removed, &r);
  EXPECT_TRUE(r.has_removed());

  HubEvent seg;
  seg.kind = HubEvent::Kind::kSegment;
  seg.after = conn;
  seg.segment = v1::SegmentEvent::RESET_SENT;
  seg.reason = "NO_SOCKET";
  seg.count = 1;
  seg.seq = 42;
  v1::WatchEvent s;
  FillWatchEvent(seg, &s);
  EXPECT_EQ(s.segment().kind(), v1::SegmentEvent::RESET_SENT);
  EXPECT_EQ(s.segment().reason(), "NO_SOCKET");
  EXPECT_EQ(s.segment().seq(), 42u);
}

}  // namespace
}  // namespace tcbscope
