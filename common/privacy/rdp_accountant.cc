#include "common/privacy/rdp_accountant.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "common/util/error.h"

namespace fedmed {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kPi = 3.14159265358979323846;

std::string Num(double value) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.10g", value);
  return text;
}

// log(exp(a) + exp(b)).
double LogAdd(double a, double b) {
  const double lo = std::min(a, b);
  const double hi = std::max(a, b);
  if (lo == -kInf || hi == kInf) return hi;
  return std::log1p(std::exp(lo - hi)) + hi;
}

// log(exp(a) - exp(b)) for a >= b. a < b only happens through rounding in the alternating
// series (the partial sums are positive); the difference is then treated as 0.
double LogSub(double a, double b) {
  if (b == -kInf) return a;
  if (a <= b) return -kInf;
  const double d = a - b;
  // expm1 overflows for d > ~709; log(expm1(d)) is then d to double precision.
  if (d > 700) return a;
  return std::log(std::expm1(d)) + b;
}

void CheckSamplingRate(double q) {
  if (!(q >= 0 && q <= 1)) {
    throw ConfigError("RDP accountant: sampling_rate (q) " + Num(q) +
                      ", expected a probability in [0, 1]");
  }
}

void CheckNoiseMultiplier(double sigma) {
  if (!(sigma >= 0 && std::isfinite(sigma))) {
    throw ConfigError("RDP accountant: noise_multiplier (sigma) " + Num(sigma) +
                      ", expected a finite number >= 0");
  }
}

void CheckSteps(int64_t steps) {
  if (steps < 0) {
    throw ConfigError("RDP accountant: steps " + std::to_string(steps) + ", expected >= 0");
  }
}

void CheckDelta(double delta) {
  if (!(delta > 0 && delta < 1)) {
    throw ConfigError("RDP accountant: delta " + Num(delta) + ", expected a number in (0, 1)");
  }
}

void CheckOrders(const std::vector<double>& orders) {
  if (orders.empty()) throw ConfigError("RDP accountant: no RDP orders, expected at least one");
  for (double alpha : orders) {
    if (!(alpha > 1 && std::isfinite(alpha))) {
      throw ConfigError("RDP accountant: RDP order " + Num(alpha) +
                        ", expected a finite number > 1");
    }
  }
}

void CheckRdp(const std::vector<double>& orders, const std::vector<double>& rdp) {
  CheckOrders(orders);
  if (rdp.size() != orders.size()) {
    throw ConfigError("RDP accountant: " + std::to_string(rdp.size()) + " RDP values for " +
                      std::to_string(orders.size()) + " orders, expected one per order");
  }
  for (size_t i = 0; i < rdp.size(); ++i) {
    if (!(rdp[i] >= 0)) {  // also rejects NaN; +infinity is allowed
      throw ConfigError("RDP accountant: RDP value " + Num(rdp[i]) + " at order " +
                        Num(orders[i]) + ", expected a number >= 0 (or +infinity)");
    }
  }
}

// RDP of one step of the sampled Gaussian mechanism at order alpha (q in [0, 1], sigma >= 0).
double RdpOneStep(double q, double sigma, double alpha) {
  if (q == 0) return 0;
  if (sigma == 0) return kInf;
  if (q == 1) return alpha / (2 * sigma * sigma);
  double log_a;
  if (alpha == std::floor(alpha) && alpha <= std::numeric_limits<int>::max()) {
    log_a = rdp_internal::LogAIntegerOrder(q, sigma, static_cast<int>(alpha));
  } else {
    log_a = rdp_internal::LogAFractionalOrder(q, sigma, alpha);
  }
  // A_alpha >= 1, so log_a >= 0 up to rounding; NaN only arises from overflow (sigma so small
  // that exp(1 / sigma^2) is infinite), where no finite bound holds anyway.
  if (std::isnan(log_a)) return kInf;
  return std::max(0.0, log_a / (alpha - 1));
}

}  // namespace

namespace rdp_internal {

double LogErfc(double x) {
  if (x < 26) return std::log(std::erfc(x));
  // Abramowitz & Stegun 7.1.23: erfc(x) = exp(-x^2) / (x sqrt(pi)) * (1 - 1/(2x^2) + 3/(4x^4)
  // - 15/(8x^6) + 105/(16x^8) - ...); at x >= 26 the truncation error is below 1e-12.
  const double r = 1 / (x * x);
  const double series = 1 + r * (-0.5 + r * (0.75 + r * (-1.875 + r * 6.5625)));
  return -x * x - std::log(x) - 0.5 * std::log(kPi) + std::log(series);
}

double LogAIntegerOrder(double q, double sigma, int alpha) {
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  double log_a = -kInf;
  double log_binom = 0;  // log C(alpha, i)
  for (int i = 0; i <= alpha; ++i) {
    if (i > 0) log_binom += std::log(static_cast<double>(alpha - i + 1)) - std::log(i);
    const double di = i;
    const double term = log_binom + di * log_q + (alpha - di) * log_1mq +
                        (di * di - di) / (2 * sigma * sigma);
    log_a = LogAdd(log_a, term);
  }
  return log_a;
}

double LogAFractionalOrder(double q, double sigma, double alpha) {
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  const double z0 = sigma * sigma * (log_1mq - log_q) + 0.5;  // sigma^2 log(1/q - 1) + 1/2
  const double sqrt2_sigma = std::sqrt(2.0) * sigma;
  double log_a0 = -kInf;
  double log_a1 = -kInf;
  double log_abs_coef = 0;  // log |C(alpha, i)|, the generalised binomial coefficient
  bool coef_positive = true;
  // The terms decay super-exponentially once i exceeds z0 and alpha; the cap is a safety net.
  for (int i = 0; i < 1000000; ++i) {
    if (i > 0) {
      const double factor = alpha - (i - 1);  // C(alpha, i) = C(alpha, i-1) * (alpha-i+1) / i
      if (factor < 0) coef_positive = !coef_positive;
      log_abs_coef += std::log(std::fabs(factor)) - std::log(i);
    }
    const double di = i;
    const double j = alpha - di;
    const double log_t0 = log_abs_coef + di * log_q + j * log_1mq;
    const double log_t1 = log_abs_coef + j * log_q + di * log_1mq;
    const double log_e0 = std::log(0.5) + LogErfc((di - z0) / sqrt2_sigma);
    const double log_e1 = std::log(0.5) + LogErfc((z0 - j) / sqrt2_sigma);
    const double log_s0 = log_t0 + (di * di - di) / (2 * sigma * sigma) + log_e0;
    const double log_s1 = log_t1 + (j * j - j) / (2 * sigma * sigma) + log_e1;
    if (coef_positive) {
      log_a0 = LogAdd(log_a0, log_s0);
      log_a1 = LogAdd(log_a1, log_s1);
    } else {
      log_a0 = LogSub(log_a0, log_s0);
      log_a1 = LogSub(log_a1, log_s1);
    }
    // -infinity (a zero coefficient at integer alpha) also ends the series.
    if (std::max(log_s0, log_s1) < -30) break;
  }
  return LogAdd(log_a0, log_a1);
}

}  // namespace rdp_internal

std::vector<double> DefaultRdpOrders() {
  std::vector<double> orders;
  orders.reserve(151);
  for (int x = 1; x < 100; ++x) orders.push_back(1 + x / 10.0);  // as Opacus: 1 + x / 10.0
  for (int a = 12; a < 64; ++a) orders.push_back(a);
  return orders;
}

std::vector<double> ComputeRdp(double sampling_rate, double noise_multiplier, int64_t steps,
                               const std::vector<double>& orders) {
  CheckSamplingRate(sampling_rate);
  CheckNoiseMultiplier(noise_multiplier);
  CheckSteps(steps);
  CheckOrders(orders);
  std::vector<double> rdp(orders.size(), 0.0);
  if (steps == 0 || sampling_rate == 0) return rdp;
  for (size_t i = 0; i < orders.size(); ++i) {
    rdp[i] = static_cast<double>(steps) * RdpOneStep(sampling_rate, noise_multiplier, orders[i]);
  }
  return rdp;
}

RdpConversion ParseRdpConversion(const std::string& name) {
  if (name == "balle2020") return RdpConversion::kBalle2020;
  if (name == "classic") return RdpConversion::kClassic;
  throw ConfigError("RDP conversion \"" + name +
                    "\" is not known, expected \"balle2020\" or \"classic\"");
}

std::string RdpConversionName(RdpConversion conversion) {
  return conversion == RdpConversion::kClassic ? "classic" : "balle2020";
}

PrivacySpent RdpToEpsilon(const std::vector<double>& orders, const std::vector<double>& rdp,
                          double delta, RdpConversion conversion) {
  CheckRdp(orders, rdp);
  CheckDelta(delta);
  const double log_delta = std::log(delta);
  PrivacySpent best{kInf, std::numeric_limits<double>::quiet_NaN()};
  for (size_t i = 0; i < orders.size(); ++i) {
    const double alpha = orders[i];
    double eps;
    if (conversion == RdpConversion::kBalle2020) {
      eps = rdp[i] - (log_delta + std::log(alpha)) / (alpha - 1) + std::log((alpha - 1) / alpha);
    } else {
      eps = rdp[i] - log_delta / (alpha - 1);
    }
    if (std::isnan(eps)) continue;
    if (eps < best.epsilon) best = {eps, alpha};
  }
  if (best.epsilon < 0) best.epsilon = 0;
  return best;
}

RdpAccountant::RdpAccountant(std::vector<double> orders) : orders_(std::move(orders)) {
  CheckOrders(orders_);
  rdp_.assign(orders_.size(), 0.0);
}

RdpAccountant RdpAccountant::FromRdp(std::vector<double> orders, std::vector<double> rdp) {
  CheckRdp(orders, rdp);
  RdpAccountant accountant(std::move(orders));
  accountant.rdp_ = std::move(rdp);
  return accountant;
}

void RdpAccountant::Compose(double sampling_rate, double noise_multiplier, int64_t steps) {
  const std::vector<double> add = ComputeRdp(sampling_rate, noise_multiplier, steps, orders_);
  for (size_t i = 0; i < rdp_.size(); ++i) rdp_[i] += add[i];
}

PrivacySpent RdpAccountant::Spent(double delta, RdpConversion conversion) const {
  return RdpToEpsilon(orders_, rdp_, delta, conversion);
}

double ComputeEpsilon(double sampling_rate, double noise_multiplier, int64_t steps,
                      double delta, RdpConversion conversion) {
  const std::vector<double> orders = DefaultRdpOrders();
  return RdpToEpsilon(orders, ComputeRdp(sampling_rate, noise_multiplier, steps, orders), delta,
                      conversion)
      .epsilon;
}

double CalibrateNoiseMultiplier(double target_epsilon, double delta, double sampling_rate,
                                int64_t steps, RdpConversion conversion,
                                double epsilon_tolerance, const RdpAccountant* already_spent) {
  if (!(target_epsilon > 0 && std::isfinite(target_epsilon))) {
    throw ConfigError("noise calibration: target_epsilon " + Num(target_epsilon) +
                      ", expected a finite number > 0");
  }
  if (!(epsilon_tolerance > 0 && std::isfinite(epsilon_tolerance))) {
    throw ConfigError("noise calibration: epsilon_tolerance " + Num(epsilon_tolerance) +
                      ", expected a finite number > 0");
  }
  CheckDelta(delta);
  CheckSamplingRate(sampling_rate);
  CheckSteps(steps);
  const RdpAccountant prior = already_spent != nullptr ? *already_spent : RdpAccountant();
  const auto epsilon_at = [&](double sigma) {
    RdpAccountant total = prior;
    total.Compose(sampling_rate, sigma, steps);
    return total.Spent(delta, conversion).epsilon;
  };
  const std::string what = "target_epsilon " + Num(target_epsilon) + " at delta " + Num(delta) +
                           " (" + RdpConversionName(conversion) + " conversion)";
  const std::string prior_note =
      already_spent != nullptr
          ? " (the privacy already spent alone gives epsilon " +
                Num(prior.Spent(delta, conversion).epsilon) + ")"
          : "";

  if (sampling_rate == 0 || steps == 0) {  // nothing to add noise to
    const double eps = epsilon_at(0);
    if (eps <= target_epsilon) return 0;
    throw ConfigError("noise calibration: " + what + " cannot be met: epsilon is already " +
                      Num(eps) + " without any DP-SGD step" + prior_note);
  }

  // Opacus's get_noise_multiplier: double the upper bound (20, 40, ...) until it meets the
  // target, then bisect. Invariant: epsilon_at(sigma_high) = eps_high <= target_epsilon.
  double sigma_low = 0;  // every sigma <= sigma_low misses the target (eps decreases in sigma)
  double sigma_high = 20;
  double eps_high = epsilon_at(sigma_high);
  while (!(eps_high <= target_epsilon)) {
    if (sigma_high >= kMaxNoiseMultiplier) {
      throw ConfigError("noise calibration: " + what + " cannot be met with sampling_rate " +
                        Num(sampling_rate) + " and " + std::to_string(steps) +
                        " steps, not even with noise_multiplier " + Num(kMaxNoiseMultiplier) +
                        " (epsilon " + Num(eps_high) + ")" + prior_note +
                        "; raise the budget or run fewer steps");
    }
    sigma_low = sigma_high;
    sigma_high = std::min(2 * sigma_high, kMaxNoiseMultiplier);
    eps_high = epsilon_at(sigma_high);
  }
  for (int iteration = 0; iteration < 200 && target_epsilon - eps_high > epsilon_tolerance &&
                          sigma_high - sigma_low > 1e-12 * sigma_high;
       ++iteration) {
    const double sigma = 0.5 * (sigma_low + sigma_high);
    const double eps = epsilon_at(sigma);
    if (eps <= target_epsilon) {
      sigma_high = sigma;
      eps_high = eps;
    } else {
      sigma_low = sigma;
    }
  }
  return sigma_high;
}

}  // namespace fedmed
