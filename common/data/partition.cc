#include "common/data/partition.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <sstream>

#include "common/util/error.h"
#include "common/util/seeded_shuffle.h"

namespace fedmed {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Random variates built only on the raw 64-bit output of mt19937_64 (whose sequence the C++
// standard fixes), never on std::*_distribution (whose algorithms differ between libraries); the
// shuffle is SeededShuffle's (common/util/seeded_shuffle.h), on this engine.
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}

  // Uniform double in (0, 1], with 53 random bits.
  double UniformPositive() { return static_cast<double>((engine_() >> 11) + 1) * 0x1.0p-53; }

  // Standard normal (Box-Muller, one of the pair).
  double Normal() {
    const double radius = std::sqrt(-2.0 * std::log(UniformPositive()));
    return radius * std::cos(2.0 * kPi * UniformPositive());
  }

  // log of a Gamma(shape, 1) variate. Marsaglia & Tsang 2000; for shape < 1 their boost
  // Gamma(a) = Gamma(a + 1) * U^(1/a), taken in log space so that tiny shapes do not underflow.
  double LogGamma(double shape) {
    if (shape < 1.0) {
      const double log_boosted = LogGamma(shape + 1.0);  // drawn first: keep the order fixed
      return log_boosted + std::log(UniformPositive()) / shape;
    }
    const double d = shape - 1.0 / 3.0;
    const double c = 1.0 / std::sqrt(9.0 * d);
    while (true) {
      const double x = Normal();
      double v = 1.0 + c * x;
      if (v <= 0.0) continue;
      v = v * v * v;
      const double u = UniformPositive();
      if (u < 1.0 - 0.0331 * (x * x) * (x * x) ||
          std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) {
        return std::log(d * v);
      }
    }
  }

  // Fisher-Yates shuffle from the same engine (common/util/seeded_shuffle.h).
  void Shuffle(std::vector<int64_t>* v) { SeededShuffle(v, engine_); }

 private:
  std::mt19937_64 engine_;
};

// Draws p ~ Dir(alpha, ..., alpha) over `eligible.size()` sites and returns it with the entries of
// ineligible sites set to 0 and the rest renormalised (at least one site must be eligible).
std::vector<double> DrawProportions(Rng* rng, double alpha, const std::vector<bool>& eligible) {
  const size_t k = eligible.size();
  std::vector<double> log_w(k);
  for (double& w : log_w) w = rng->LogGamma(alpha);
  double max_log = -INFINITY;
  for (size_t j = 0; j < k; ++j) {
    if (eligible[j]) max_log = std::max(max_log, log_w[j]);
  }
  std::vector<double> p(k, 0.0);
  double sum = 0.0;
  for (size_t j = 0; j < k; ++j) {
    if (!eligible[j]) continue;
    p[j] = std::exp(log_w[j] - max_log);
    sum += p[j];
  }
  for (double& x : p) x /= sum;
  return p;
}

// Splits `items` into p.size() consecutive pieces at floor(cumsum(p) * n), as NIID-Bench does
// (np.split(items, (np.cumsum(p) * n).astype(int)[:-1])), appending piece j to (*sites)[j].
void SplitByProportions(const std::vector<int64_t>& items, const std::vector<double>& p,
                        std::vector<std::vector<int64_t>>* sites) {
  const size_t n = items.size();
  double cumulative = 0.0;
  size_t begin = 0;
  for (size_t j = 0; j < p.size(); ++j) {
    cumulative += p[j];
    const size_t end =
        j + 1 == p.size() ? n : std::clamp(static_cast<size_t>(cumulative * n), begin, n);
    (*sites)[j].insert((*sites)[j].end(), items.begin() + begin, items.begin() + end);
    begin = end;
  }
}

std::string FormatAlpha(double alpha) {
  std::ostringstream out;
  out << alpha;
  return out.str();
}

[[noreturn]] void ThrowNoValidDraw(const PartitionSpec& spec, size_t need, size_t n) {
  throw ConfigError(std::string(PartitionSchemeName(spec.scheme)) + " partition: no draw in " +
                    std::to_string(kMaxPartitionTries) + " tries gave each of the " +
                    std::to_string(spec.num_sites) + " sites at least " + std::to_string(need) +
                    " of the " + std::to_string(n) + " samples; alpha=" + FormatAlpha(spec.alpha) +
                    " is too small for that many sites (raise alpha, use fewer sites or lower "
                    "min_samples_per_site)");
}

size_t MinSize(const std::vector<std::vector<int64_t>>& sites) {
  size_t m = sites.front().size();
  for (const auto& s : sites) m = std::min(m, s.size());
  return m;
}

std::vector<std::vector<int64_t>> Iid(int64_t n, int k, Rng* rng) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  rng->Shuffle(&order);
  std::vector<std::vector<int64_t>> sites(k);
  int64_t begin = 0;
  for (int j = 0; j < k; ++j) {
    const int64_t end = begin + n / k + (j < n % k ? 1 : 0);
    sites[j].assign(order.begin() + begin, order.begin() + end);
    begin = end;
  }
  return sites;
}

std::vector<std::vector<int64_t>> DirichletLabelSkew(const std::vector<int64_t>& labels,
                                                     int64_t num_classes, const PartitionSpec& spec,
                                                     size_t need, Rng* rng) {
  const size_t n = labels.size();
  const size_t k = static_cast<size_t>(spec.num_sites);
  std::vector<std::vector<int64_t>> by_class(num_classes);
  for (size_t i = 0; i < n; ++i) by_class[labels[i]].push_back(static_cast<int64_t>(i));
  for (int attempt = 0; attempt < kMaxPartitionTries; ++attempt) {
    std::vector<std::vector<int64_t>> sites(k);
    for (std::vector<int64_t> members : by_class) {  // a copy, shuffled afresh each attempt
      rng->Shuffle(&members);
      std::vector<bool> eligible(k);
      for (size_t j = 0; j < k; ++j) eligible[j] = sites[j].size() * k < n;  // below N/K
      SplitByProportions(members, DrawProportions(rng, spec.alpha, eligible), &sites);
    }
    if (MinSize(sites) >= need) return sites;
  }
  ThrowNoValidDraw(spec, need, n);
}

std::vector<std::vector<int64_t>> QuantitySkew(size_t n, const PartitionSpec& spec, size_t need,
                                               Rng* rng) {
  const size_t k = static_cast<size_t>(spec.num_sites);
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  rng->Shuffle(&order);
  const std::vector<bool> all(k, true);
  for (int attempt = 0; attempt < kMaxPartitionTries; ++attempt) {
    std::vector<std::vector<int64_t>> sites(k);
    SplitByProportions(order, DrawProportions(rng, spec.alpha, all), &sites);
    if (MinSize(sites) >= need) return sites;
  }
  ThrowNoValidDraw(spec, need, n);
}

}  // namespace

PartitionScheme ParsePartitionScheme(const std::string& name) {
  for (PartitionScheme s :
       {PartitionScheme::kIid, PartitionScheme::kDirichlet, PartitionScheme::kQuantitySkew}) {
    if (name == PartitionSchemeName(s)) return s;
  }
  throw ConfigError("unknown partition scheme '" + name +
                    "'; expected one of: iid, dirichlet, quantity");
}

const char* PartitionSchemeName(PartitionScheme scheme) {
  switch (scheme) {
    case PartitionScheme::kIid:
      return "iid";
    case PartitionScheme::kDirichlet:
      return "dirichlet";
    case PartitionScheme::kQuantitySkew:
      return "quantity";
  }
  return "unknown";
}

std::vector<std::vector<int64_t>> PartitionIndices(const std::vector<int64_t>& labels,
                                                   int64_t num_classes,
                                                   const PartitionSpec& spec) {
  const auto n = static_cast<int64_t>(labels.size());
  const char* scheme = PartitionSchemeName(spec.scheme);
  if (spec.num_sites < 1) {
    throw ConfigError(std::string(scheme) + " partition: num_sites must be >= 1, got " +
                      std::to_string(spec.num_sites));
  }
  if (spec.min_samples_per_site < 0) {
    throw ConfigError(std::string(scheme) + " partition: min_samples_per_site must be >= 0, got " +
                      std::to_string(spec.min_samples_per_site));
  }
  if (spec.scheme != PartitionScheme::kIid && !(spec.alpha > 0 && std::isfinite(spec.alpha))) {
    throw ConfigError(std::string(scheme) + " partition: alpha must be a finite number > 0, got " +
                      FormatAlpha(spec.alpha));
  }
  const int64_t need = std::max<int64_t>(1, spec.min_samples_per_site);
  if (need > n / spec.num_sites) {
    throw ConfigError(std::string(scheme) + " partition: " + std::to_string(n) +
                      " samples cannot give each of " + std::to_string(spec.num_sites) +
                      " sites at least " + std::to_string(need) +
                      " (lower num_sites or min_samples_per_site)");
  }
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes) {
      throw DataError("partition: label " + std::to_string(labels[i]) + " of sample " +
                      std::to_string(i) + " is outside [0, " + std::to_string(num_classes) + ")");
    }
  }

  Rng rng(spec.seed);
  std::vector<std::vector<int64_t>> sites;
  switch (spec.scheme) {
    case PartitionScheme::kIid:
      sites = Iid(n, spec.num_sites, &rng);
      break;
    case PartitionScheme::kDirichlet:
      sites = DirichletLabelSkew(labels, num_classes, spec, static_cast<size_t>(need), &rng);
      break;
    case PartitionScheme::kQuantitySkew:
      sites = QuantitySkew(static_cast<size_t>(n), spec, static_cast<size_t>(need), &rng);
      break;
  }
  for (auto& site : sites) std::sort(site.begin(), site.end());
  return sites;
}

std::vector<int64_t> ShardIndices(const std::vector<int64_t>& labels, int64_t num_classes,
                                  const PartitionSpec& spec, int shard) {
  if (shard < 0 || shard >= spec.num_sites) {
    throw ConfigError("shard " + std::to_string(shard) + " is outside [0, " +
                      std::to_string(spec.num_sites) + ") for a " +
                      std::to_string(spec.num_sites) + "-site partition");
  }
  return std::move(PartitionIndices(labels, num_classes, spec)[shard]);
}

}  // namespace fedmed
