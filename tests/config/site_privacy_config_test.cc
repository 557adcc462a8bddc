// The [privacy] section of the site configuration: every setting that could make a site spend
// privacy it did not mean to, or leave its spend unbounded, is refused at start-up.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/config/site_config.h"
#include "common/util/error.h"
#include "tests/config/config_test_util.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

using testing::TempDir;

const std::string kSite = testing::MinimalSiteToml();

class SitePrivacyConfigTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& privacy) {
    const std::string path = dir_ / "site.toml";
    std::ofstream(path) << kSite << privacy;
    return path;
  }
  // The ConfigError message LoadSiteConfig throws ("" if none).
  std::string ErrorOf(const std::string& privacy) {
    try {
      LoadSiteConfig(Write(privacy));
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  }
  TempDir dir_{"site_privacy_config"};
};

TEST_F(SitePrivacyConfigTest, NoSectionMeansNoPrivacy) {
  const SiteConfig c = LoadSiteConfig(Write(""));
  EXPECT_EQ(c.privacy.mode, "none");
  EXPECT_FALSE(c.privacy.enabled());
}

TEST_F(SitePrivacyConfigTest, ValidSettingsLoadAndRoundTrip) {
  const SiteConfig c = LoadSiteConfig(Write(R"([privacy]
mode = "dp-sgd"
clipping_norm = 1.5
target_epsilon = 4
delta = 1e-5
budget_epsilon = 8
conversion = "classic"
)"));
  EXPECT_EQ(c.privacy.mode, "dp-sgd");
  EXPECT_EQ(c.privacy.clipping_norm, 1.5);
  EXPECT_EQ(c.privacy.target_epsilon, 4.0);
  EXPECT_EQ(c.privacy.noise_multiplier, 0.0);
  EXPECT_EQ(c.privacy.delta, 1e-5);
  EXPECT_EQ(c.privacy.budget_epsilon, 8.0);
  EXPECT_EQ(c.privacy.conversion, "classic");
  const std::string rendered = dir_ / "rendered.toml";
  std::ofstream(rendered) << RenderSiteConfig(c);
  EXPECT_TRUE(LoadSiteConfig(rendered) == c) << RenderSiteConfig(c);

  SiteConfig update = c;
  update.privacy.mode = "update";
  update.privacy.target_epsilon = 0;
  update.privacy.noise_multiplier = 0.8;
  std::ofstream(rendered) << RenderSiteConfig(update);
  EXPECT_TRUE(LoadSiteConfig(rendered) == update) << RenderSiteConfig(update);
  EXPECT_FALSE(LoadSiteConfig(rendered) == c);
}

TEST_F(SitePrivacyConfigTest, MissingOrContradictorySettingsFailWithTheirKey) {
  struct Case {
    std::string privacy;
    std::vector<std::string> expected;
  };
  const std::string ok_tail = "delta = 1e-5\nbudget_epsilon = 8\n";
  const std::vector<Case> cases = {
      {"[privacy]\nmode = \"dpsgd\"\n", {"[privacy] mode: expected \"none\", \"dp-sgd\""}},
      {"[privacy]\nmode = \"dp-sgd\"\nnoise_multiplier = 1\n" + ok_tail,
       {"[privacy] clipping_norm", "required with mode \"dp-sgd\"", "got nothing"}},
      {"[privacy]\nmode = \"dp-sgd\"\nclipping_norm = 1\nnoise_multiplier = 1\n"
       "budget_epsilon = 8\n",
       {"[privacy] delta: expected a probability in (0, 1)", "got nothing"}},
      {"[privacy]\nmode = \"update\"\nclipping_norm = 1\nnoise_multiplier = 1\ndelta = 1e-5\n",
       {"[privacy] budget_epsilon", "required with mode \"update\""}},
      {"[privacy]\nmode = \"dp-sgd\"\nclipping_norm = 1\n" + ok_tail,
       {"[privacy] noise_multiplier: expected exactly one of noise_multiplier", "got neither"}},
      {"[privacy]\nmode = \"dp-sgd\"\nclipping_norm = 1\nnoise_multiplier = 1\n"
       "target_epsilon = 2\n" + ok_tail,
       {"[privacy] target_epsilon: expected exactly one of", "got both"}},
      {"[privacy]\nmode = \"dp-sgd\"\nclipping_norm = 1\ntarget_epsilon = 9\n" + ok_tail,
       {"[privacy] target_epsilon: expected at most budget_epsilon (8.0)", "got 9.0"}},
      {"[privacy]\nmode = \"dp-sgd\"\nclipping_norm = -1\nnoise_multiplier = 1\n" + ok_tail,
       {"[privacy] clipping_norm: expected a finite number > 0", "got -1.0"}},
      {"[privacy]\nmode = \"dp-sgd\"\nclipping_norm = 1\nnoise_multiplier = 1\ndelta = 1.5\n"
       "budget_epsilon = 8\n",
       {"[privacy] delta: expected a probability in (0, 1)", "got 1.5"}},
      {"[privacy]\nmode = \"none\"\nbudget_epsilon = 8\n",
       {"[privacy] budget_epsilon: expected no value: mode is \"none\""}},
      {"[privacy]\nnoise_multiplier = 1.1\n", {"[privacy] noise_multiplier", "mode is \"none\""}},
      {"[privacy]\nmode = \"dp-sgd\"\nclipping_norm = 1\nnoise_multiplier = 1\n" + ok_tail +
           "conversion = \"opacus\"\n",
       {"[privacy] conversion: expected \"balle2020\" or \"classic\""}},
      {"[privacy]\nmode = \"dp-sgd\"\nclip = 1\n", {"[privacy] clip: unknown key"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.privacy);
    const std::string error = ErrorOf(c.privacy);
    ASSERT_FALSE(error.empty()) << "no ConfigError";
    EXPECT_NE(error.find("site.toml: "), std::string::npos) << error;
    for (const std::string& part : c.expected) {
      EXPECT_NE(error.find(part), std::string::npos) << "missing '" << part << "' in: " << error;
    }
  }
}

}  // namespace
}  // namespace fedmed
