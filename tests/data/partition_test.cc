#include "common/data/partition.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "common/util/error.h"

namespace fedmed {
namespace {

// n labels of `num_classes` classes with unequal class sizes (class c has weight c + 1).
std::vector<int64_t> MakeLabels(int64_t n, int64_t num_classes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int64_t total_weight = num_classes * (num_classes + 1) / 2;
  std::vector<int64_t> labels(n);
  for (int64_t& label : labels) {
    int64_t r = static_cast<int64_t>(rng() % total_weight);
    label = 0;
    while (r >= label + 1) r -= ++label;
  }
  return labels;
}

PartitionSpec Spec(PartitionScheme scheme, int sites, double alpha, uint64_t seed) {
  PartitionSpec spec;
  spec.scheme = scheme;
  spec.num_sites = sites;
  spec.alpha = alpha;
  spec.seed = seed;
  return spec;
}

// Every index 0..n-1 appears in exactly one site, and each site is sorted ascending.
void ExpectExactCover(const std::vector<std::vector<int64_t>>& sites, int64_t n) {
  std::vector<int> seen(n, 0);
  for (const auto& site : sites) {
    EXPECT_TRUE(std::is_sorted(site.begin(), site.end()));
    for (int64_t i : site) {
      ASSERT_GE(i, 0);
      ASSERT_LT(i, n);
      ++seen[i];
    }
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), n);
}

// Mean over sites of the total-variation distance between the site's label distribution and the
// global one (0 = every site looks like the whole; 1 = disjoint).
double MeanLabelSkew(const std::vector<std::vector<int64_t>>& sites,
                     const std::vector<int64_t>& labels, int64_t num_classes) {
  std::vector<double> global(num_classes, 0.0);
  for (int64_t l : labels) global[l] += 1.0 / labels.size();
  double total = 0;
  for (const auto& site : sites) {
    std::vector<double> local(num_classes, 0.0);
    for (int64_t i : site) local[labels[i]] += 1.0 / site.size();
    double tv = 0;
    for (int64_t c = 0; c < num_classes; ++c) tv += 0.5 * std::abs(local[c] - global[c]);
    total += tv;
  }
  return total / sites.size();
}

TEST(PartitionTest, EveryIndexExactlyOnceForEveryScheme) {
  const std::vector<int64_t> labels = MakeLabels(2000, 10, 1);
  for (PartitionScheme scheme :
       {PartitionScheme::kIid, PartitionScheme::kDirichlet, PartitionScheme::kQuantitySkew}) {
    for (int sites : {1, 3, 10}) {
      SCOPED_TRACE(std::string(PartitionSchemeName(scheme)) + " " + std::to_string(sites));
      const auto parts = PartitionIndices(labels, 10, Spec(scheme, sites, 0.5, 7));
      ASSERT_EQ(parts.size(), static_cast<size_t>(sites));
      ExpectExactCover(parts, 2000);
      for (const auto& site : parts) EXPECT_GE(site.size(), 10u);
    }
  }
}

TEST(PartitionTest, IidShardsAreBalancedAndShuffled) {
  const std::vector<int64_t> labels = MakeLabels(1003, 4, 2);
  const auto parts = PartitionIndices(labels, 4, Spec(PartitionScheme::kIid, 4, 0.5, 3));
  ExpectExactCover(parts, 1003);
  for (size_t j = 0; j < parts.size(); ++j) {
    EXPECT_EQ(parts[j].size(), j < 3 ? 251u : 250u);
    // Shuffled, not contiguous ranges: every site spans most of the index range.
    EXPECT_LT(parts[j].front(), 50);
    EXPECT_GT(parts[j].back(), 950);
  }
  EXPECT_LT(MeanLabelSkew(parts, labels, 4), 0.08);
}

TEST(PartitionTest, SameSeedSamePartitionOtherSeedDifferent) {
  const std::vector<int64_t> labels = MakeLabels(1500, 5, 3);
  for (PartitionScheme scheme :
       {PartitionScheme::kIid, PartitionScheme::kDirichlet, PartitionScheme::kQuantitySkew}) {
    SCOPED_TRACE(PartitionSchemeName(scheme));
    const auto a = PartitionIndices(labels, 5, Spec(scheme, 6, 0.5, 42));
    const auto b = PartitionIndices(labels, 5, Spec(scheme, 6, 0.5, 42));
    const auto c = PartitionIndices(labels, 5, Spec(scheme, 6, 0.5, 43));
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
  }
}

TEST(PartitionTest, SmallDirichletAlphaIsMuchMoreSkewedThanLarge) {
  const std::vector<int64_t> labels = MakeLabels(5000, 10, 4);
  double skew_small = 0, skew_large = 0;
  for (uint64_t seed = 0; seed < 5; ++seed) {
    skew_small += MeanLabelSkew(
        PartitionIndices(labels, 10, Spec(PartitionScheme::kDirichlet, 10, 0.1, seed)), labels,
        10) / 5;
    skew_large += MeanLabelSkew(
        PartitionIndices(labels, 10, Spec(PartitionScheme::kDirichlet, 10, 100.0, seed)), labels,
        10) / 5;
  }
  // With alpha = 0.1 most sites hold one or two classes; with alpha = 100 every site's label
  // distribution is within a few percent of the global one.
  EXPECT_GT(skew_small, 0.5);
  EXPECT_LT(skew_large, 0.1);
}

TEST(PartitionTest, DirichletOnTwoClassesLikePneumoniaMnist) {
  // 1214 normal, 3494 pneumonia, as in PneumoniaMNIST's training split.
  std::vector<int64_t> labels(1214, 0);
  labels.resize(4708, 1);
  const auto parts =
      PartitionIndices(labels, 2, Spec(PartitionScheme::kDirichlet, 5, 0.3, 11));
  ExpectExactCover(parts, 4708);
  double min_normal = 1, max_normal = 0;
  for (const auto& site : parts) {
    EXPECT_GE(site.size(), 10u);
    const double normal =
        std::count_if(site.begin(), site.end(), [&](int64_t i) { return labels[i] == 0; }) /
        static_cast<double>(site.size());
    min_normal = std::min(min_normal, normal);
    max_normal = std::max(max_normal, normal);
  }
  EXPECT_GT(max_normal - min_normal, 0.3);  // the global share is 0.26
}

TEST(PartitionTest, QuantitySkewSizesVaryLabelsDoNot) {
  const std::vector<int64_t> labels = MakeLabels(4000, 4, 5);
  const auto parts =
      PartitionIndices(labels, 4, Spec(PartitionScheme::kQuantitySkew, 8, 0.5, 9));
  ExpectExactCover(parts, 4000);
  size_t smallest = parts[0].size(), largest = parts[0].size();
  for (const auto& site : parts) {
    smallest = std::min(smallest, site.size());
    largest = std::max(largest, site.size());
  }
  EXPECT_GE(smallest, 10u);
  EXPECT_GT(largest, 3 * smallest);
  // Large sites are IID samples of the whole.
  for (const auto& site : parts) {
    if (site.size() < 400) continue;
    EXPECT_LT(MeanLabelSkew({site}, labels, 4), 0.1);
  }
}

TEST(PartitionTest, ShardIndicesIsThePartitionsShard) {
  const std::vector<int64_t> labels = MakeLabels(800, 3, 6);
  const PartitionSpec spec = Spec(PartitionScheme::kDirichlet, 4, 1.0, 5);
  const auto parts = PartitionIndices(labels, 3, spec);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(ShardIndices(labels, 3, spec, k), parts[k]);
  EXPECT_THROW(ShardIndices(labels, 3, spec, 4), ConfigError);
  EXPECT_THROW(ShardIndices(labels, 3, spec, -1), ConfigError);
}

TEST(PartitionTest, BadArgumentsThrow) {
  const std::vector<int64_t> labels = MakeLabels(100, 2, 7);
  EXPECT_THROW(PartitionIndices(labels, 2, Spec(PartitionScheme::kIid, 0, 0.5, 0)), ConfigError);
  EXPECT_THROW(PartitionIndices(labels, 2, Spec(PartitionScheme::kDirichlet, 2, 0.0, 0)),
               ConfigError);
  EXPECT_THROW(PartitionIndices(labels, 2, Spec(PartitionScheme::kQuantitySkew, 2, -1.0, 0)),
               ConfigError);
  EXPECT_THROW(PartitionIndices(labels, 2, Spec(PartitionScheme::kDirichlet, 2, NAN, 0)),
               ConfigError);
  // 100 samples cannot give 11 sites 10 each.
  EXPECT_THROW(PartitionIndices(labels, 2, Spec(PartitionScheme::kIid, 11, 0.5, 0)), ConfigError);
  PartitionSpec negative_min = Spec(PartitionScheme::kIid, 2, 0.5, 0);
  negative_min.min_samples_per_site = -1;
  EXPECT_THROW(PartitionIndices(labels, 2, negative_min), ConfigError);
  // A label outside [0, num_classes) is a data problem.
  EXPECT_THROW(PartitionIndices(labels, 1, Spec(PartitionScheme::kIid, 2, 0.5, 0)), DataError);
}

TEST(PartitionTest, ImpossibleDirichletGivesUpWithConfigError) {
  // Two classes, 20 sites, alpha 0.01: nearly every class lands on one site, so 18 sites stay
  // empty in every draw.
  std::vector<int64_t> labels(2000, 0);
  std::fill(labels.begin() + 1000, labels.end(), 1);
  try {
    PartitionIndices(labels, 2, Spec(PartitionScheme::kDirichlet, 20, 0.01, 1));
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("too small"), std::string::npos) << e.what();
  }
}

TEST(PartitionTest, SchemeNames) {
  EXPECT_EQ(ParsePartitionScheme("iid"), PartitionScheme::kIid);
  EXPECT_EQ(ParsePartitionScheme("dirichlet"), PartitionScheme::kDirichlet);
  EXPECT_EQ(ParsePartitionScheme("quantity"), PartitionScheme::kQuantitySkew);
  try {
    ParsePartitionScheme("label_skew");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("iid, dirichlet, quantity"), std::string::npos);
  }
}

}  // namespace
}  // namespace fedmed
