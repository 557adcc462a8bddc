// Aggregation strategies on small tensors, against results computed by hand.
#include "coordinator/strategy/strategy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "common/util/error.h"
#include "coordinator/strategy/fedavg_strategy.h"
#include "coordinator/strategy/fedopt_strategy.h"
#include "coordinator/strategy/robust_strategy.h"
#include "tests/coordinator/strategy_test_util.h"

namespace fedmed {
namespace {

using testing::State;

// Every value equal to `v`.
ModelState Uniform(float v) { return State({v, v, v, v}, {v, v}); }

// The six values in order.
std::vector<float> Values(const ModelState& s) {
  std::vector<float> out = s.tensors[0].values;
  out.insert(out.end(), s.tensors[1].values.begin(), s.tensors[1].values.end());
  return out;
}

std::unique_ptr<Strategy> Make(const std::string& name) {
  StrategyConfig c;
  c.name = name;
  if (name == "fedprox") c.proximal_mu = 0.01;
  return MakeStrategy(c);
}

const std::vector<std::string> kAllStrategies = {"fedavg",     "fedprox", "fedadam",
                                                 "fedyogi",    "fedadagrad", "median",
                                                 "trimmed_mean"};

// ---------------------------------------------------------------------------------------------
// FedAvg / FedProx

TEST(StrategyTest, FedAvgWeightsBySampleCount) {
  auto s = Make("fedavg");
  EXPECT_EQ(s->name(), "fedavg");
  EXPECT_FALSE(s->NeedsIndividualUpdates());
  const ModelState global = State({1, 1, 1, 1}, {0, 0});
  s->BeginRound(global);
  s->AddUpdate("a", State({1, 2, 3, 4}, {4, 0}), 100);
  s->AddUpdate("b", State({-3, 2, 0, 4}, {0, 8}), 300);
  EXPECT_EQ(s->contributions(), 2);
  EXPECT_EQ(s->total_samples(), 400);
  // w + (100 Δa + 300 Δb) / 400, coordinate by coordinate:
  //   1 + (100 - 900)/400 = -1,  1 + 2 = 3,  1 + 300/400 = 1.75,  1 + 4 = 5,
  //   0 + 400/400 = 1,  0 + 2400/400 = 6
  EXPECT_EQ(Values(s->AggregateFit(global)), (std::vector<float>{-1, 3, 1.75f, 5, 1, 6}));
  EXPECT_EQ(s->SaveState(), "");
}

TEST(StrategyTest, FedProxAggregatesLikeFedAvgAndHandsOutMu) {
  StrategyConfig c;
  c.name = "fedprox";
  c.proximal_mu = 0.1;
  auto prox = MakeStrategy(c);
  auto avg = Make("fedavg");
  EXPECT_EQ(prox->name(), "fedprox");
  const FitInstructions fit = prox->ConfigureFit(3, {"site-3", "site-1", "site-2", "site-1"});
  EXPECT_EQ(fit.sites, (std::vector<std::string>{"site-1", "site-2", "site-3"}));
  EXPECT_EQ(fit.proximal_mu, 0.1);
  EXPECT_EQ(avg->ConfigureFit(3, {"b", "a"}).proximal_mu, 0.0);
  EXPECT_EQ(avg->ConfigureFit(3, {"b", "a"}).sites, (std::vector<std::string>{"a", "b"}));

  const ModelState global = State({0.5f, -1, 2, 0}, {1, 1});
  for (Strategy* s : {prox.get(), avg.get()}) {
    s->BeginRound(global);
    s->AddUpdate("a", State({1, 0, 0, 1}, {0.25f, 0}), 3);
    s->AddUpdate("b", State({0, 1, 0, 1}, {0, 0.5f}), 1);
  }
  EXPECT_EQ(EncodeModelState(prox->AggregateFit(global)),
            EncodeModelState(avg->AggregateFit(global)));
  EXPECT_THROW(FedAvgStrategy(0.0), ConfigError);
  EXPECT_THROW(FedAvgStrategy(-1.0), ConfigError);
}

// ---------------------------------------------------------------------------------------------
// FedAdam / FedYogi / FedAdagrad (Reddi et al. 2021, Algorithm 2; m_{-1} = 0, v_{-1} = tau^2)

TEST(StrategyTest, FedAdamFirstTwoStepsByHand) {
  StrategyConfig c;
  c.name = "fedadam";
  c.server_learning_rate = 0.1;
  c.beta1 = 0.9;
  c.beta2 = 0.99;
  c.tau = 0.01;
  auto s = MakeStrategy(c);
  EXPECT_FALSE(s->NeedsIndividualUpdates());

  // Round 1, every coordinate alike: site a (n = 1) sends 2, site b (n = 3) sends 0, so the
  // weighted mean update is (1 * 2 + 3 * 0) / 4 = 0.5.
  const ModelState x0 = Uniform(1.0f);
  s->BeginRound(x0);
  s->AddUpdate("a", Uniform(2.0f), 1);
  s->AddUpdate("b", Uniform(0.0f), 3);
  const ModelState x1 = s->AggregateFit(x0);
  // Δ1 = 0.5
  // m1 = 0.9 * 0 + 0.1 * 0.5                 = 0.05
  // v1 = 0.99 * 0.01^2 + 0.01 * 0.5^2        = 0.000099 + 0.0025 = 0.002599
  // x1 = 1 + 0.1 * 0.05 / (sqrt(0.002599) + 0.01)
  //    = 1 + 0.005 / (0.0509804 + 0.01)      = 1.0819936
  const double m1 = 0.05, v1 = 0.002599;
  const double expected_x1 = 1 + 0.1 * m1 / (std::sqrt(v1) + 0.01);
  EXPECT_NEAR(expected_x1, 1.0819936, 1e-7);
  for (float v : Values(x1)) EXPECT_NEAR(v, expected_x1, 1e-6);

  // Round 2: one site, update -1 (n = 5): Δ2 = -1.
  s->BeginRound(x1);
  s->AddUpdate("a", Uniform(-1.0f), 5);
  const ModelState x2 = s->AggregateFit(x1);
  // m2 = 0.9 * 0.05 + 0.1 * (-1)             = -0.055
  // v2 = 0.99 * 0.002599 + 0.01 * 1          = 0.00257301 + 0.01 = 0.01257301
  // x2 = x1 + 0.1 * (-0.055) / (sqrt(0.01257301) + 0.01)
  //    = 1.0819936 - 0.0055 / (0.1121294 + 0.01) = 1.0819936 - 0.0450342 = 1.0369594
  const double m2 = -0.055, v2 = 0.01257301;
  const double expected_x2 = expected_x1 + 0.1 * m2 / (std::sqrt(v2) + 0.01);
  EXPECT_NEAR(expected_x2, 1.0369594, 1e-7);
  for (float v : Values(x2)) EXPECT_NEAR(v, expected_x2, 1e-6);
  EXPECT_EQ(static_cast<FedOptStrategy*>(s.get())->steps(), 2);
}

TEST(StrategyTest, FedYogiOneStepByHand) {
  FedOptParams p;
  p.variant = FedOptVariant::kYogi;
  p.server_learning_rate = 0.01;
  p.beta1 = 0.9;
  p.beta2 = 0.99;
  p.tau = 1e-3;
  FedOptStrategy s(p);
  EXPECT_EQ(s.name(), "fedyogi");
  const ModelState x0 = State({0, 1, -1, 2}, {0, 0});
  s.BeginRound(x0);
  // Mean update per coordinate: (2 * u + 2 * w) / 4 with u, w below = {0.2, -0.4, 0, 1e-4, 3, -3}.
  s.AddUpdate("a", State({0.2f, -0.4f, 0, 2e-4f}, {3, -3}), 2);
  s.AddUpdate("b", State({0.2f, -0.4f, 0, 0}, {3, -3}), 2);
  const std::vector<float> x1 = Values(s.AggregateFit(x0));
  // v0 = tau^2 = 1e-6. Yogi: v1 = v0 - 0.01 * d^2 * sign(v0 - d^2); m1 = 0.1 d;
  // x1 = x0 + 0.01 * m1 / (sqrt(v1) + 1e-3).
  //   d = 0.2:  d^2 = 0.04 > v0, v1 = 1e-6 + 0.0004 = 0.000401, sqrt = 0.0200250
  //             x1 = 0 + 0.01 * 0.02 / 0.0210250 = 0.0095125
  //   d = -0.4: v1 = 1e-6 + 0.0016 = 0.001601, sqrt = 0.0400125
  //             x1 = 1 + 0.01 * (-0.04) / 0.0410125 = 0.9902469
  //   d = 0:    m1 = 0, x1 = -1
  //   d = 1e-4: d^2 = 1e-8 < v0, so v1 = 1e-6 - 1e-10 = 9.999e-7 (Yogi shrinks v), sqrt = 0.00099995
  //             x1 = 2 + 0.01 * 1e-5 / 0.00199995 = 2.0000500
  //   d = 3:    v1 = 1e-6 + 0.09 = 0.090001, sqrt = 0.3000017
  //             x1 = 0 + 0.01 * 0.3 / 0.3010017 = 0.0099667
  //   d = -3:   x1 = -0.0099667
  const std::vector<double> d = {0.2, -0.4, 0, 1e-4, 3, -3};
  const std::vector<double> x0v = {0, 1, -1, 2, 0, 0};
  const std::vector<double> hand = {0.0095125, 0.9902469, -1, 2.0000500, 0.0099667, -0.0099667};
  for (std::size_t i = 0; i < d.size(); ++i) {
    const double d2 = d[i] * d[i];
    const double v1 = 1e-6 - 0.01 * d2 * (1e-6 > d2 ? 1 : (1e-6 < d2 ? -1 : 0));
    const double formula = x0v[i] + 0.01 * (0.1 * d[i]) / (std::sqrt(v1) + 1e-3);
    EXPECT_NEAR(formula, hand[i], 1e-7) << i;
    EXPECT_NEAR(x1[i], formula, 2e-6) << i;
  }
}

TEST(StrategyTest, FedAdagradOneStepByHand) {
  StrategyConfig c;
  c.name = "fedadagrad";  // Flower's defaults: eta = 0.1, beta1 = 0, tau = 1e-9
  auto s = MakeStrategy(c);
  EXPECT_EQ(s->name(), "fedadagrad");
  const ModelState x0 = State({1, 1, 1, 1}, {0, 0});
  s->BeginRound(x0);
  s->AddUpdate("a", State({0.5f, -2, 0, 1e-3f}, {4, 0.25f}), 7);
  const std::vector<float> x1 = Values(s->AggregateFit(x0));
  // beta1 = 0: m1 = d. v1 = tau^2 + d^2, so sqrt(v1) = |d| (to 1e-9) and
  // x1 = x0 + 0.1 * d / (|d| + 1e-9) = x0 + 0.1 * sign(d): a sign step of size eta.
  //   1.1, 0.9, 1 (d = 0: m = 0), 1.1, 0.1, 0.1
  const std::vector<float> hand = {1.1f, 0.9f, 1.0f, 1.1f, 0.1f, 0.1f};
  for (std::size_t i = 0; i < hand.size(); ++i) EXPECT_NEAR(x1[i], hand[i], 1e-6) << i;

  // A second step accumulates v: with d = 0.5 again at coordinate 0, v2 = 0.25 + 0.25 = 0.5,
  // x2 = 1.1 + 0.1 * 0.5 / sqrt(0.5) = 1.1 + 0.0707107 = 1.1707107.
  s->BeginRound(State({1.1f, 0.9f, 1, 1.1f}, {0.1f, 0.1f}));
  s->AddUpdate("a", State({0.5f, 0, 0, 0}, {0, 0}), 1);
  EXPECT_NEAR(s->AggregateFit(State({1.1f, 0.9f, 1, 1.1f}, {0.1f, 0.1f})).tensors[0].values[0],
              1.1707107, 1e-6);
}

TEST(StrategyTest, FedOptStateSaveRestoreGivesIdenticalRounds) {
  for (const char* name : {"fedadam", "fedyogi", "fedadagrad"}) {
    SCOPED_TRACE(name);
    const auto round_updates = [](int round) {
      const float r = static_cast<float>(round);
      return std::vector<ModelState>{State({0.1f * r, -0.2f, 0.3f / r, 1e-3f}, {r, -r}),
                                     State({-0.05f, 0.4f * r, 0.1f, 2e-3f}, {0.5f, 0.25f * r})};
    };
    const auto run_round = [&](Strategy& s, const ModelState& global, int round) {
      s.BeginRound(global);
      const std::vector<ModelState> updates = round_updates(round);
      s.AddUpdate("a", updates[0], 10 + round);
      s.AddUpdate("b", updates[1], 20);
      return s.AggregateFit(global);
    };
    auto first = Make(name);
    EXPECT_EQ(first->SaveState(), "") << "no state before the first round";
    ModelState x = State({0.1f, 0.2f, 0.3f, 0.4f}, {0.5f, 0.6f});
    x = run_round(*first, x, 1);
    x = run_round(*first, x, 2);
    const std::string saved = first->SaveState();
    ASSERT_FALSE(saved.empty());

    auto restarted = Make(name);  // a restarted coordinator: new object, saved state
    restarted->LoadState(saved);
    EXPECT_EQ(restarted->SaveState(), saved);
    auto fresh = Make(name);  // without the saved state, round 3 differs
    const std::string fresh_round3 = EncodeModelState(run_round(*fresh, x, 3));
    ModelState a = x, b = x;
    for (int round = 3; round <= 5; ++round) {
      a = run_round(*first, a, round);
      b = run_round(*restarted, b, round);
      EXPECT_EQ(EncodeModelState(a), EncodeModelState(b)) << "round " << round;
      if (round == 3) {
        EXPECT_NE(EncodeModelState(a), fresh_round3);
      }
    }
    EXPECT_EQ(first->SaveState(), restarted->SaveState());
    EXPECT_EQ(static_cast<FedOptStrategy&>(*restarted).steps(), 5);
    fresh->LoadState("");  // back to the initial state
    EXPECT_EQ(fresh->SaveState(), "");
    EXPECT_EQ(EncodeModelState(run_round(*fresh, x, 3)), fresh_round3);
  }
}

TEST(StrategyTest, FedOptStateOfAnotherKindIsRejected) {
  auto adam = Make("fedadam");
  const ModelState x = Uniform(1);
  adam->BeginRound(x);
  adam->AddUpdate("a", Uniform(0.5f), 1);
  adam->AggregateFit(x);
  const std::string saved = adam->SaveState();

  auto yogi = Make("fedyogi");
  try {
    yogi->LoadState(saved);
    FAIL() << "fedyogi loaded a fedadam state";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("fedyogi server state"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("fedadam.steps"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Make("fedavg")->LoadState(saved), FormatError);
  EXPECT_THROW(Make("median")->LoadState(saved), FormatError);
  EXPECT_NO_THROW(Make("median")->LoadState(""));
  EXPECT_THROW(Make("fedadam")->LoadState(saved.substr(0, saved.size() - 3)), FormatError);
  EXPECT_THROW(Make("fedadam")->LoadState("not a state"), FormatError);

  // A state for another model layout is refused when the round starts.
  auto other = Make("fedadam");
  other->LoadState(saved);
  ModelState bigger = x;
  bigger.tensors.push_back(NamedTensor{"fc2.bias", {1}, {0}});
  EXPECT_THROW(other->BeginRound(bigger), FormatError);
  EXPECT_NO_THROW(other->BeginRound(x));
}

// ---------------------------------------------------------------------------------------------
// Median and trimmed mean (Yin et al. 2018)

TEST(StrategyTest, MedianOfAnEvenCountIsTheMeanOfTheMiddleTwo) {
  auto s = Make("median");
  EXPECT_TRUE(s->NeedsIndividualUpdates());
  const ModelState global = State({10, 10, 10, 10}, {0, 0});
  s->BeginRound(global);
  // Per coordinate the four values, and their median:
  //   {1, 4, 2, 8} -> (2 + 4) / 2 = 3      {0, 0, 0, 0} -> 0      {-1, -3, 5, 7} -> (-1 + 5) / 2 = 2
  //   {0.5, 0.25, 0.75, 1} -> 0.625         bias {1, 1, 2, 2} -> 1.5, {-8, 100, 3, 3} -> 3
  // Sample counts do not count (unweighted).
  s->AddUpdate("a", State({1, 0, -1, 0.5f}, {1, -8}), 1000);
  s->AddUpdate("b", State({4, 0, -3, 0.25f}, {1, 100}), 1);
  s->AddUpdate("c", State({2, 0, 5, 0.75f}, {2, 3}), 1);
  s->AddUpdate("d", State({8, 0, 7, 1}, {2, 3}), 1);
  EXPECT_EQ(Values(s->AggregateFit(global)),
            (std::vector<float>{13, 10, 12, 10.625f, 1.5f, 3}));

  // Odd count: the middle value.
  s->BeginRound(global);
  s->AddUpdate("a", Uniform(5), 1);
  s->AddUpdate("b", Uniform(-1), 1);
  s->AddUpdate("c", Uniform(2), 1);
  EXPECT_EQ(Values(s->AggregateFit(global)), (std::vector<float>{12, 12, 12, 12, 2, 2}));
}

TEST(StrategyTest, TrimmedMeanDropsTheOutliers) {
  StrategyConfig c;
  c.name = "trimmed_mean";
  c.trim_fraction = 0.2;
  auto s = MakeStrategy(c);
  EXPECT_TRUE(s->NeedsIndividualUpdates());
  const ModelState global = Uniform(0);
  s->BeginRound(global);
  // n = 5, floor(0.2 * 5) = 1 value dropped at each end of every coordinate, wherever the
  // outliers are:
  //   {-100, 1, 2, 3, 100}  -> mean(1, 2, 3) = 2
  //   {1, 1, 1, 1, 1e6}     -> 1
  //   {-1e6, 4, 5, 6, 7}    -> mean(4, 5, 6) = 5
  //   {0, 0, 0, 0, 0}       -> 0
  //   bias {1, 2, 3, 4, 5}  -> 3,  {-2, -2, 8, 8, 8} -> mean(-2, 8, 8) = 14/3
  s->AddUpdate("a", State({-100, 1, 5, 0}, {5, -2}), 1);
  s->AddUpdate("b", State({1, 1e6f, 4, 0}, {4, 8}), 1);
  s->AddUpdate("c", State({100, 1, 7, 0}, {3, -2}), 1);
  s->AddUpdate("d", State({2, 1, -1e6f, 0}, {2, 8}), 1);
  s->AddUpdate("e", State({3, 1, 6, 0}, {1, 8}), 1);
  const std::vector<float> x = Values(s->AggregateFit(global));
  EXPECT_EQ(std::vector<float>(x.begin(), x.begin() + 5), (std::vector<float>{2, 1, 5, 0, 3}));
  EXPECT_FLOAT_EQ(x[5], 14.0f / 3);

  TrimmedMeanStrategy t(0.29);
  EXPECT_EQ(t.TrimCount(100), 29) << "0.29 * 100 is 28.999999999999996 in binary";
  EXPECT_EQ(t.TrimCount(3), 0);
  EXPECT_EQ(TrimmedMeanStrategy(0.0).TrimCount(10), 0);
  EXPECT_EQ(TrimmedMeanStrategy(0.4999999999).TrimCount(2), 0) << "one value always remains";
  EXPECT_THROW(TrimmedMeanStrategy(0.5), ConfigError);
  EXPECT_THROW(TrimmedMeanStrategy(-0.1), ConfigError);
}

// One faulty site among five sends 1e6 in every coordinate.
//
// Bound: with n updates of which at most f are faulty, every value below the smallest honest
// value and every value above the largest honest value is faulty, so there are at most f of
// each. Hence, per coordinate, the sorted values a_(1) <= ... <= a_(n) satisfy
//   a_(f+1) >= min(honest)   and   a_(n-f) <= max(honest).
// The median uses a_(ceil(n/2)) and a_(floor(n/2)+1), both between positions f+1 and n-f when
// f < n/2; the trimmed mean with k = floor(beta n) >= f averages a_(k+1) .. a_(n-k), also between
// them. So each aggregate update stays within [min(honest), max(honest)], here [-0.1, 0.1]: the
// global model moves by at most 0.1 per coordinate whatever the faulty site sends. FedAvg, with
// equal sample counts, moves by (Σ honest + 1e6) / 5 >= (1e6 - 0.4) / 5, about 2e5.
TEST(StrategyTest, AFaultySiteCannotMoveTheRobustAggregatesButWrecksFedAvg) {
  const std::vector<ModelState> honest = {State({0.1f, -0.1f, 0.05f, 0}, {0.02f, -0.03f}),
                                          State({-0.1f, 0.1f, 0.07f, 0.01f}, {0.1f, 0.1f}),
                                          State({0.02f, -0.05f, -0.1f, 0.1f}, {-0.1f, 0}),
                                          State({0.03f, 0.08f, 0.1f, -0.1f}, {0, -0.1f})};
  const ModelState faulty = Uniform(1e6f);
  const ModelState global = State({1, 2, 3, 4}, {5, 6});
  const std::vector<float> g = Values(global);

  const auto aggregate = [&](Strategy& s) {
    s.BeginRound(global);
    for (std::size_t k = 0; k < honest.size(); ++k) {
      s.AddUpdate("site-" + std::to_string(k), honest[k], 100);
    }
    s.AddUpdate("faulty", faulty, 100);
    return Values(s.AggregateFit(global));
  };
  StrategyConfig tm;
  tm.name = "trimmed_mean";
  tm.trim_fraction = 0.2;  // k = floor(0.2 * 5) = 1 >= f = 1
  std::vector<std::unique_ptr<Strategy>> robust;
  robust.push_back(Make("median"));
  robust.push_back(MakeStrategy(tm));
  for (const auto& s : robust) {
    SCOPED_TRACE(s->name());
    const std::vector<float> x = aggregate(*s);
    for (std::size_t i = 0; i < x.size(); ++i) {
      float lo = 1e30f, hi = -1e30f;
      for (const ModelState& h : honest) {
        lo = std::min(lo, Values(h)[i]);
        hi = std::max(hi, Values(h)[i]);
      }
      // Within the honest range (float32 rounding of g + update aside), hence within 0.1.
      EXPECT_GE(x[i] - g[i], lo - 1e-6f) << i;
      EXPECT_LE(x[i] - g[i], hi + 1e-6f) << i;
      EXPECT_LE(std::fabs(x[i] - g[i]), 0.1f + 1e-6f) << i;
    }
  }
  auto avg = Make("fedavg");
  const std::vector<float> x = aggregate(*avg);
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_GT(x[i] - g[i], 1.9e5f) << i;
}

// ---------------------------------------------------------------------------------------------
// Every strategy

TEST(StrategyTest, LayoutMismatchNamesTheSite) {
  for (const std::string& name : kAllStrategies) {
    SCOPED_TRACE(name);
    auto s = Make(name);
    EXPECT_EQ(s->name(), name);
    const ModelState global = Uniform(0);
    s->BeginRound(global);
    ModelState wrong = global;
    wrong.tensors[1].shape = {1, 2};
    try {
      s->AddUpdate("site-7", wrong, 10);
      FAIL() << "accepted a [1, 2] bias";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("update from site site-7"), std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find("fc.bias"), std::string::npos) << e.what();
    }
    ModelState renamed = global;
    renamed.tensors[0].name = "conv.weight";
    EXPECT_THROW(s->AddUpdate("site-8", renamed, 10), FormatError);
    EXPECT_EQ(s->contributions(), 0) << "refused updates leave the round unchanged";
    EXPECT_THROW(s->AddUpdate("site-9", global, 0), ConfigError);
    EXPECT_THROW(s->AggregateFit(global), Error) << "nothing to aggregate";
    s->AddUpdate("site-1", Uniform(1), 4);
    EXPECT_THROW(s->AddUpdate("site-1", Uniform(1), 4), Error) << "twice from one site";
    EXPECT_THROW(s->AggregateFit(wrong), FormatError);
    EXPECT_EQ(s->contributions(), 1);
    EXPECT_EQ(s->total_samples(), 4);
    // One update of 1 everywhere: every strategy but FedOpt moves the model by exactly 1.
    const std::vector<float> x = Values(s->AggregateFit(global));
    if (name.rfind("fed", 0) != 0 || name == "fedavg" || name == "fedprox") {
      EXPECT_EQ(x, std::vector<float>(6, 1.0f));
    }
    EXPECT_THROW(s->AggregateFit(global), Error) << "the round is closed";
    EXPECT_THROW(s->AddUpdate("site-2", Uniform(1), 4), Error) << "the round is closed";
    // A retried round starts empty.
    s->BeginRound(global);
    EXPECT_EQ(s->contributions(), 0);
    EXPECT_EQ(s->total_samples(), 0);
  }
}

TEST(StrategyTest, ConcurrentUpdatesGiveTheSequentialResult) {
  const int kSites = 16;
  const auto update = [](int k) {
    const float v = static_cast<float>(k % 5) - 2;  // small integers: every sum is exact
    return State({v, -v, v * 2, 1}, {static_cast<float>(k), 0.5f});
  };
  for (const std::string& name : kAllStrategies) {
    SCOPED_TRACE(name);
    const ModelState global = State({1, 2, 3, 4}, {5, 6});
    auto sequential = Make(name);
    auto concurrent = Make(name);
    sequential->BeginRound(global);
    for (int k = 0; k < kSites; ++k) sequential->AddUpdate("s" + std::to_string(k), update(k), 10);
    concurrent->BeginRound(global);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int k = kSites - 1 - t; k >= 0; k -= 4) {
          concurrent->AddUpdate("s" + std::to_string(k), update(k), 10);
        }
      });
    }
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(concurrent->contributions(), kSites);
    EXPECT_EQ(EncodeModelState(sequential->AggregateFit(global)),
              EncodeModelState(concurrent->AggregateFit(global)));
  }
}

TEST(StrategyTest, MakeStrategyValidatesItsConfig) {
  StrategyConfig c;
  c.name = "fedsgd";
  EXPECT_THROW(MakeStrategy(c), ConfigError);
  c.name = "fedprox";  // proximal_mu is required
  EXPECT_THROW(MakeStrategy(c), ConfigError);
  c.name = "fedavg";
  c.tau = 0.1;  // does not apply to fedavg
  EXPECT_THROW(MakeStrategy(c), ConfigError);
  c.name = "fedadam";
  c.beta1 = 1.0;
  EXPECT_THROW(MakeStrategy(c), ConfigError);
  FedOptParams p;
  p.tau = 0;
  EXPECT_THROW(FedOptStrategy{p}, ConfigError);
  for (const std::string& name : kAllStrategies) EXPECT_EQ(Make(name)->name(), name);
}

}  // namespace
}  // namespace fedmed
