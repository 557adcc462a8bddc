// Seeded, portable shuffling: the one way fedmed permutes things reproducibly (the partition of
// a data set across sites, the sites sampled for a round, the SecAgg+ neighbour ring).
//
// Everything here is driven by std::mt19937_64, whose output sequence for a given seed the C++
// standard fixes ([rand.predef]: default-seeded, its 10000th value is 9981545732273789042), and
// uses only its raw 64-bit output, never std::uniform_int_distribution or std::shuffle, whose
// algorithms differ between standard libraries (libstdc++, libc++, MSVC). So a seed gives the
// same permutation on every platform and compiler, and results that depend on it (a
// federation's partitions, its metrics) are reproducible anywhere.
//
// Do not change the algorithms below: the demo's partitions, and so its metrics, depend on them
// bit for bit (tests/util/seeded_shuffle_test.cc pins golden values).
#ifndef FEDMED_COMMON_UTIL_SEEDED_SHUFFLE_H_
#define FEDMED_COMMON_UTIL_SEEDED_SHUFFLE_H_

#include <cstddef>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace fedmed {

// A uniform integer in [0, n), n >= 1, from `engine`'s raw output by rejection: draws r until
// r >= 2^64 mod n and returns r mod n, so there is no modulo bias. Consumes one draw, or (with
// probability below n / 2^64) more. n = 0 is a programming error (undefined).
uint64_t UniformBelow(std::mt19937_64& engine, uint64_t n);

// Shuffles `items` in place with the Fisher-Yates shuffle (Knuth's Algorithm P), from the back:
// for i = size down to 2, swap items[i - 1] with items[UniformBelow(engine, i)]. Every
// permutation is equally likely; it consumes about size - 1 draws of `engine`, so callers that
// draw other variates from the same engine keep a fixed order of draws.
template <typename T>
void SeededShuffle(std::vector<T>* items, std::mt19937_64& engine) {
  for (size_t i = items->size(); i > 1; --i) {
    using std::swap;
    swap((*items)[i - 1], (*items)[static_cast<size_t>(UniformBelow(engine, i))]);
  }
}

// The same with a fresh engine: std::mt19937_64(seed). The same seed and items give the same
// order on every platform.
template <typename T>
void SeededShuffle(std::vector<T>* items, uint64_t seed) {
  std::mt19937_64 engine(seed);
  SeededShuffle(items, engine);
}

}  // namespace fedmed

#endif  // FEDMED_COMMON_UTIL_SEEDED_SHUFFLE_H_
