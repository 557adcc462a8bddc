// The RDP accountant: the public reference point, closed forms (q = 1, small q), a brute-force
// numerical integration of the RDP definition, continuity between the integer and fractional
// formulas, composition, conversion, calibration and argument checks.
//
// The expectations are derived independently of the implementation: from published numbers
// (DESIGN.md), closed forms, a Taylor expansion and direct quadrature of
//   A_alpha = E_{z ~ N(0, sigma^2)} [((1 - q) + q * mu1(z) / mu0(z))^alpha],
//   mu1(z) / mu0(z) = exp((2z - 1) / (2 sigma^2)),  RDP = log(A_alpha) / (alpha - 1)
// (Mironov, Talwar & Zhang 2019, Section 3).
#include "common/privacy/rdp_accountant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/util/error.h"

namespace fedmed {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kPi = 3.14159265358979323846;

// The public reference (DESIGN.md; Opacus / TF-Privacy MNIST tutorial).
constexpr double kRefQ = 256.0 / 60000.0;
constexpr double kRefSigma = 1.1;
constexpr int64_t kRefSteps = 14062;
constexpr double kRefDelta = 1e-5;
constexpr double kRefEpsBalle = 2.597;
constexpr double kRefEpsClassic = 3.008;

::testing::AssertionResult RelNear(double actual, double expected, double rel) {
  if (std::fabs(actual - expected) <= rel * std::fabs(expected)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "actual " << actual << " vs expected " << expected << " (relative difference "
         << std::fabs(actual - expected) / std::fabs(expected) << " > " << rel << ")";
}

// Expects `fn` to throw ConfigError whose message contains `part`.
template <typename Fn>
::testing::AssertionResult ThrowsConfigError(Fn fn, const std::string& part) {
  try {
    fn();
  } catch (const ConfigError& e) {
    if (std::string(e.what()).find(part) != std::string::npos) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "message '" << e.what() << "' lacks '" << part << "'";
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw another exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

// RDP of one step by trapezoid quadrature of the definition (independent of the series).
double BruteForceRdp(double q, double sigma, double alpha) {
  // The integrand is a Gaussian mixture-like bump between z = 0 and z ~ alpha; beyond 40 sigma
  // on either side it is below e^-700 relative to its peak.
  const double lo = -40 * sigma;
  const double hi = alpha + 40 * sigma;
  const int n = 400000;
  const double h = (hi - lo) / n;
  double sum = 0;
  for (int k = 0; k <= n; ++k) {
    const double z = lo + k * h;
    const double mu0 = std::exp(-z * z / (2 * sigma * sigma)) / (sigma * std::sqrt(2 * kPi));
    const double ratio = std::exp((2 * z - 1) / (2 * sigma * sigma));
    const double f = mu0 * std::pow((1 - q) + q * ratio, alpha);
    sum += (k == 0 || k == n) ? 0.5 * f : f;
  }
  return std::log(sum * h) / (alpha - 1);
}

TEST(RdpAccountantTest, DefaultOrdersAreOpacusAlphas) {
  const std::vector<double> orders = DefaultRdpOrders();
  ASSERT_EQ(orders.size(), 151u);
  EXPECT_DOUBLE_EQ(orders.front(), 1.1);
  EXPECT_DOUBLE_EQ(orders[8], 1.9);
  EXPECT_DOUBLE_EQ(orders[98], 10.9);
  EXPECT_EQ(orders[99], 12.0);
  EXPECT_EQ(orders.back(), 63.0);
  for (size_t i = 1; i < orders.size(); ++i) EXPECT_LT(orders[i - 1], orders[i]);
}

TEST(RdpAccountantTest, MatchesPublicReferencePoint) {
  const double balle =
      ComputeEpsilon(kRefQ, kRefSigma, kRefSteps, kRefDelta, RdpConversion::kBalle2020);
  const double classic =
      ComputeEpsilon(kRefQ, kRefSigma, kRefSteps, kRefDelta, RdpConversion::kClassic);
  EXPECT_TRUE(RelNear(balle, kRefEpsBalle, 1e-3));
  EXPECT_TRUE(RelNear(classic, kRefEpsClassic, 1e-3));
  // Default conversion is Balle et al. 2020.
  EXPECT_EQ(ComputeEpsilon(kRefQ, kRefSigma, kRefSteps, kRefDelta), balle);
  // The accountant gives the same, and names an interior order (the grid is wide enough).
  RdpAccountant accountant;
  accountant.Compose(kRefQ, kRefSigma, kRefSteps);
  const PrivacySpent spent = accountant.Spent(kRefDelta);
  EXPECT_EQ(spent.epsilon, balle);
  EXPECT_GT(spent.order, 1.1);
  EXPECT_LT(spent.order, 63);
}

TEST(RdpAccountantTest, FullBatchIsPlainGaussianMechanism) {
  // q = 1: RDP of the Gaussian mechanism with sensitivity 1, alpha / (2 sigma^2) per step
  // (Mironov 2017, Proposition 7).
  const std::vector<double> orders = {1.5, 2, 2.5, 3, 7.3, 32};
  const double sigma = 1.3;
  const int64_t steps = 17;
  const std::vector<double> rdp = ComputeRdp(1.0, sigma, steps, orders);
  ASSERT_EQ(rdp.size(), orders.size());
  for (size_t i = 0; i < orders.size(); ++i) {
    EXPECT_DOUBLE_EQ(rdp[i], steps * orders[i] / (2 * sigma * sigma)) << "order " << orders[i];
  }
  // The series themselves (forced on q close to 1) agree with the closed form.
  for (double alpha : {2.0, 3.0, 2.5, 5.5}) {
    const double q = 1 - 1e-12;
    const double log_a = alpha == std::floor(alpha)
                             ? rdp_internal::LogAIntegerOrder(q, sigma, static_cast<int>(alpha))
                             : rdp_internal::LogAFractionalOrder(q, sigma, alpha);
    EXPECT_TRUE(RelNear(log_a / (alpha - 1), alpha / (2 * sigma * sigma), 1e-6))
        << "order " << alpha;
  }
}

TEST(RdpAccountantTest, SpecialCases) {
  const std::vector<double> orders = {1.5, 2, 10};
  for (double r : ComputeRdp(0.0, 1.0, 100, orders)) EXPECT_EQ(r, 0);
  for (double r : ComputeRdp(0.01, 1.0, 0, orders)) EXPECT_EQ(r, 0);
  for (double r : ComputeRdp(0.01, 0.0, 5, orders)) EXPECT_EQ(r, kInf);
  // No noise means no guarantee.
  EXPECT_EQ(ComputeEpsilon(0.01, 0.0, 5, 1e-5), kInf);
  const PrivacySpent none = RdpToEpsilon(orders, ComputeRdp(0.01, 0.0, 5, orders), 1e-5,
                                         RdpConversion::kBalle2020);
  EXPECT_EQ(none.epsilon, kInf);
  EXPECT_TRUE(std::isnan(none.order));
}

// Generalised binomial coefficient C(alpha, k).
double Binom(double alpha, int k) {
  double c = 1;
  for (int i = 0; i < k; ++i) c *= (alpha - i) / (i + 1);
  return c;
}

TEST(RdpAccountantTest, SmallSamplingRateMatchesTaylorExpansion) {
  // Expanding A_alpha = E[(1 + q (L - 1))^alpha] in q, with L = mu1/mu0 and the moments
  // E[L - 1] = 0, E[(L - 1)^2] = e^{1/sigma^2} - 1, E[(L - 1)^3] = e^{3/sigma^2} -
  // 3 e^{1/sigma^2} + 2 (from E[L^k] = e^{k(k-1)/(2 sigma^2)}), gives
  //   A_alpha = 1 + C(alpha, 2) q^2 m2 + C(alpha, 3) q^3 m3 + O(q^4)
  // for any real alpha > 1; the leading term of the RDP is q^2 alpha m2 / 2.
  // Integer orders (exact binomial sum): q = 1e-6, leading term only (the O(q) relative
  // correction is below 1e-5 here).
  for (double sigma : {0.8, 1.1, 4.0}) {
    for (double alpha : {2.0, 3.0, 4.0, 12.0}) {
      const double q = 1e-6;
      const double expected = q * q * alpha * std::expm1(1 / (sigma * sigma)) / 2;
      const double rdp = ComputeRdp(q, sigma, 1, {alpha})[0];
      EXPECT_TRUE(RelNear(rdp, expected, 1e-4)) << "sigma " << sigma << ", order " << alpha;
    }
  }
  // Fractional orders (the two series): q = 1e-4 with the q^3 term. (At q = 1e-6 the RDP is
  // ~1e-13 per step and the series, which sums terms of order 1, keeps only a few digits of
  // it; the absolute error, ~1e-15 per step, is immaterial to any privacy guarantee.)
  for (double sigma : {1.1, 4.0}) {
    for (double alpha : {1.5, 2.5, 7.7}) {
      const double q = 1e-4;
      const double m2 = std::expm1(1 / (sigma * sigma));
      const double m3 = std::exp(3 / (sigma * sigma)) - 3 * std::exp(1 / (sigma * sigma)) + 2;
      const double expected =
          std::log1p(Binom(alpha, 2) * q * q * m2 + Binom(alpha, 3) * q * q * q * m3) /
          (alpha - 1);
      const double rdp = ComputeRdp(q, sigma, 1, {alpha})[0];
      EXPECT_TRUE(RelNear(rdp, expected, 1e-4)) << "sigma " << sigma << ", order " << alpha;
      // The leading term alone is already within 1%.
      EXPECT_TRUE(RelNear(rdp, q * q * alpha * m2 / 2, 1e-2));
    }
  }
}

TEST(RdpAccountantTest, MatchesBruteForceIntegration) {
  for (double q : {0.01, 0.1, 0.5}) {
    for (double sigma : {0.9, 1.1, 2.0}) {
      for (double alpha : {2.0, 3.0, 2.5, 4.5}) {
        const double expected = BruteForceRdp(q, sigma, alpha);
        const double rdp = ComputeRdp(q, sigma, 1, {alpha})[0];
        EXPECT_TRUE(RelNear(rdp, expected, 1e-7))
            << "q " << q << ", sigma " << sigma << ", order " << alpha;
      }
    }
  }
}

TEST(RdpAccountantTest, IntegerAndFractionalFormulasAgree) {
  for (double q : {1e-4, kRefQ, 0.05, 0.3}) {
    for (double sigma : {0.7, 1.1, 3.0}) {
      for (int alpha : {2, 3, 4, 10, 25}) {
        const double integer = rdp_internal::LogAIntegerOrder(q, sigma, alpha);
        const double fractional = rdp_internal::LogAFractionalOrder(q, sigma, alpha);
        EXPECT_TRUE(RelNear(fractional, integer, 1e-9))
            << "q " << q << ", sigma " << sigma << ", order " << alpha;
        // And the public function is continuous across the integer order.
        const std::vector<double> rdp = ComputeRdp(q, sigma, 1, {alpha - 1e-7, 1.0 * alpha,
                                                                 alpha + 1e-7});
        EXPECT_TRUE(RelNear(rdp[0], rdp[1], 1e-5)) << "order " << alpha;
        EXPECT_TRUE(RelNear(rdp[2], rdp[1], 1e-5)) << "order " << alpha;
      }
    }
  }
}

TEST(RdpAccountantTest, EpsilonDecreasesWithNoise) {
  double previous = kInf;
  for (double sigma = 0.5; sigma < 200; sigma *= 1.25) {
    const double eps = ComputeEpsilon(kRefQ, sigma, kRefSteps, kRefDelta);
    EXPECT_LT(eps, previous) << "sigma " << sigma;
    previous = eps;
  }
  // With huge noise only the conversion's floor remains: Balle et al. with rdp -> 0 gives
  // min over orders of (log(1/delta) - log(alpha)) / (alpha - 1) + log((alpha - 1) / alpha),
  // attained at the largest order 63.
  const double floor63 = (std::log(1 / kRefDelta) - std::log(63.0)) / 62 + std::log(62.0 / 63);
  EXPECT_TRUE(RelNear(ComputeEpsilon(kRefQ, 1e5, kRefSteps, kRefDelta), floor63, 1e-6));
}

TEST(RdpAccountantTest, ConversionFormulas) {
  const std::vector<double> orders = {2, 3};
  const std::vector<double> rdp = {0.5, 0.7};
  const double delta = 1e-5;
  const double log_inv_delta = std::log(1e5);
  // Classic: rdp + log(1/delta) / (alpha - 1); order 3 wins.
  const PrivacySpent classic = RdpToEpsilon(orders, rdp, delta, RdpConversion::kClassic);
  EXPECT_NEAR(classic.epsilon, 0.7 + log_inv_delta / 2, 1e-12);
  EXPECT_EQ(classic.order, 3);
  // Balle et al. 2020, Theorem 21.
  const double balle2 = 0.5 + (log_inv_delta - std::log(2.0)) / 1 + std::log(1.0 / 2);
  const double balle3 = 0.7 + (log_inv_delta - std::log(3.0)) / 2 + std::log(2.0 / 3);
  const PrivacySpent balle = RdpToEpsilon(orders, rdp, delta, RdpConversion::kBalle2020);
  EXPECT_NEAR(balle.epsilon, std::min(balle2, balle3), 1e-12);
  EXPECT_EQ(balle.order, balle3 < balle2 ? 3 : 2);
  // An infinite RDP order is skipped; a negative bound is clamped at 0.
  const PrivacySpent skip =
      RdpToEpsilon({2, 3}, {kInf, 0.7}, delta, RdpConversion::kClassic);
  EXPECT_EQ(skip.order, 3);
  EXPECT_EQ(RdpToEpsilon({40}, {0.0}, 0.9, RdpConversion::kBalle2020).epsilon, 0);
}

TEST(RdpAccountantTest, ParsesConversionNames) {
  EXPECT_EQ(ParseRdpConversion("balle2020"), RdpConversion::kBalle2020);
  EXPECT_EQ(ParseRdpConversion("classic"), RdpConversion::kClassic);
  EXPECT_EQ(RdpConversionName(RdpConversion::kBalle2020), "balle2020");
  EXPECT_EQ(RdpConversionName(RdpConversion::kClassic), "classic");
  EXPECT_TRUE(ThrowsConfigError([] { ParseRdpConversion("Balle"); }, "\"Balle\""));
  EXPECT_TRUE(ThrowsConfigError([] { ParseRdpConversion(""); }, "balle2020"));
}

TEST(RdpAccountantTest, ComposesAdditively) {
  RdpAccountant twice;
  twice.Compose(kRefQ, kRefSigma, 5000);
  twice.Compose(kRefQ, kRefSigma, 9062);
  RdpAccountant once;
  once.Compose(kRefQ, kRefSigma, kRefSteps);
  ASSERT_EQ(twice.rdp().size(), once.rdp().size());
  for (size_t i = 0; i < once.rdp().size(); ++i) {
    EXPECT_TRUE(RelNear(twice.rdp()[i], once.rdp()[i], 1e-12)) << "order " << once.orders()[i];
  }
  EXPECT_TRUE(RelNear(twice.Spent(kRefDelta).epsilon, once.Spent(kRefDelta).epsilon, 1e-12));

  // Heterogeneous rounds add their RDP per order.
  const std::vector<double> orders = {1.5, 2, 4.5, 16};
  RdpAccountant mixed(orders);
  mixed.Compose(0.01, 1.0, 100);
  mixed.Compose(0.05, 2.5, 30);
  mixed.Compose(1.0, 8.0, 2);
  const std::vector<double> a = ComputeRdp(0.01, 1.0, 100, orders);
  const std::vector<double> b = ComputeRdp(0.05, 2.5, 30, orders);
  const std::vector<double> c = ComputeRdp(1.0, 8.0, 2, orders);
  for (size_t i = 0; i < orders.size(); ++i) {
    EXPECT_TRUE(RelNear(mixed.rdp()[i], a[i] + b[i] + c[i], 1e-12));
  }
  // Spending more never lowers epsilon.
  RdpAccountant first(orders);
  first.Compose(0.01, 1.0, 100);
  EXPECT_LT(first.Spent(1e-5).epsilon, mixed.Spent(1e-5).epsilon);
}

TEST(RdpAccountantTest, RestoresFromSavedRdp) {
  RdpAccountant original;
  original.Compose(kRefQ, kRefSigma, 7000);
  RdpAccountant restored = RdpAccountant::FromRdp(original.orders(), original.rdp());
  EXPECT_EQ(restored.orders(), original.orders());
  EXPECT_EQ(restored.rdp(), original.rdp());
  restored.Compose(kRefQ, kRefSigma, kRefSteps - 7000);
  EXPECT_TRUE(RelNear(restored.Spent(kRefDelta).epsilon, kRefEpsBalle, 1e-3));

  // +infinity (an order with no finite bound) is allowed and stays infinite.
  RdpAccountant with_inf = RdpAccountant::FromRdp({2, 64}, {0.1, kInf});
  with_inf.Compose(0.01, 1.0, 10);
  EXPECT_EQ(with_inf.rdp()[1], kInf);
  EXPECT_EQ(with_inf.Spent(1e-5).order, 2);

  EXPECT_TRUE(ThrowsConfigError([] { RdpAccountant::FromRdp({2, 3}, {0.1}); }, "1 RDP values"));
  EXPECT_TRUE(ThrowsConfigError([] { RdpAccountant::FromRdp({2}, {-0.1}); }, "RDP value -0.1"));
  EXPECT_TRUE(ThrowsConfigError([] { RdpAccountant::FromRdp({2}, {kNaN}); }, "RDP value nan"));
  EXPECT_TRUE(ThrowsConfigError([] { RdpAccountant::FromRdp({1.0}, {0.1}); }, "RDP order 1"));
  EXPECT_TRUE(ThrowsConfigError([] { RdpAccountant::FromRdp({}, {}); }, "no RDP orders"));
}

TEST(RdpAccountantTest, CalibratesReferenceNoise) {
  const double sigma = CalibrateNoiseMultiplier(kRefEpsBalle, kRefDelta, kRefQ, kRefSteps);
  EXPECT_TRUE(RelNear(sigma, kRefSigma, 0.01)) << "sigma " << sigma;
  const double eps = ComputeEpsilon(kRefQ, sigma, kRefSteps, kRefDelta);
  EXPECT_LE(eps, kRefEpsBalle);
  EXPECT_GT(eps, kRefEpsBalle - 0.01);  // within the tolerance below the target

  const double classic_sigma = CalibrateNoiseMultiplier(
      kRefEpsClassic, kRefDelta, kRefQ, kRefSteps, RdpConversion::kClassic, 1e-4);
  EXPECT_TRUE(RelNear(classic_sigma, kRefSigma, 0.002)) << "sigma " << classic_sigma;
  EXPECT_LE(ComputeEpsilon(kRefQ, classic_sigma, kRefSteps, kRefDelta, RdpConversion::kClassic),
            kRefEpsClassic);

  // A wide range of targets: always met, and a slightly smaller sigma would miss by more than
  // the tolerance allows.
  for (double target : {0.5, 1.0, 3.0, 8.0, 50.0}) {
    const double s = CalibrateNoiseMultiplier(target, kRefDelta, 0.01, 1000);
    EXPECT_LE(ComputeEpsilon(0.01, s, 1000, kRefDelta), target) << "target " << target;
    EXPECT_GT(ComputeEpsilon(0.01, s * 0.98, 1000, kRefDelta), target - 0.01)
        << "target " << target;
  }
  // Nothing to protect: no noise.
  EXPECT_EQ(CalibrateNoiseMultiplier(1.0, kRefDelta, 0.0, 1000), 0);
  EXPECT_EQ(CalibrateNoiseMultiplier(1.0, kRefDelta, 0.01, 0), 0);
}

TEST(RdpAccountantTest, CalibratesGivenWhatWasAlreadySpent) {
  // Half the reference run already spent; the target applies to the total, so the second half
  // needs about the same noise as the whole run.
  RdpAccountant spent;
  spent.Compose(kRefQ, kRefSigma, kRefSteps / 2);
  const double sigma = CalibrateNoiseMultiplier(kRefEpsBalle, kRefDelta, kRefQ,
                                                kRefSteps - kRefSteps / 2,
                                                RdpConversion::kBalle2020, 0.001, &spent);
  EXPECT_TRUE(RelNear(sigma, kRefSigma, 0.005)) << "sigma " << sigma;
  RdpAccountant total = spent;
  total.Compose(kRefQ, sigma, kRefSteps - kRefSteps / 2);
  EXPECT_LE(total.Spent(kRefDelta).epsilon, kRefEpsBalle);
  // It needs more noise than a fresh site would.
  EXPECT_GT(sigma, CalibrateNoiseMultiplier(kRefEpsBalle, kRefDelta, kRefQ,
                                            kRefSteps - kRefSteps / 2,
                                            RdpConversion::kBalle2020, 0.001));
  // A budget already used up cannot be met by any noise.
  EXPECT_TRUE(ThrowsConfigError(
      [&] {
        CalibrateNoiseMultiplier(1.0, kRefDelta, kRefQ, 100, RdpConversion::kBalle2020, 0.01,
                                 &spent);
      },
      "cannot be met"));
}

TEST(RdpAccountantTest, RejectsBadArguments) {
  const std::vector<double> orders = {2, 3};
  EXPECT_TRUE(ThrowsConfigError([&] { ComputeRdp(1.5, 1.0, 1, orders); }, "sampling_rate"));
  EXPECT_TRUE(ThrowsConfigError([&] { ComputeRdp(-0.1, 1.0, 1, orders); }, "sampling_rate"));
  EXPECT_TRUE(ThrowsConfigError([&] { ComputeRdp(kNaN, 1.0, 1, orders); }, "sampling_rate"));
  EXPECT_TRUE(ThrowsConfigError([&] { ComputeRdp(0.1, -1.0, 1, orders); }, "noise_multiplier"));
  EXPECT_TRUE(ThrowsConfigError([&] { ComputeRdp(0.1, kInf, 1, orders); }, "noise_multiplier"));
  EXPECT_TRUE(ThrowsConfigError([&] { ComputeRdp(0.1, 1.0, -1, orders); }, "steps"));
  EXPECT_TRUE(ThrowsConfigError([&] { ComputeRdp(0.1, 1.0, 1, {0.5}); }, "RDP order"));
  EXPECT_TRUE(ThrowsConfigError([&] { ComputeRdp(0.1, 1.0, 1, {kInf}); }, "RDP order"));
  EXPECT_TRUE(ThrowsConfigError([&] { ComputeEpsilon(0.1, 1.0, 1, 0.0); }, "delta"));
  EXPECT_TRUE(ThrowsConfigError([&] { ComputeEpsilon(0.1, 1.0, 1, 1.0); }, "delta"));
  EXPECT_TRUE(ThrowsConfigError([&] { RdpToEpsilon({2, 3}, {0.1}, 1e-5, RdpConversion::kClassic); },
                                "one per order"));
  EXPECT_TRUE(ThrowsConfigError([] { RdpAccountant(std::vector<double>{}); }, "no RDP orders"));
  RdpAccountant accountant({2, 3});
  EXPECT_TRUE(ThrowsConfigError([&] { accountant.Compose(2.0, 1.0, 1); }, "sampling_rate"));
  EXPECT_EQ(accountant.rdp(), std::vector<double>({0, 0}));  // unchanged by the failed call
  EXPECT_TRUE(ThrowsConfigError([&] { accountant.Spent(-1); }, "delta"));

  EXPECT_TRUE(ThrowsConfigError([] { CalibrateNoiseMultiplier(0, 1e-5, 0.01, 100); },
                                "target_epsilon"));
  EXPECT_TRUE(ThrowsConfigError([] { CalibrateNoiseMultiplier(-1, 1e-5, 0.01, 100); },
                                "target_epsilon"));
  EXPECT_TRUE(ThrowsConfigError([] { CalibrateNoiseMultiplier(kInf, 1e-5, 0.01, 100); },
                                "target_epsilon"));
  EXPECT_TRUE(ThrowsConfigError([] { CalibrateNoiseMultiplier(1, 2.0, 0.01, 100); }, "delta"));
  EXPECT_TRUE(
      ThrowsConfigError([] { CalibrateNoiseMultiplier(1, 1e-5, 1.01, 100); }, "sampling_rate"));
  EXPECT_TRUE(ThrowsConfigError([] { CalibrateNoiseMultiplier(1, 1e-5, 0.01, -3); }, "steps"));
  EXPECT_TRUE(ThrowsConfigError(
      [] { CalibrateNoiseMultiplier(1, 1e-5, 0.01, 100, RdpConversion::kBalle2020, 0); },
      "epsilon_tolerance"));
  // Below the conversion's floor (about 0.10 at delta = 1e-5): impossible at any noise.
  EXPECT_TRUE(ThrowsConfigError([] { CalibrateNoiseMultiplier(0.05, 1e-5, 0.01, 100); },
                                "not even with noise_multiplier"));
  EXPECT_TRUE(
      ThrowsConfigError([] { CalibrateNoiseMultiplier(0.05, 1e-5, 0.0, 100); }, "cannot be met"));
}

TEST(RdpAccountantTest, LogErfcIsAccurateInTheTail) {
  for (double x : {-3.0, -0.5, 0.0, 0.7, 4.0, 12.0, 25.0}) {
    EXPECT_TRUE(RelNear(rdp_internal::LogErfc(x), std::log(std::erfc(x)), 1e-12) || x == 0)
        << "x " << x;
  }
  EXPECT_NEAR(rdp_internal::LogErfc(0), 0, 1e-15);
  // Where erfc underflows: the continued fraction erfc(x) = exp(-x^2) / sqrt(pi) / K(x),
  // K(x) = x + (1/2) / (x + 1 / (x + (3/2) / (x + 2 / (x + ...)))), evaluated bottom-up.
  for (double x : {26.0, 30.0, 100.0, 1e4}) {
    double k = x;
    for (int n = 200; n >= 1; --n) k = x + (n / 2.0) / k;
    const double expected = -x * x - 0.5 * std::log(kPi) - std::log(k);
    EXPECT_TRUE(RelNear(rdp_internal::LogErfc(x), expected, 1e-13)) << "x " << x;
  }
  // Continuous across the switch to the asymptotic series.
  EXPECT_TRUE(RelNear(rdp_internal::LogErfc(26 - 1e-12), rdp_internal::LogErfc(26 + 1e-12),
                      1e-12));
}

}  // namespace
}  // namespace fedmed
