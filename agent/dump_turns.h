// Turns to read the kernel's socket table: at most `limit` snapshots are
// produced at once, so a burst of callers costs `limit` batches and transport
// buffers, not one each. The others wait their turn.
//
// A turn that makes no progress for `stall` (its client stopped reading, so
// its writes block) stops counting: it goes on, but no longer keeps anyone
// waiting. A stalled client costs only its own blocked batch.
//
// Thread-safe. Time comes from a clock function so the rules are testable.
#ifndef TCBSCOPE_AGENT_DUMP_TURNS_H_
#define TCBSCOPE_AGENT_DUMP_TURNS_H_

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace tcbscope {

class DumpTurns {
 public:
  using Clock = std::function<absl::Time()>;
  DumpTurns(uint32_t limit, absl::Duration stall, Clock clock = [] { return absl::Now(); });

  // Held while a snapshot is produced; released when destroyed.
  class Turn {
   public:
    ~Turn();
    Turn(const Turn&) = delete;
    Turn& operator=(const Turn&) = delete;
    // Call after each batch is handed to the client: the turn is alive.
    void Progress();

   private:
    friend class DumpTurns;
    explicit Turn(DumpTurns* owner) : owner_(owner) {}
    DumpTurns* owner_;
  };

  // A turn now, or null when all are taken by turns that progress.
  std::unique_ptr<Turn> TryTake();
  // Waits for a turn, asking `give_up` now and then (every `poll`); null when
  // it said yes first.
  std::unique_ptr<Turn> Take(const std::function<bool()>& give_up, absl::Duration poll = absl::Milliseconds(50));

  uint32_t counted() const;  // turns that count against the limit now

 private:
  // Drops turns silent for longer than stall_ from the count.
  void ExpireLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Release(const Turn* t);
  void Touch(const Turn* t);

  const uint32_t limit_;
  const absl::Duration stall_;
  const Clock clock_;
  mutable absl::Mutex mu_;
  // Counted turns and when each last progressed.
  absl::flat_hash_map<const Turn*, absl::Time> active_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tcbscope

#endif  // TCBSCOPE_AGENT_DUMP_TURNS_H_
