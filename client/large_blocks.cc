#include "client/large_blocks.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>

namespace tcbscope {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

size_t Mapped(size_t size) { return (size + kHugePage - 1) & ~(kHugePage - 1); }

}  // namespace

void* AllocateLargeBlock(size_t size) {
  if (size < kLargeBlockMinimum) return malloc(size);
  if (size > SIZE_MAX - 2 * kHugePage) return nullptr;  // Mapped() and the slack would wrap
  const size_t want = Mapped(size);
  // Map a huge page more than needed and unmap the ends, so the block starts
  // on a 2 MiB boundary (only whole, aligned huge pages can back it).
  void* m = mmap(nullptr, want + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(m);
  const uintptr_t aligned = (start + kHugePage - 1) & ~(uintptr_t{kHugePage} - 1);
  const size_t head = aligned - start;  // the slack before the block; the rest of it follows
  if (head > 0) munmap(m, head);
  munmap(reinterpret_cast<void*>(aligned + want), kHugePage - head);
  void* p = reinterpret_cast<void*>(aligned);
  madvise(p, want, MADV_HUGEPAGE);  // a hint: without THP the block is still good memory
  return p;
}

void FreeLargeBlock(void* p, size_t size) {
  if (p == nullptr) return;
  if (size < kLargeBlockMinimum) {
    free(p);
  } else {
    munmap(p, Mapped(size));
  }
}

google::protobuf::ArenaOptions LargeBlockArenaOptions() {
  google::protobuf::ArenaOptions o;
  o.start_block_size = kLargeBlockMinimum;
  o.max_block_size = 4 << 20;
  o.block_alloc = AllocateLargeBlock;
  o.block_dealloc = FreeLargeBlock;
  return o;
}

}  // namespace tcbscope
