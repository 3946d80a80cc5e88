#include "agent/watch_hub.h"

#include <algorithm>

#include "agent/kernel/inet_diag_parser.h"
#include "common/diff.h"

namespace tcbscope {

bool WatchHub::Subscription::Next(absl::Duration timeout, std::vector<std::shared_ptr<const HubEvent>>* out) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || overflowed_; };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (overflowed_) {
    overflowed_ = false;
    queue_.clear();
    return false;
  }
  out->insert(out->end(), std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
  queue_.clear();
  return true;
}

WatchHub::WatchHub(kernel::DiagSource* source, WatchOptions options)
    : source_(source), options_(options), poller_([this] { Run(); }) {}

WatchHub::~WatchHub() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (poller_.joinable()) poller_.join();
}

absl::StatusOr<std::shared_ptr<const Snapshot>> WatchHub::Dump() {
  absl::MutexLock lock(&dump_mu_);
  auto snap = std::make_shared<Snapshot>();
  kernel::DumpRequest req;
  req.states = kAllStates;
  req.tcp_info = true;  // change fields include the byte and segment counters
  absl::StatusOr<kernel::DumpResult> r = source_->Dump(req, [&](const nlmsghdr* m) {
    v1::Connection* c = snap->Add();
    if (!kernel::ParseInetDiagMessage(m, source_->netns(), c).ok()) snap->RemoveLast();
    return absl::OkStatus();
  });
  if (!r.ok()) return r.status();
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

absl::StatusOr<std::pair<std::shared_ptr<WatchHub::Subscription>, std::shared_ptr<const Snapshot>>>
WatchHub::Subscribe(std::function<bool(const HubEvent&)> wants) {
  std::shared_ptr<const Snapshot> base;
  {
    absl::MutexLock lock(&mu_);
    base = latest_;
  }
  if (!base) {
    absl::StatusOr<std::shared_ptr<const Snapshot>> fresh = Dump();
    if (!fresh.ok()) return fresh.status();
    absl::MutexLock lock(&mu_);
    if (!latest_) {
      latest_ = *fresh;
      latest_time_ = absl::Now();
    }
  }
  auto sub = std::make_shared<Subscription>();
  sub->limit_ = options_.queue_limit;
  sub->wants_ = std::move(wants);
  absl::MutexLock lock(&mu_);
  subs_.push_back(sub);
  return std::make_pair(sub, latest_);
}

void WatchHub::Unsubscribe(const std::shared_ptr<Subscription>& s) {
  absl::MutexLock lock(&mu_);
  subs_.erase(std::remove(subs_.begin(), subs_.end(), s), subs_.end());
}

std::shared_ptr<const Snapshot> WatchHub::LatestSnapshot() {
  absl::MutexLock lock(&mu_);
  return latest_;
}

absl::Time WatchHub::LatestTime() {
  absl::MutexLock lock(&mu_);
  return latest_time_;
}

size_t WatchHub::subscribers() {
  absl::MutexLock lock(&mu_);
  return subs_.size();
}

void WatchHub::Poll() {
  {
    absl::MutexLock lock(&mu_);
    if (subs_.empty()) {
      latest_.reset();  // nobody watches: hold no snapshot
      return;
    }
  }
  absl::StatusOr<std::shared_ptr<const Snapshot>> next = Dump();
  if (!next.ok()) return;  // a failed dump is retried at the next interval
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&mu_);
  std::shared_ptr<const Snapshot> prev = latest_;
  latest_ = *next;
  latest_time_ = now;
  if (!prev || subs_.empty()) return;
  // Diff under the lock so that a new subscriber's baseline and the events
  // it receives always fit together.
  SnapshotDiff d = DiffSnapshots(*prev, **next);
  if (d.empty()) return;
  std::vector<std::shared_ptr<const HubEvent>> events;
  events.reserve(d.added.size() + d.changed.size() + d.removed.size());
  for (const ConnectionChange& c : d.changed) {
    auto e = std::make_shared<HubEvent>();
    e->kind = HubEvent::Kind::kChanged;
    e->time = now;
    e->before = std::make_shared<const v1::Connection>(*c.before);
    e->after = std::make_shared<const v1::Connection>(*c.after);
    e->fields = c.fields;
    events.push_back(std::move(e));
  }
  for (const v1::Connection* c : d.added) {
    auto e = std::make_shared<HubEvent>();
    e->kind = HubEvent::Kind::kAdded;
    e->time = now;
    e->after = std::make_shared<const v1::Connection>(*c);
    events.push_back(std::move(e));
  }
  for (const v1::Connection* c : d.removed) {
    auto e = std::make_shared<HubEvent>();
    e->kind = HubEvent::Kind::kRemoved;
    e->time = now;
    e->before = std::make_shared<const v1::Connection>(*c);
    events.push_back(std::move(e));
  }
  for (const auto& sub : subs_) {
    absl::MutexLock sl(&sub->mu_);
    for (const auto& e : events) {
      if (sub->overflowed_) break;
      if (sub->wants_ && !sub->wants_(*e)) continue;
      if (sub->queue_.size() >= sub->limit_) {
        sub->overflowed_ = true;  // it will resync; drop what it had
        sub->queue_.clear();
        break;
      }
      sub->queue_.push_back(e);
    }
  }
}

void WatchHub::Run() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), options_.poll_interval)) return;
    }
    Poll();
  }
}

}  // namespace tcbscope
