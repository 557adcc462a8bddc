// The RDP privacy accountant of DP-SGD: how much privacy (epsilon, delta) a site has spent after
// running the Poisson-subsampled Gaussian mechanism for some steps, and the noise multiplier
// that keeps a planned round within a target epsilon.
//
// Method (the same as Opacus's RDPAccountant and TF-Privacy's rdp_accountant):
//   1. Each DP-SGD step is the sampled Gaussian mechanism (SGM): every record is included with
//      probability q (Poisson sampling, see dp_sgd_schedule.h) and Gaussian noise of standard
//      deviation sigma * C is added to the sum of the clipped gradients (clipping norm C).
//      Its Rényi differential privacy (RDP) at order alpha is computed as in Mironov, Talwar &
//      Zhang, "Rényi Differential Privacy of the Sampled Gaussian Mechanism", 2019
//      (arXiv:1908.10530): Section 3.3 for integer orders, Section 3.4 for fractional ones.
//   2. RDP composes additively (Mironov, "Rényi Differential Privacy", CSF 2017, Prop. 1):
//      T steps, or several rounds with different (q, sigma), simply add their RDP per order.
//   3. The composed RDP curve is converted to (epsilon, delta)-DP, minimising over the orders,
//      either with Balle et al. 2020 (the default, as Opacus) or with the classic conversion of
//      Mironov 2017 (Prop. 3; what TF-Privacy's tutorial reports).
//
// Units: epsilon and RDP values are in nats (natural logarithms); delta is a probability;
// sampling_rate q is a probability per record per step; noise_multiplier sigma is the noise
// standard deviation divided by the clipping norm (dimensionless); steps counts DP-SGD steps.
//
// Reference point (docs/PRIVACY.md, DESIGN.md): q = 256/60000, sigma = 1.1, 14062 steps,
// delta = 1e-5 gives epsilon = 2.59656 (Balle et al. 2020) and 3.00827 (classic).
//
// Everything here is pure C++ (no LibTorch) and thread-compatible: the free functions are
// stateless, and a const RdpAccountant may be read from several threads.
#ifndef FEDMED_COMMON_PRIVACY_RDP_ACCOUNTANT_H_
#define FEDMED_COMMON_PRIVACY_RDP_ACCOUNTANT_H_

#include <cstdint>
#include <string>
#include <vector>

namespace fedmed {

// The default RDP orders alpha: 1.1, 1.2, ..., 10.9 (step 0.1, 99 orders) then 12, 13, ..., 63
// (52 orders), 151 in all, in increasing order. These are Opacus's RDPAccountant.DEFAULT_ALPHAS;
// using the same grid makes fedmed's epsilons comparable with Opacus's to the last digit.
std::vector<double> DefaultRdpOrders();

// RDP, per order, of `steps` compositions of the Poisson-subsampled Gaussian mechanism with
// sampling rate `sampling_rate` (q) and noise multiplier `noise_multiplier` (sigma)
// (Mironov, Talwar & Zhang 2019). For each order alpha the result is steps * log(A_alpha) /
// (alpha - 1) with
//   A_alpha = E_{z ~ N(0, sigma^2)} [((1 - q) + q * exp((2z - 1) / (2 sigma^2)))^alpha],
// computed
//   - for integer alpha, exactly, from the binomial expansion (Section 3.3)
//       A_alpha = sum_{i=0..alpha} C(alpha, i) q^i (1-q)^(alpha-i) exp((i^2 - i) / (2 sigma^2)),
//     summed in log space (log-sum-exp);
//   - for fractional alpha, from the two convergent series of Section 3.4 (with log erfc), as
//     _compute_log_a_frac of Opacus / TF-Privacy, summed until the terms fall below e^-30.
// Special cases: q = 0 or steps = 0 gives 0; sigma = 0 (with q > 0, steps > 0) gives +infinity;
// q = 1 gives steps * alpha / (2 sigma^2) (the plain Gaussian mechanism, Mironov 2017, Prop. 7).
// Results are in nats, >= 0, possibly +infinity for large orders and small sigma.
// Throws ConfigError if sampling_rate is not in [0, 1], noise_multiplier is negative or not
// finite, steps < 0, or any order is not a finite number > 1.
std::vector<double> ComputeRdp(double sampling_rate, double noise_multiplier, int64_t steps,
                               const std::vector<double>& orders);

// How an RDP curve becomes an (epsilon, delta) guarantee.
enum class RdpConversion {
  // Balle, Barthe, Gaboardi, Hsu & Sato, "Hypothesis Testing Interpretations and Rényi
  // Differential Privacy", AISTATS 2020, Theorem 21:
  //   epsilon = rdp - (log(delta) + log(alpha)) / (alpha - 1) + log((alpha - 1) / alpha).
  // Tighter; what Opacus's privacy_analysis.get_privacy_spent computes. The default.
  kBalle2020,
  // Mironov, "Rényi Differential Privacy", CSF 2017, Proposition 3:
  //   epsilon = rdp + log(1 / delta) / (alpha - 1).
  kClassic,
};

// Parses "balle2020" or "classic" (exactly, lower case). Throws ConfigError otherwise, naming
// the accepted values.
RdpConversion ParseRdpConversion(const std::string& name);

// "balle2020" or "classic": the inverse of ParseRdpConversion.
std::string RdpConversionName(RdpConversion conversion);

// An (epsilon, delta) guarantee as returned by RdpToEpsilon: epsilon in nats (>= 0, possibly
// +infinity) and the RDP order that attains it (NaN when epsilon is +infinity, i.e. when no
// order gives a finite bound).
struct PrivacySpent {
  double epsilon = 0;
  double order = 0;
};

// The smallest epsilon, over `orders`, such that the mechanism with RDP curve `rdp` (rdp[i] at
// orders[i], in nats) is (epsilon, delta)-DP, using `conversion` (see RdpConversion for the
// formulas). Follows Opacus's privacy_analysis.get_privacy_spent: orders whose bound is NaN are
// ignored and, as in TF-Privacy, the result is clamped at 0. rdp values may be +infinity (that
// order is then useless).
// Throws ConfigError if the vectors are empty or differ in length, delta is not in (0, 1), an
// order is not a finite number > 1, or an rdp value is NaN or negative.
PrivacySpent RdpToEpsilon(const std::vector<double>& orders, const std::vector<double>& rdp,
                          double delta, RdpConversion conversion);

// Composes the privacy loss of several runs of the sampled Gaussian mechanism, possibly with
// different (q, sigma, steps) (e.g. a site's DP-SGD rounds over a federation's lifetime), by
// adding their RDP per order (Mironov 2017, Prop. 1). A site persists orders() and rdp() and
// restores them with FromRdp after a restart.
class RdpAccountant {
 public:
  // An accountant that has spent nothing, tracking RDP at `orders` (each a finite number > 1;
  // at least one). Throws ConfigError otherwise.
  explicit RdpAccountant(std::vector<double> orders = DefaultRdpOrders());

  // An accountant restored from saved orders and RDP values (rdp[i] in nats at orders[i]).
  // rdp values may be +infinity. Throws ConfigError if the vectors are empty or differ in
  // length, an order is not a finite number > 1, or an rdp value is NaN or negative.
  static RdpAccountant FromRdp(std::vector<double> orders, std::vector<double> rdp);

  // Adds `steps` steps of the Poisson-subsampled Gaussian mechanism with sampling rate
  // `sampling_rate` and noise multiplier `noise_multiplier` (see ComputeRdp for ranges and the
  // errors thrown; on error the accountant is unchanged).
  void Compose(double sampling_rate, double noise_multiplier, int64_t steps);

  // The (epsilon, delta) spent so far (see RdpToEpsilon). Throws ConfigError if delta is not in
  // (0, 1).
  PrivacySpent Spent(double delta, RdpConversion conversion = RdpConversion::kBalle2020) const;

  // The orders tracked and the RDP spent at each (nats; same length, >= 0, maybe +infinity).
  const std::vector<double>& orders() const { return orders_; }
  const std::vector<double>& rdp() const { return rdp_; }

 private:
  std::vector<double> orders_;
  std::vector<double> rdp_;
};

// The epsilon at `delta` of `steps` steps of DP-SGD with sampling rate `sampling_rate` and
// noise multiplier `noise_multiplier`, over DefaultRdpOrders(): shorthand for
// RdpToEpsilon(DefaultRdpOrders(), ComputeRdp(...), delta, conversion).epsilon.
// Throws ConfigError as ComputeRdp and RdpToEpsilon do.
double ComputeEpsilon(double sampling_rate, double noise_multiplier, int64_t steps,
                      double delta, RdpConversion conversion = RdpConversion::kBalle2020);

// The largest noise multiplier CalibrateNoiseMultiplier tries before giving up.
constexpr double kMaxNoiseMultiplier = 1e6;

// The noise multiplier sigma for `steps` steps of DP-SGD at sampling rate `sampling_rate` such
// that the total spend stays within `target_epsilon` at `delta`: the smallest sigma found by
// the search of Opacus's get_noise_multiplier (start at sigma = 20 and double the upper bound
// until epsilon <= target, then bisect until the epsilon of the upper bound is within
// `epsilon_tolerance` below the target). The returned sigma is always one whose computed
// epsilon (ComputeEpsilon, or Spent of `already_spent` plus this run) is <= target_epsilon; it
// overshoots the smallest such sigma by at most what an epsilon difference of
// `epsilon_tolerance` allows.
//
// `already_spent` (may be null): privacy a site has already spent (its accountant). Then the
// target applies to the total, the prior spend composed with the planned steps, evaluated at
// already_spent->orders(); this is how a budget-aware site picks the noise of its next round.
//
// Returns 0 when no noise is needed at all (sampling_rate = 0 or steps = 0) and the target is
// met. Note that under the Balle et al. 2020 conversion even a mechanism that spends nothing
// has epsilon > 0 over a finite grid of orders (about 0.10 at delta = 1e-5 with the default
// orders), so very small targets are impossible.
// Throws ConfigError if target_epsilon is not a finite number > 0, epsilon_tolerance is not a
// finite number > 0, delta is not in (0, 1), sampling_rate is not in [0, 1], steps < 0, or if
// the target cannot be met: not even with sigma = kMaxNoiseMultiplier (e.g. the budget is
// already spent), or not at all when no noise is added.
double CalibrateNoiseMultiplier(double target_epsilon, double delta, double sampling_rate,
                                int64_t steps,
                                RdpConversion conversion = RdpConversion::kBalle2020,
                                double epsilon_tolerance = 0.01,
                                const RdpAccountant* already_spent = nullptr);

namespace rdp_internal {

// Exposed for tests only. All in nats, no argument checks (callers validate).

// log(erfc(x)) for any finite x, accurate also where erfc(x) underflows (x > ~26), where an
// asymptotic expansion (Abramowitz & Stegun 7.1.23) is used.
double LogErfc(double x);

// log(A_alpha) for integer alpha >= 2 by the binomial expansion (Mironov et al. 2019, Sec. 3.3);
// q in (0, 1), sigma > 0.
double LogAIntegerOrder(double q, double sigma, int alpha);

// log(A_alpha) for real alpha > 1 by the two series of Mironov et al. 2019, Sec. 3.4 (valid for
// integer alpha too, where the series terminate); q in (0, 1), sigma > 0.
double LogAFractionalOrder(double q, double sigma, double alpha);

}  // namespace rdp_internal

}  // namespace fedmed

#endif  // FEDMED_COMMON_PRIVACY_RDP_ACCOUNTANT_H_
