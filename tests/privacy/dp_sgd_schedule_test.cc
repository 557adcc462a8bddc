// PlanDpSgd: the sampling rate and step count of one round of DP-SGD.
#include "common/privacy/dp_sgd_schedule.h"

#include <gtest/gtest.h>

#include "common/util/error.h"

namespace fedmed {
namespace {

TEST(DpSgdScheduleTest, PlansMnistLikeRun) {
  // 60000 images, expected batch 256: q = 256/60000, 60000/256 = 234.375 -> 234 steps/epoch.
  const DpSgdSchedule s = PlanDpSgd(60000, 256, 60);
  EXPECT_EQ(s.expected_batch_size, 256);
  EXPECT_DOUBLE_EQ(s.sampling_rate, 256.0 / 60000.0);
  EXPECT_EQ(s.steps_per_epoch, 234);
  EXPECT_EQ(s.steps, 234 * 60);
}

TEST(DpSgdScheduleTest, RoundsStepsPerEpoch) {
  EXPECT_EQ(PlanDpSgd(1000, 300, 1).steps_per_epoch, 3);  // 3.33 -> 3
  EXPECT_EQ(PlanDpSgd(1000, 400, 1).steps_per_epoch, 3);  // 2.5 -> 3 (half away from zero)
  EXPECT_EQ(PlanDpSgd(1000, 600, 2).steps_per_epoch, 2);  // 1.67 -> 2
  EXPECT_EQ(PlanDpSgd(1000, 600, 2).steps, 4);
  EXPECT_DOUBLE_EQ(PlanDpSgd(1000, 600, 2).sampling_rate, 0.6);
}

TEST(DpSgdScheduleTest, BatchLargerThanSiteIsFullBatch) {
  const DpSgdSchedule s = PlanDpSgd(100, 256, 3);
  EXPECT_EQ(s.expected_batch_size, 100);
  EXPECT_EQ(s.sampling_rate, 1.0);
  EXPECT_EQ(s.steps_per_epoch, 1);
  EXPECT_EQ(s.steps, 3);
  // A single image: still one step per epoch.
  EXPECT_EQ(PlanDpSgd(1, 1, 5).steps, 5);
}

TEST(DpSgdScheduleTest, RejectsBadArguments) {
  EXPECT_THROW(PlanDpSgd(0, 32, 1), ConfigError);
  EXPECT_THROW(PlanDpSgd(-5, 32, 1), ConfigError);
  EXPECT_THROW(PlanDpSgd(100, 0, 1), ConfigError);
  EXPECT_THROW(PlanDpSgd(100, 32, 0), ConfigError);
}

}  // namespace
}  // namespace fedmed
