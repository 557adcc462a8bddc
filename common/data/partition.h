// Splitting one data split across K sites, the way hospitals differ, reproducibly.
//
// Schemes (the non-IID ones follow NIID-Bench: Li, Diao, Chen, He, "Federated Learning on Non-IID
// Data Silos: An Experimental Study", ICDE 2022):
//   iid        shuffle, then K contiguous shards of equal size (sizes differ by at most 1).
//   dirichlet  label skew (Hsu, Qi, Brown 2019): for each class, draw p ~ Dir(alpha) over the
//              sites and split that class's shuffled indices by p (cut points floor(cumsum(p) *
//              n_class)). As in NIID-Bench, a site that already holds N/K or more samples gets no
//              share of later classes (p is renormalised over the others). The whole draw is
//              repeated with the same generator until every site has at least
//              min_samples_per_site samples. Small alpha = strong skew; large alpha -> IID.
//   quantity   quantity skew: shuffle, then site sizes proportional to q ~ Dir(alpha) (labels
//              IID); q is redrawn until every site has at least min_samples_per_site samples.
//
// Randomness comes from std::mt19937_64 seeded with PartitionSpec::seed; shuffling, uniforms,
// normals and the Gamma sampler (Marsaglia & Tsang, "A simple method for generating gamma
// variables", ACM TOMS 2000) are implemented here rather than taken from the standard library's
// distributions, whose algorithms differ between implementations. A (labels, spec) pair
// therefore gives the same partition on every platform whose libm computes log/exp/sqrt/cos
// alike (the IID scheme uses integers only and is fully portable).
#ifndef FEDMED_COMMON_DATA_PARTITION_H_
#define FEDMED_COMMON_DATA_PARTITION_H_

#include <cstdint>
#include <string>
#include <vector>

namespace fedmed {

enum class PartitionScheme { kIid, kDirichlet, kQuantitySkew };

// "iid" | "dirichlet" | "quantity". Throws ConfigError listing the accepted values otherwise.
PartitionScheme ParsePartitionScheme(const std::string& name);

// "iid", "dirichlet" or "quantity" (the inverse of ParsePartitionScheme).
const char* PartitionSchemeName(PartitionScheme scheme);

struct PartitionSpec {
  PartitionScheme scheme = PartitionScheme::kIid;
  int num_sites = 1;
  double alpha = 0.5;  // Dirichlet concentration (dirichlet and quantity only); > 0
  uint64_t seed = 0;
  int64_t min_samples_per_site = 10;  // >= 0; every site gets at least max(1, this) samples
};

// How many times the dirichlet and quantity schemes redraw before giving up.
inline constexpr int kMaxPartitionTries = 1000;

// Splits the sample indices 0 .. labels.size()-1 across spec.num_sites sites. labels[i] is the
// class of sample i, in [0, num_classes). Returns num_sites lists; every index appears in exactly
// one list; each list is sorted ascending.
// Throws ConfigError when num_sites < 1, min_samples_per_site < 0, alpha <= 0 (for dirichlet and
// quantity), labels.size() < num_sites * max(1, min_samples_per_site), or no draw within
// kMaxPartitionTries gives every site min_samples_per_site samples (alpha too small for that many
// sites). Throws DataError when a label lies outside [0, num_classes).
std::vector<std::vector<int64_t>> PartitionIndices(const std::vector<int64_t>& labels,
                                                   int64_t num_classes,
                                                   const PartitionSpec& spec);

// Site `shard`'s (0-based) share: PartitionIndices(labels, num_classes, spec)[shard]. This is how
// a real site takes "shard k of K" of a file with the code the simulator uses. Throws ConfigError
// if shard is outside [0, num_sites), and whatever PartitionIndices throws.
std::vector<int64_t> ShardIndices(const std::vector<int64_t>& labels, int64_t num_classes,
                                  const PartitionSpec& spec, int shard);

}  // namespace fedmed

#endif  // FEDMED_COMMON_DATA_PARTITION_H_
