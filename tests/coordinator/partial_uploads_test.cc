// What the coordinator keeps of an upload cut part-way (coordinator/partial_uploads.h).
#include "coordinator/partial_uploads.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace fedmed {
namespace {

using namespace std::chrono_literals;

TEST(PartialUploadsTest, KeepsOnePrefixPerSiteForItsUpdateOnly) {
  PartialUploads kept(10min);
  const auto t0 = PartialUploads::Clock::time_point{};
  const PartialUploads::Key a{3, std::string(64, 'a'), 100};
  const PartialUploads::Key other_round{4, std::string(64, 'a'), 100};
  kept.Keep("site-1", a, std::string(40, 'x'), t0);
  EXPECT_EQ(kept.Offset("site-1", a, t0), 40);
  EXPECT_EQ(kept.Offset("site-1", other_round, t0), 0);  // another update: from the start
  EXPECT_EQ(kept.Offset("site-2", a, t0), 0);            // another site never sees it
  EXPECT_EQ(kept.bytes(), 40);
  // A newer partial of the same site replaces it; Take hands it out once.
  kept.Keep("site-1", a, std::string(60, 'y'), t0 + 1s);
  EXPECT_EQ(kept.bytes(), 60);
  EXPECT_EQ(kept.Take("site-1", a, t0 + 2s), std::string(60, 'y'));
  EXPECT_EQ(kept.Take("site-1", a, t0 + 2s), std::nullopt);
  // Taking with another key drops what was kept (the site moved on).
  kept.Keep("site-1", a, std::string(10, 'z'), t0);
  EXPECT_EQ(kept.Take("site-1", other_round, t0), std::nullopt);
  EXPECT_EQ(kept.Offset("site-1", a, t0), 0);
}

TEST(PartialUploadsTest, NothingEmptyOrCompleteIsKeptAndOldPrefixesExpire) {
  PartialUploads kept(10min);
  const auto t0 = PartialUploads::Clock::time_point{};
  const PartialUploads::Key a{1, std::string(64, 'b'), 8};
  kept.Keep("site-1", a, "", t0);
  kept.Keep("site-2", a, std::string(8, 'c'), t0);  // the whole update: not partial
  EXPECT_EQ(kept.bytes(), 0);
  kept.Keep("site-1", a, "abc", t0);
  EXPECT_EQ(kept.Offset("site-1", a, t0 + 9min), 3);
  EXPECT_EQ(kept.Offset("site-1", a, t0 + 11min), 0);
  EXPECT_EQ(kept.bytes(), 0);
  kept.Keep("site-1", a, "abc", t0);
  kept.Forget("site-1");
  EXPECT_EQ(kept.bytes(), 0);
}

}  // namespace
}  // namespace fedmed
