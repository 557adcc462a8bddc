// The test bed's link emulator (tools/netem_relay): the delay line's timing, order, seeded loss
// and cut, and its command line. The relay on real TAP devices is exercised by
// tests/integration/netns_federation_test.cc.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "tools/netem_relay/netem_relay.h"

namespace fedmed::netem {
namespace {

using std::chrono::milliseconds;

std::vector<uint8_t> Frame(uint8_t tag) { return std::vector<uint8_t>(60, tag); }

TEST(DelayLineTest, DeliversEachFrameAfterTheDelayInOrder) {
  LinkSettings s;
  s.delay = milliseconds(20);
  DelayLine line(s);
  const Clock::time_point t0 = Clock::now();
  ASSERT_TRUE(line.Offer(Frame(1), t0, false));
  ASSERT_TRUE(line.Offer(Frame(2), t0 + milliseconds(5), false));
  EXPECT_EQ(line.NextDue(), t0 + milliseconds(20));
  EXPECT_FALSE(line.HasDue(t0 + milliseconds(19)));
  ASSERT_TRUE(line.HasDue(t0 + milliseconds(20)));
  EXPECT_EQ(line.PopDue()[0], 1);
  EXPECT_FALSE(line.HasDue(t0 + milliseconds(24)));
  ASSERT_TRUE(line.HasDue(t0 + milliseconds(25)));
  EXPECT_EQ(line.PopDue()[0], 2);
  EXPECT_EQ(line.NextDue(), Clock::time_point::max());
  EXPECT_EQ(line.counters().frames_out, 2u);
  EXPECT_EQ(line.counters().bytes_out, 120u);
}

TEST(DelayLineTest, LossRateMatchesTheProbabilityAndIsReproducible) {
  LinkSettings s;
  s.loss = 0.01;
  s.seed = 7;
  const int n = 200000;
  std::vector<bool> first;
  for (int run = 0; run < 2; ++run) {
    DelayLine line(s);
    std::vector<bool> kept;
    for (int i = 0; i < n; ++i) kept.push_back(line.Offer(Frame(0), Clock::now(), false));
    if (run == 0) {
      first = kept;
      // Binomial(200000, 0.01): mean 2000, sd 44.5; 5 sd either side.
      EXPECT_NEAR(static_cast<double>(line.counters().dropped_loss), 2000.0, 5 * 44.5);
    } else {
      EXPECT_EQ(kept, first) << "the same seed must drop the same frames";
    }
  }
  s.seed = 8;
  DelayLine other(s);
  std::vector<bool> kept;
  for (int i = 0; i < n; ++i) kept.push_back(other.Offer(Frame(0), Clock::now(), false));
  EXPECT_NE(kept, first);
}

TEST(DelayLineTest, CutDropsEverythingOfferedButDeliversWhatIsInFlight) {
  LinkSettings s;
  s.delay = milliseconds(10);
  DelayLine line(s);
  const Clock::time_point t0 = Clock::now();
  ASSERT_TRUE(line.Offer(Frame(1), t0, false));
  EXPECT_FALSE(line.Offer(Frame(2), t0 + milliseconds(1), true));
  EXPECT_FALSE(line.Offer(Frame(3), t0 + milliseconds(2), true));
  ASSERT_TRUE(line.Offer(Frame(4), t0 + milliseconds(3), false));
  EXPECT_EQ(line.counters().dropped_cut, 2u);
  ASSERT_TRUE(line.HasDue(t0 + milliseconds(13)));
  EXPECT_EQ(line.PopDue()[0], 1);
  EXPECT_EQ(line.PopDue()[0], 4);
}

TEST(DelayLineTest, AFullQueueDropsTheTail) {
  LinkSettings s;
  s.delay = milliseconds(100);
  s.max_queued_frames = 3;
  DelayLine line(s);
  int kept = 0;
  for (int i = 0; i < 5; ++i) kept += line.Offer(Frame(0), Clock::now(), false);
  EXPECT_EQ(kept, 3);
  EXPECT_EQ(line.counters().dropped_queue, 2u);
}

TEST(DelayLineTest, RefusesBadSettings) {
  LinkSettings s;
  s.loss = 1.5;
  EXPECT_THROW(DelayLine{s}, std::invalid_argument);
  s.loss = 0;
  s.delay = milliseconds(-1);
  EXPECT_THROW(DelayLine{s}, std::invalid_argument);
}

TEST(RelayArgsTest, ParsesEndsDelayLossAndSeed) {
  const RelayOptions o = ParseRelayArgs({"--a", "fm-site-1:eth0", "--b", ":s1", "--delay-ms",
                                         "20.5", "--loss", "0.01", "--seed", "5"});
  EXPECT_EQ(o.a.netns_path, "/run/netns/fm-site-1");
  EXPECT_EQ(o.a.device, "eth0");
  EXPECT_EQ(o.b.netns_path, "");
  EXPECT_EQ(o.b.device, "s1");
  EXPECT_EQ(o.a_to_b.delay.count(), 20500);
  EXPECT_EQ(o.b_to_a.delay.count(), 20500);
  EXPECT_EQ(o.a_to_b.loss, 0.01);
  EXPECT_EQ(o.a_to_b.seed, 5u);
  EXPECT_EQ(o.b_to_a.seed, 6u);
}

TEST(RelayArgsTest, BadArgumentsNameTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--a", "x:eth0"}, "--a and --b are required"},
      {{"--a", "x:eth0", "--b", "y:t", "--loss", "2"}, "--loss: expected a probability"},
      {{"--a", "x:eth0", "--b", "y:t", "--delay-ms", "abc"}, "--delay-ms: expected"},
      {{"--a", "noport", "--b", "y:t"}, "--a noport: expected NETNS:DEVICE"},
      {{"--a", "x:a-very-long-device-name", "--b", "y:t"}, "expected NETNS:DEVICE"},
      {{"--frob", "1"}, "unknown flag --frob"},
      {{"--a"}, "--a: expected a value"},
  };
  for (const auto& [args, message] : cases) {
    try {
      ParseRelayArgs(args);
      ADD_FAILURE() << message;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace fedmed::netem
