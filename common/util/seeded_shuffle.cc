#include "common/util/seeded_shuffle.h"

namespace fedmed {

uint64_t UniformBelow(std::mt19937_64& engine, uint64_t n) {
  const uint64_t threshold = (0 - n) % n;  // 2^64 mod n
  while (true) {
    const uint64_t r = engine();
    if (r >= threshold) return r % n;
  }
}

}  // namespace fedmed
