#include "coordinator/strategy/fedavg_aggregator.h"

#include <gtest/gtest.h>

#include "common/util/error.h"
#include "tests/coordinator/strategy_test_util.h"

namespace fedmed {
namespace {

using testing::State;

TEST(FedAvgTest, WeightsUpdatesBySampleCount) {
  const ModelState global = State({1, 1, 1, 1}, {0, 0});
  FedAvgAggregator agg(global);
  agg.Add(State({1, 2, 3, 4}, {4, 0}), 100, "site a");
  agg.Add(State({-3, 2, 0, 4}, {0, 8}), 300, "site b");
  EXPECT_EQ(agg.contributions(), 2);
  EXPECT_EQ(agg.total_samples(), 400);
  const ModelState next = agg.Apply(global);
  // w + (100 Δa + 300 Δb) / 400
  EXPECT_FLOAT_EQ(next.tensors[0].values[0], 1 + (1 * 100 - 3 * 300) / 400.0f);
  EXPECT_FLOAT_EQ(next.tensors[0].values[1], 1 + 2.0f);
  EXPECT_FLOAT_EQ(next.tensors[0].values[2], 1 + (3 * 100) / 400.0f);
  EXPECT_FLOAT_EQ(next.tensors[1].values[0], (4 * 100) / 400.0f);
  EXPECT_FLOAT_EQ(next.tensors[1].values[1], (8 * 300) / 400.0f);
}

TEST(FedAvgTest, OrderOfArrivalDoesNotMatter) {
  const ModelState global = State({0.1f, 0.2f, 0.3f, 0.4f}, {0.5f, 0.6f});
  const ModelState a = State({0.01f, -0.02f, 0.3f, 1e-4f}, {0.7f, -0.1f});
  const ModelState b = State({-0.5f, 0.25f, 0.125f, 2e-3f}, {0.2f, 0.3f});
  FedAvgAggregator ab(global), ba(global);
  ab.Add(a, 17, "a");
  ab.Add(b, 31, "b");
  ba.Add(b, 31, "b");
  ba.Add(a, 17, "a");
  EXPECT_EQ(EncodeModelState(ab.Apply(global)), EncodeModelState(ba.Apply(global)));
}

TEST(FedAvgTest, RejectsMismatchedLayoutAndEmptyRounds) {
  const ModelState global = State({0, 0, 0, 0}, {0, 0});
  FedAvgAggregator agg(global);
  EXPECT_THROW(agg.Apply(global), Error);
  ModelState wrong = global;
  wrong.tensors[1].shape = {1, 2};
  EXPECT_THROW(agg.Add(wrong, 10, "site x"), FormatError);
  EXPECT_THROW(agg.Add(global, 0, "site x"), ConfigError);
  agg.Add(global, 5, "site y");
  agg.Reset();
  EXPECT_EQ(agg.contributions(), 0);
  EXPECT_THROW(agg.Apply(global), Error);
}

}  // namespace
}  // namespace fedmed
