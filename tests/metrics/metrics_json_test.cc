// ClassificationMetrics as JSON (common/metrics/metrics_json.h): metrics.jsonl's form, with null
// where a metric is undefined.
#include "common/metrics/metrics_json.h"

#include <gtest/gtest.h>

#include <limits>

namespace fedmed {
namespace {

TEST(MetricsJsonTest, EveryMetricByNameAndUndefinedOnesAsNull) {
  ClassificationMetrics m;
  m.num_samples = 4;
  m.num_classes = 2;
  m.loss = 0.5;
  m.accuracy = 0.75;
  m.balanced_accuracy = 0.625;
  m.auc = 0.875;
  m.f1 = 0.8;
  m.sensitivity = 1.0;
  // specificity stays NaN (undefined)
  m.confusion = {1, 1, 0, 2};
  const nlohmann::json j = MetricsToJson(m);
  EXPECT_EQ(j.dump(),
            "{\"accuracy\":0.75,\"auc\":0.875,\"balanced_accuracy\":0.625,\"confusion\":[1,1,0,2],"
            "\"f1\":0.8,\"loss\":0.5,\"num_samples\":4,\"sensitivity\":1.0,\"specificity\":null}");
}

TEST(MetricsJsonTest, NonFiniteNumbersAreNull) {
  EXPECT_EQ(JsonNumberOrNull(1.5), nlohmann::json(1.5));
  EXPECT_TRUE(JsonNumberOrNull(std::numeric_limits<double>::quiet_NaN()).is_null());
  EXPECT_TRUE(JsonNumberOrNull(std::numeric_limits<double>::infinity()).is_null());
  EXPECT_TRUE(JsonNumberOrNull(-std::numeric_limits<double>::infinity()).is_null());
}

}  // namespace
}  // namespace fedmed
