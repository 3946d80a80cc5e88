#include "client/prefaulted.h"

#include <sys/mman.h>

#include <cstdlib>

namespace tcbscope {

void* AllocatePrefaulted(size_t size) {
  if (size < kPrefaultedMinimum) return malloc(size);
  void* m = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  return m == MAP_FAILED ? nullptr : m;
}

void FreePrefaulted(void* p, size_t size) {
  if (p == nullptr) return;
  if (size < kPrefaultedMinimum) {
    free(p);
  } else {
    munmap(p, size);
  }
}

google::protobuf::ArenaOptions PrefaultedArenaOptions() {
  google::protobuf::ArenaOptions o;
  o.start_block_size = 64 << 10;
  o.max_block_size = 4 << 20;
  o.block_alloc = AllocatePrefaulted;
  o.block_dealloc = FreePrefaulted;
  return o;
}

}  // namespace tcbscope
