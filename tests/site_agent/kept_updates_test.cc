// KeptUpdates (site_agent/trained_update.h): which of a site's last updates it can send again.
#include <gtest/gtest.h>

#include "site_agent/trained_update.h"

namespace fedmed {
namespace {

KeptUpdate Update(int round, const std::string& model, const std::string& bytes) {
  KeptUpdate k;
  k.round = round;
  k.model_sha256 = model;
  k.bytes = bytes;
  return k;
}

TEST(KeptUpdatesTest, KeepsTheLastTwoSoACrashBetweenARoundAndItsRecordsCostsNoTraining) {
  KeptUpdates kept(2);
  kept.Keep(Update(1, "m0", "u1"));
  kept.Keep(Update(2, "m1", "u2"));
  // The coordinator crashed after round 2 started but before round 1 was recorded: it asks for
  // round 1 on model m0 again.
  ASSERT_NE(kept.Find(1, "m0"), nullptr);
  EXPECT_EQ(kept.Find(1, "m0")->bytes, "u1");
  EXPECT_EQ(kept.Find(1, "other model"), nullptr);  // another global model: train again
  kept.Keep(Update(3, "m2", "u3"));
  EXPECT_EQ(kept.Find(1, "m0"), nullptr);  // the oldest is forgotten
  EXPECT_EQ(kept.Find(2, "m1")->bytes, "u2");
  EXPECT_EQ(kept.Find(3, "m2")->bytes, "u3");
}

TEST(KeptUpdatesTest, ARoundTrainedAgainReplacesItsUpdate) {
  KeptUpdates kept(2);
  kept.Keep(Update(4, "m3", "first"));
  kept.Keep(Update(5, "m4", "u5"));
  kept.Keep(Update(4, "m3b", "again"));  // round 4 again on another model (after a restart)
  EXPECT_EQ(kept.Find(4, "m3"), nullptr);
  EXPECT_EQ(kept.Find(4, "m3b")->bytes, "again");
  EXPECT_EQ(kept.Find(5, "m4")->bytes, "u5");
}

TEST(KeptUpdatesTest, ACapacityBelowOneKeepsOne) {
  KeptUpdates kept(0);
  kept.Keep(Update(1, "m0", "u1"));
  kept.Keep(Update(2, "m1", "u2"));
  EXPECT_EQ(kept.Find(1, "m0"), nullptr);
  EXPECT_NE(kept.Find(2, "m1"), nullptr);
}

}  // namespace
}  // namespace fedmed
