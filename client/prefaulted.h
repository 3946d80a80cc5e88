// Memory for data the client fills at once and keeps until it exits (a
// 100k-connection snapshot's messages, the JSON text of a listing): large
// blocks are mapped with their pages already in place, one MAP_POPULATE call
// instead of a page fault per 4 KiB. At 100k connections the faults were a
// seventh of `correlate`'s CPU (docs/performance.md).
//
// Transparent huge pages would save the zeroing too, but asking for them
// (MADV_HUGEPAGE) made the kernel compact memory in the fault path on a busy
// machine: system time went from 0.02 s to 0.47 s from one run to the next.
#ifndef TCBSCOPE_CLIENT_PREFAULTED_H_
#define TCBSCOPE_CLIENT_PREFAULTED_H_

#include <cstddef>

#include "google/protobuf/arena.h"

namespace tcbscope {

// Blocks of at least this size are mapped; smaller ones come from malloc.
constexpr size_t kPrefaultedMinimum = 1 << 20;

// Like malloc (null on failure). REQUIRES: FreePrefaulted with the same size.
void* AllocatePrefaulted(size_t size);
void FreePrefaulted(void* p, size_t size);

// An arena that grows in blocks of up to 4 MiB from AllocatePrefaulted.
google::protobuf::ArenaOptions PrefaultedArenaOptions();

}  // namespace tcbscope

#endif  // TCBSCOPE_CLIENT_PREFAULTED_H_
