#include "agent/watch_messages.h"

#include "common/proto_time.h"

namespace tcbscope {

void FillWatchEvent(const HubEvent& ev, v1::WatchEvent* out) {
  switch (ev.kind) {
    case HubEvent::Kind::kAdded:
      *out->mutable_added() = *ev.after;
      break;
    case HubEvent::Kind::kRemoved:
      *out->mutable_removed() = *ev.before;
      break;
    case HubEvent::Kind::kChanged: {
      v1::ConnectionChange* ch = out->mutable_changed();
      *ch->mutable_old() = *ev.before;
      *ch->mutable_new_() = *ev.after;
      for (const std::string& f : ev.fields) ch->add_changed_fields(f);
      break;
    }
    case HubEvent::Kind::kSegment: {
      v1::SegmentEvent* seg = out->mutable_segment();
      seg->set_kind(ev.segment);
      *seg->mutable_connection() = *ev.after;
      seg->set_seq(ev.seq);
      seg->set_count(ev.count);
      seg->set_reason(ev.reason);
      break;
    }
  }
  ToTimestamp(ev.time, out->mutable_time());
  out->set_found_by_dump(ev.found_by_dump);
}

size_t NextWatchMessage(const HubEvents& events, size_t from, bool packed, uint64_t* sequence, v1::WatchEvent* out) {
  FillWatchEvent(*events[from], out);
  out->set_sequence(++*sequence);
  size_t next = from + 1;
  if (!packed) return next;
  size_t bytes = out->ByteSizeLong();
  for (; next < events.size() && next - from < kMaxPackedEvents && bytes < kMaxPackedBytes; ++next) {
    v1::WatchEvent* e = out->add_following();
    FillWatchEvent(*events[next], e);
    e->set_sequence(++*sequence);
    bytes += e->ByteSizeLong();
  }
  return next;
}

}  // namespace tcbscope
