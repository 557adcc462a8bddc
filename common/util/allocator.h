// How the C library's allocator (glibc malloc) treats the large, short-lived buffers of training.
//
// A training step of the zoo cnn allocates and frees tens of activation and gradient buffers of
// 0.1-5 MB each. With glibc's defaults, buffers above the mmap threshold (128 KiB at first) are
// mmap'ed and munmap'ed on every step, and freed memory at the top of a heap is given back to the
// kernel once it exceeds the trim threshold; each step then faults the same pages in again, and
// the kernel zeroes them. On the like-for-like bench job (docs/BENCHMARKS.md, 2 cores) that was
// 7.5 s of system time in a 23.4 s run; with these settings the run took 19.0 s, with the same
// metrics.
//
// KeepFreedMemoryForReuse() sets both thresholds (mallopt(3) M_MMAP_THRESHOLD, M_TRIM_THRESHOLD)
// so that freed buffers stay in the process and are reused by the next step. The cost is that
// the process keeps its peak heap: its resident memory stays at the peak a round reached (the
// peak RSS the simulator reports is unchanged), also while it waits for the next round.
#ifndef FEDMED_COMMON_UTIL_ALLOCATOR_H_
#define FEDMED_COMMON_UTIL_ALLOCATOR_H_

#include <cstddef>

namespace fedmed {

// mmap only allocations of at least kMmapThresholdBytes (32 MiB: glibc's largest allowed value,
// HEAP_MAX_SIZE / 2 on 64-bit), and give memory at the top of a heap back to the kernel only past
// kTrimThresholdBytes. Process-wide; call once at the start of main, before threads start. Both
// settings are hints: a C library that rejects them (mallopt returns 0) leaves its defaults, and
// this function does not fail.
inline constexpr size_t kMmapThresholdBytes = size_t{32} << 20;
inline constexpr size_t kTrimThresholdBytes = size_t{1} << 30;
void KeepFreedMemoryForReuse();

}  // namespace fedmed

#endif  // FEDMED_COMMON_UTIL_ALLOCATOR_H_
