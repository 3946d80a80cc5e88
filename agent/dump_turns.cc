#include "agent/dump_turns.h"

#include <vector>

namespace tcbscope {

DumpTurns::DumpTurns(uint32_t limit, absl::Duration stall, Clock clock)
    : limit_(limit), stall_(stall), clock_(std::move(clock)) {}

DumpTurns::Turn::~Turn() { owner_->Release(this); }

void DumpTurns::Turn::Progress() { owner_->Touch(this); }

void DumpTurns::ExpireLocked(absl::Time now) {
  std::vector<const Turn*> stalled;
  for (const auto& [turn, last] : active_) {
    if (now - last > stall_) stalled.push_back(turn);
  }
  for (const Turn* t : stalled) active_.erase(t);
}

std::unique_ptr<DumpTurns::Turn> DumpTurns::TryTake() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_();
  ExpireLocked(now);
  if (active_.size() >= limit_) return nullptr;
  std::unique_ptr<Turn> t(new Turn(this));
  active_[t.get()] = now;
  return t;
}

std::unique_ptr<DumpTurns::Turn> DumpTurns::Take(const std::function<bool()>& give_up, absl::Duration poll) {
  for (;;) {
    if (std::unique_ptr<Turn> t = TryTake()) return t;
    if (give_up()) return nullptr;
    absl::MutexLock lock(&mu_);
    auto free = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return active_.size() < limit_; };
    mu_.AwaitWithTimeout(absl::Condition(&free), poll);
  }
}

void DumpTurns::Release(const Turn* t) {
  absl::MutexLock lock(&mu_);
  active_.erase(t);  // nothing when it had stalled and was dropped
}

void DumpTurns::Touch(const Turn* t) {
  absl::MutexLock lock(&mu_);
  // A turn dropped for stalling that moves again does not take a place back:
  // it would push the count past the limit.
  if (auto it = active_.find(t); it != active_.end()) it->second = clock_();
}

uint32_t DumpTurns::counted() const {
  absl::MutexLock lock(&mu_);
  return static_cast<uint32_t>(active_.size());
}

}  // namespace tcbscope
