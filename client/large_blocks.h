// Memory for data the client fills once and keeps until it is done with it
// (two 100k-connection snapshots as Tcbs or messages, a 100k-row table):
// blocks of 2 MiB and more are mapped on 2 MiB boundaries and marked for
// transparent huge pages (MADV_HUGEPAGE), so the kernel backs them with one
// page per 2 MiB instead of 512.
//
// Why: on these VMs the first touch of a 4 KiB page costs ~20 µs (most of it
// outside the guest kernel, where the guest's page tables are shadowed), and
// at 100k connections `correlate` touched ~18k new pages. Touching 42 MiB
// measured 220 ms in 4 KiB pages, 163 ms with MAP_POPULATE, 4 ms in huge
// pages (docs/performance.md). Where THP is off ("never") the madvise is
// ignored and the blocks are ordinary memory.
//
// Thread-safe (no state). Sizes are bytes.
#ifndef TCBSCOPE_CLIENT_LARGE_BLOCKS_H_
#define TCBSCOPE_CLIENT_LARGE_BLOCKS_H_

#include <cstddef>
#include <cstdint>
#include <new>

#include "google/protobuf/arena.h"

namespace tcbscope {

// Blocks of at least this size are mapped; smaller ones come from malloc.
constexpr size_t kLargeBlockMinimum = size_t{2} << 20;

// Like malloc (null on failure). REQUIRES: FreeLargeBlock with the same size.
void* AllocateLargeBlock(size_t size);
void FreeLargeBlock(void* p, size_t size);

// An arena whose blocks are 2 MiB to 4 MiB, from AllocateLargeBlock. Its
// first block is already 2 MiB: each thread that allocates on an arena
// starts its own chain of blocks, and one that doubled up from 64 KiB
// touched ~2 MiB of 4 KiB pages per thread first (~500 page faults).
google::protobuf::ArenaOptions LargeBlockArenaOptions();

// A std allocator over AllocateLargeBlock, for a vector that may grow large:
// past 2 MiB each of its regrowths lands on huge pages.
template <typename T>
struct LargeBlockAllocator {
  using value_type = T;
  LargeBlockAllocator() = default;
  template <typename U>
  LargeBlockAllocator(const LargeBlockAllocator<U>&) {}  // NOLINT(google-explicit-constructor): std requires it
  T* allocate(size_t n) {
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_array_new_length();
    void* p = AllocateLargeBlock(n * sizeof(T));
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) { FreeLargeBlock(p, n * sizeof(T)); }
  friend bool operator==(const LargeBlockAllocator&, const LargeBlockAllocator&) { return true; }
  friend bool operator!=(const LargeBlockAllocator&, const LargeBlockAllocator&) { return false; }
};

}  // namespace tcbscope

#endif  // TCBSCOPE_CLIENT_LARGE_BLOCKS_H_
