// The key-table mechanism (common/config/config_schema.h) on a small struct of its own, and the
// properties the coordinator's and site's tables must have: every key rendered, the retired
// [evaluation] checkpoint_every refused with its reason, and docs/CONFIGURATION.md current.
#include "common/config/config_schema.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/util/error.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

struct Inner {
  std::string file = "in.pem";
  int level = 1;
};

struct Toy {
  int count = 3;
  double rate = 0.5;
  std::optional<double> limit;
  double budget = 0;  // 0 = not set
  std::string name = "toy";
  std::string out_dir = "out";
  std::vector<std::string> tags;
  std::array<double, 3> mean{0.5, 0.5, 0.5};
  uint64_t seed = 0;
  Inner inner;
};

using K = ConfigKey<Toy>;

ConfigSection<Toy> ToySection() {
  return {"toy",
          "The toy section.",
          {
              K("count", &Toy::count, "How many.", IntAtLeast(1)).Required(),
              K("rate", &Toy::rate, "", Positive()),
              K("limit", &Toy::limit, "An optional limit.",
                [](const std::optional<double>& v, const Toy& t) {
                  return Require(!v || *v >= t.rate, "a number >= rate");
                })
                  .Example("2.0"),
              K("budget", UnsetWhenZero(&Toy::budget), "",
                [](double v, const Toy&) { return Require(v >= 0, "a number >= 0"); })
                  .Example("8.0"),
              K("name", &Toy::name, "",
                [](const std::string& v, const Toy&) {
                  return v == "bad" ? Verdict::Refused("is reserved") : Verdict();
                }),
              K("out_dir", &Toy::out_dir, "").Path(),
              K("tags", &Toy::tags, ""),
              K("mean", &Toy::mean, ""),
              K("seed", &Toy::seed, ""),
              K("inner_level", Member(&Toy::inner, &Inner::level), "", IntAtLeast(0)),
          },
          {[](const Toy& t, const std::string& f) {
            if (t.count > 10 && t.tags.empty()) ThrowBadSetting(f, "toy", "tags", "a tag", "[]");
          }},
          {{"old_key", "no longer accepted: it did nothing"}}};
}

ConfigSection<Inner> InnerSection() {
  return {"inner", "", {ConfigKey<Inner>("file", &Inner::file, "The file.").Path()}};
}

class ConfigSchemaTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& text) {
    const std::string path = dir_ / "toy.toml";
    std::ofstream(path) << text;
    return path;
  }
  // Reads `text` with the toy section (and [inner], lifted), finishes and validates.
  Toy Load(const std::string& text) {
    TomlFile file(Write(text));
    Toy toy;
    ReadSection(file, ToySection(), &toy);
    ReadSection(file, InnerSection().In(&Toy::inner), &toy);
    file.Finish();
    ValidateSection(ToySection(), toy, file.path());
    return toy;
  }
  std::string ErrorOf(const std::string& text) {
    return testing::ErrorMessageOf<ConfigError>([&] { Load(text); });
  }
  testing::TempDir dir_{"fedmed-config-schema"};
};

TEST_F(ConfigSchemaTest, ReadsOnlyWhatTheFileSetsAndResolvesPaths) {
  const Toy toy = Load("[toy]\ncount = 4\nlimit = 1.5\nmean = [0.25]\n[inner]\nfile = \"k.pem\"\n");
  EXPECT_EQ(toy.count, 4);
  EXPECT_EQ(toy.rate, 0.5) << "an absent key keeps the struct's default";
  EXPECT_EQ(toy.limit, 1.5);
  EXPECT_EQ(toy.mean, (std::array<double, 3>{0.25, 0.25, 0.25}));
  EXPECT_EQ(toy.out_dir, dir_ / "out") << "a default path is resolved too";
  EXPECT_EQ(toy.inner.file, dir_ / "k.pem");
  EXPECT_FALSE(Load("[toy]\ncount = 1\n").limit) << "absent optional stays unset";
  // A present optional is set whatever its value, NaN included: presence is looked up, not
  // guessed from sentinel values.
  TomlFile file(Write("[toy]\nlimit = nan\n"));
  Toy toy2;
  EXPECT_TRUE(ToySection().keys[2].Read(file, "toy", &toy2));
  ASSERT_TRUE(toy2.limit);
  EXPECT_TRUE(std::isnan(*toy2.limit));
}

TEST_F(ConfigSchemaTest, ErrorsNameFileSectionKeyAndValue) {
  const std::string path = dir_ / "toy.toml";
  EXPECT_EQ(ErrorOf("[toy]\ncount = 0\n"), path + ": [toy] count: expected an integer >= 1, got 0");
  EXPECT_EQ(ErrorOf("[toy]\ncount = 1\nlimit = 0.25\n"),
            path + ": [toy] limit: expected a number >= rate, got 0.25");
  EXPECT_EQ(ErrorOf("[toy]\ncount = 1\nbudget = -1\n"),
            path + ": [toy] budget: expected a number >= 0, got -1.0");
  EXPECT_EQ(ErrorOf("[toy]\ncount = 1\nname = \"bad\"\n"), path + ": [toy] name: is reserved");
  EXPECT_EQ(ErrorOf("[toy]\ncount = 1\ninner_level = -2\n"),
            path + ": [toy] inner_level: expected an integer >= 0, got -2");
  EXPECT_EQ(ErrorOf("[toy]\ncount = 11\n"), path + ": [toy] tags: expected a tag, got []")
      << "section checks run after the keys' checks";
  EXPECT_NE(ErrorOf("[toy]\nrate = 1\n").find("[toy] count: expected a value, got nothing"),
            std::string::npos);
  EXPECT_NE(ErrorOf("[toy]\ncount = 1\nmean = [1.0, 2.0]\n")
                .find("[toy] mean: expected 1 number (every channel) or 3 numbers"),
            std::string::npos);
  EXPECT_NE(ErrorOf("[toy]\ncount = \"x\"\n").find("[toy] count: expected an integer"),
            std::string::npos);
  EXPECT_NE(ErrorOf("[toy]\ncount = 1\nold_key = 2\n")
                .find(path + ": [toy] old_key: no longer accepted: it did nothing (line 3)"),
            std::string::npos);
  EXPECT_NE(ErrorOf("[toy]\ncount = 1\nother = 2\n").find("[toy] other: unknown key"),
            std::string::npos);
}

TEST_F(ConfigSchemaTest, RendersCommentsValuesAndUnsetKeysAndReadsThemBack) {
  Toy toy;
  toy.tags = {"a", "b\"c"};
  toy.seed = 9007199254740993ULL;
  std::string text = RenderSection(ToySection(), toy);
  EXPECT_EQ(text.substr(0, text.find("rate")),
            "[toy]\n# The toy section.\n# How many.\ncount = 3\n");
  EXPECT_NE(text.find("# An optional limit.\n# limit = 2.0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n# budget = 8.0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nmean = [0.5, 0.5, 0.5]\n"), std::string::npos) << text;
  toy.limit = 2.5;
  toy.budget = 4;
  toy.out_dir = dir_ / "o";
  toy.inner.level = 7;
  text = RenderSection(ToySection(), toy);
  EXPECT_NE(text.find("\nlimit = 2.5\n"), std::string::npos) << text;
  const Toy loaded = Load(text);
  EXPECT_TRUE(SectionEqual(ToySection(), loaded, toy)) << text;
  Toy other = toy;
  other.inner.level = 8;
  EXPECT_FALSE(SectionEqual(ToySection(), other, toy));
  other = toy;
  other.limit.reset();
  EXPECT_FALSE(SectionEqual(ToySection(), other, toy));
}

TEST(ConfigTablesTest, EveryKeyIsRendered) {
  CoordinatorConfig c;
  c.strategy.name = "trimmed_mean";
  c.strategy.trim_fraction = 0.1;
  const std::string coordinator = RenderCoordinatorConfig(c);
  for (const ConfigSection<CoordinatorConfig>& section : CoordinatorConfigSections()) {
    EXPECT_NE(coordinator.find("[" + section.name + "]\n"), std::string::npos) << section.name;
    for (const ConfigKey<CoordinatorConfig>& key : section.keys) {
      const bool strategy_key = section.name == "strategy" && key.key() != "name" &&
                                key.key() != "trim_fraction";
      if (strategy_key) continue;  // only the chosen strategy's keys are rendered
      EXPECT_NE(coordinator.find("\n" + key.key() + " = "), std::string::npos)
          << "[" << section.name << "] " << key.key();
    }
  }
  // Unset keys ([data] window_*, [privacy] values) are rendered as comments.
  const std::string site = RenderSiteConfig(SiteConfig());
  for (const ConfigSection<SiteConfig>& section : SiteConfigSections()) {
    for (const ConfigKey<SiteConfig>& key : section.keys) {
      EXPECT_TRUE(site.find("\n" + key.key() + " = ") != std::string::npos ||
                  site.find("\n# " + key.key() + " = ") != std::string::npos)
          << key.key();
    }
  }
}

TEST(ConfigTablesTest, CheckpointEveryIsRefusedWithItsReason) {
  testing::TempDir dir("fedmed-retired-key");
  const std::string path = dir / "coordinator.toml";
  std::ofstream(path) << "[tls]\nca_cert = \"ca.pem\"\ncert = \"c.pem\"\nkey = \"c.key\"\n"
                         "allowed_sites = [\"site-1\"]\n[federation]\nmin_sites = 1\n"
                         "[evaluation]\ndata = \"x.npz\"\ncheckpoint_every = 1\n";
  const std::string e = testing::ErrorMessageOf<ConfigError>([&] { LoadCoordinatorConfig(path); });
  EXPECT_NE(e.find(path + ": [evaluation] checkpoint_every: no longer accepted: the coordinator "
                          "writes a checkpoint after every round"),
            std::string::npos)
      << e;
}

TEST(ConfigTablesTest, NamesParseIntoEnums) {
  EXPECT_EQ(ParseStrategyKind("trimmed_mean"), StrategyKind::kTrimmedMean);
  EXPECT_EQ(ParseStrategyKind("fedavg"), StrategyKind::kFedAvg);
  EXPECT_FALSE(ParseStrategyKind("fedsgd"));
  EXPECT_TRUE(StrategyNeedsIndividualUpdates("median"));
  EXPECT_FALSE(StrategyNeedsIndividualUpdates("fedadam"));
  EXPECT_EQ(ParsePrivacyMode("dp-sgd"), PrivacyMode::kDpSgd);
  EXPECT_EQ(ParsePrivacyMode("none"), PrivacyMode::kNone);
  EXPECT_FALSE(ParsePrivacyMode("dpsgd"));
  EXPECT_EQ(ParseDataFormat("image_folder"), DataFormat::kImageFolder);
  EXPECT_FALSE(ParseDataFormat("nifti"));
}

// docs/CONFIGURATION.md shows the files the tables render; on failure, the expected text is
// printed to paste into the page.
TEST(ConfigTablesTest, DocsShowWhatTheTablesRender) {
  const std::string docs = testing::ReadFile(testing::SourceDir() + "/docs/CONFIGURATION.md");
  ASSERT_FALSE(docs.empty()) << "docs/CONFIGURATION.md not found (FEDMED_SOURCE_DIR)";
  CoordinatorConfig c;
  c.tls = TlsFiles{"ca.pem", "coordinator.pem", "coordinator.key"};
  c.allowed_sites = {"site-1", "site-2", "site-3"};
  c.eval_data = "medmnist/pneumoniamnist.npz";
  const std::string coordinator = "```toml\n" + RenderCoordinatorConfig(c) + "```\n";
  EXPECT_NE(docs.find(coordinator), std::string::npos) << coordinator;
  SiteConfig s;
  s.name = "site-1";
  s.coordinator_address = "fl.example.org:7443";
  s.tls = TlsFiles{"ca.pem", "site-1.pem", "site-1.key"};
  s.data.path = "medmnist/pneumoniamnist.npz";
  const std::string site = "```toml\n" + RenderSiteConfig(s) + "```\n";
  EXPECT_NE(docs.find(site), std::string::npos) << site;
}

}  // namespace
}  // namespace fedmed
