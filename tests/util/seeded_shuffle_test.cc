// SeededShuffle and UniformBelow: permutations, reproducibility, and golden values that catch any
// change of algorithm (partitions, site sampling and the SecAgg+ ring depend on them bit for bit).
#include "common/util/seeded_shuffle.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace fedmed {
namespace {

std::vector<int> Iota(int n) {
  std::vector<int> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

TEST(SeededShuffleTest, IsAPermutation) {
  for (int n : {0, 1, 2, 3, 10, 1000}) {
    std::vector<int> v = Iota(n);
    SeededShuffle(&v, uint64_t{42});
    std::vector<int> sorted = v;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, Iota(n)) << "n = " << n;
  }
}

TEST(SeededShuffleTest, SameSeedSameOrderOtherSeedOtherOrder) {
  std::vector<int> a = Iota(50), b = Iota(50), c = Iota(50);
  SeededShuffle(&a, uint64_t{7});
  SeededShuffle(&b, uint64_t{7});
  SeededShuffle(&c, uint64_t{8});
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, Iota(50));
}

TEST(SeededShuffleTest, EngineOverloadContinuesTheEngine) {
  // Shuffling from an engine is the same as from a fresh engine with its seed, and leaves the
  // engine advanced, so later draws differ from the first ones.
  std::mt19937_64 engine(7);
  std::vector<int> a = Iota(20), b = Iota(20), again = Iota(20);
  SeededShuffle(&a, engine);
  SeededShuffle(&b, uint64_t{7});
  EXPECT_EQ(a, b);
  SeededShuffle(&again, engine);
  EXPECT_NE(again, b);
}

TEST(SeededShuffleTest, WorksOnAnyElementType) {
  std::vector<std::string> names = {"a", "b", "c", "d", "e", "f"};
  SeededShuffle(&names, uint64_t{1});
  std::vector<std::string> sorted = names;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<std::string>{"a", "b", "c", "d", "e", "f"}));
}

// Golden values: computed once with this implementation on x86-64 (libstdc++). They must hold on
// every platform and standard library; if they change, partitions and the demo's metrics change.
TEST(SeededShuffleTest, GoldenValues) {
  std::vector<int> v = Iota(10);
  SeededShuffle(&v, uint64_t{0});
  EXPECT_EQ(v, (std::vector<int>{7, 2, 0, 8, 3, 9, 6, 1, 5, 4}));
  std::vector<int> w = Iota(10);
  SeededShuffle(&w, uint64_t{12345});
  EXPECT_EQ(w, (std::vector<int>{3, 1, 7, 4, 9, 2, 0, 8, 5, 6}));

  std::mt19937_64 engine(0);
  std::vector<uint64_t> draws;
  // The last bound rejects about half of all draws (2^64 mod n = 2^63 - 1).
  for (uint64_t n : {uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{10}, uint64_t{1000},
                     uint64_t{0x8000000000000001}}) {
    draws.push_back(UniformBelow(engine, n));
  }
  EXPECT_EQ(draws, (std::vector<uint64_t>{0, 1, 1, 8, 596, 2426270263016087854ull}));
}

TEST(SeededShuffleTest, UniformBelowIsInRangeAndRoughlyUniform) {
  std::mt19937_64 engine(3);
  std::map<uint64_t, int> counts;
  for (int i = 0; i < 60000; ++i) {
    const uint64_t r = UniformBelow(engine, 6);
    ASSERT_LT(r, 6u);
    ++counts[r];
  }
  for (const auto& [value, count] : counts) {
    EXPECT_NEAR(count, 10000, 500) << value;  // about 5 standard deviations
  }
  // Every position is reached by the first element of a shuffle.
  std::vector<int> first_at(5, 0);
  for (uint64_t seed = 0; seed < 5000; ++seed) {
    std::vector<int> v = Iota(5);
    SeededShuffle(&v, seed);
    ++first_at[static_cast<size_t>(std::find(v.begin(), v.end(), 0) - v.begin())];
  }
  for (int count : first_at) EXPECT_NEAR(count, 1000, 160);
}

}  // namespace
}  // namespace fedmed
