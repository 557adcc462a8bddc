// Coordinator and site configuration: round trips through Render/Load, path resolution, and an
// operator-readable ConfigError for every kind of bad value.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/config/toml_util.h"
#include "common/util/error.h"
#include "tests/config/config_test_util.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;
using testing::Contains;

class ConfigTest : public testing::ConfigFileTest {};

// Every setting differs from its default; strings need escaping; doubles are not short decimals.
CoordinatorConfig FullCoordinatorConfig(const fs::path& dir) {
  CoordinatorConfig c;
  c.federation = "St. Mary's \"East\" \\ Zürich\tward";
  c.listen_address = "[::1]:9443";
  c.output_dir = (dir / "out").string();
  c.threads = 3;
  c.tls = TlsFiles{(dir / "ca.pem").string(), (dir / "c.pem").string(), (dir / "c.key").string()};
  c.allowed_sites = {"site-1", "site-2", "hospital_3.north"};
  c.rounds = 12;
  c.min_sites = 2;
  c.sites_per_round = 3;
  c.round_deadline_seconds = 90.5;
  c.registration_timeout_seconds = 1e-3;
  c.seed = 9007199254740993ULL;  // not representable as a double
  c.model = "resnet18";
  c.in_channels = 3;
  c.num_classes = 7;
  c.image_size = 64;
  c.training = TrainingConfig{3, 16, "adam", 0.1 + 0.2, 0.0, 1e-5};
  c.secure_aggregation.enabled = true;
  c.secure_aggregation.threshold = 2;
  c.secure_aggregation.clip_range = 0.5;
  c.secure_aggregation.quantization_bits = 24;
  c.secure_aggregation.stage_timeout_seconds = 12.5;
  c.secure_aggregation.neighbours = 2;
  c.strategy.name = "fedadam";  // beta1 and tau left to their defaults
  c.strategy.server_learning_rate = 0.1 + 0.2;
  c.strategy.beta2 = 0.999;
  c.eval_data = "medmnist/pneumoniamnist.npz";
  c.eval_split = "val";
  c.federated_evaluation = false;
  c.eval_batch_size = 128;
  return c;
}

SiteConfig FullSiteConfig(const fs::path& dir) {
  SiteConfig c;
  c.name = "hospital_3.north";
  c.coordinator_address = "fl.hospital.example:7443";
  c.output_dir = (dir / "site-out").string();
  c.threads = 2;
  c.tls = TlsFiles{(dir / "ca.pem").string(), (dir / "s.pem").string(), (dir / "s.key").string()};
  c.data = SiteDataConfig{"/data/site3.npz", "dirichlet", 2, 5, 0.3, 77};
  c.backoff_initial_seconds = 0.25;
  c.backoff_max_seconds = 10;
  c.give_up_after_seconds = 3600;
  return c;
}

TEST_F(ConfigTest, CoordinatorConfigRoundTrips) {
  const CoordinatorConfig c = FullCoordinatorConfig(dir_);
  const std::string path = Write("coordinator.toml", RenderCoordinatorConfig(c));
  const CoordinatorConfig loaded = LoadCoordinatorConfig(path);
  EXPECT_EQ(loaded.config_path, path);
  EXPECT_EQ(loaded.federation, c.federation);
  EXPECT_EQ(loaded.seed, c.seed);
  EXPECT_EQ(loaded.training.learning_rate, c.training.learning_rate);
  EXPECT_TRUE(loaded == c) << RenderCoordinatorConfig(loaded);
  // Defaults plus the required settings round-trip too.
  CoordinatorConfig d;
  d.tls = c.tls;
  d.allowed_sites = c.allowed_sites;
  d.output_dir = c.output_dir;
  d.eval_data = "x.npz";
  EXPECT_TRUE(LoadCoordinatorConfig(Write("d.toml", RenderCoordinatorConfig(d))) == d);
}

TEST_F(ConfigTest, SiteConfigRoundTrips) {
  const SiteConfig c = FullSiteConfig(dir_);
  const std::string path = Write("site.toml", RenderSiteConfig(c));
  const SiteConfig loaded = LoadSiteConfig(path);
  EXPECT_EQ(loaded.config_path, path);
  EXPECT_TRUE(loaded == c) << RenderSiteConfig(loaded);
  SiteConfig changed = c;
  changed.data.shard = 3;
  EXPECT_FALSE(loaded == changed);
}

TEST_F(ConfigTest, MinimalFilesTakeTheDefaults) {
  const CoordinatorConfig c = LoadCoordinatorConfig(Write("c.toml", R"(
[tls]
ca_cert = "ca.pem"
cert = "coordinator.pem"
key = "coordinator.key"
allowed_sites = ["site-1", "site-2"]
[evaluation]
data = "medmnist/pneumoniamnist.npz"
)"));
  CoordinatorConfig expected;
  expected.output_dir = (dir_ / "coordinator-out").string();
  expected.tls = TlsFiles{(dir_ / "ca.pem").string(), (dir_ / "coordinator.pem").string(),
                          (dir_ / "coordinator.key").string()};
  expected.allowed_sites = {"site-1", "site-2"};
  expected.eval_data = "medmnist/pneumoniamnist.npz";
  EXPECT_TRUE(c == expected) << RenderCoordinatorConfig(c);

  const SiteConfig s = LoadSiteConfig(Write("s.toml", testing::MinimalSiteToml()));
  EXPECT_EQ(s.name, "site-1");
  EXPECT_EQ(s.output_dir, (dir_ / "site-out").string());
  EXPECT_EQ(s.data.partition, "none");
  EXPECT_EQ(s.backoff_max_seconds, 30.0);
}

TEST_F(ConfigTest, RelativePathsResolveAgainstTheConfigDirectory) {
  CoordinatorConfig c = FullCoordinatorConfig(dir_);
  c.tls = TlsFiles{"ca.pem", "certs/coordinator.pem", "../keys/coordinator.key"};
  c.output_dir = "run-1";
  const std::string path = Write("deploy/coordinator.toml", RenderCoordinatorConfig(c));
  const CoordinatorConfig loaded = LoadCoordinatorConfig(path);
  EXPECT_EQ(loaded.tls.ca_cert, (dir_ / "deploy/ca.pem").string());
  EXPECT_EQ(loaded.tls.cert, (dir_ / "deploy/certs/coordinator.pem").string());
  EXPECT_EQ(loaded.tls.key, (dir_ / "keys/coordinator.key").string());
  EXPECT_EQ(loaded.output_dir, (dir_ / "deploy/run-1").string());
  EXPECT_EQ(loaded.eval_data, "medmnist/pneumoniamnist.npz") << "data paths stay as written";

  SiteConfig s = FullSiteConfig(dir_);
  s.tls = TlsFiles{"ca.pem", "site.pem", "site.key"};
  s.data.path = "medmnist/pneumoniamnist.npz";
  const SiteConfig site = LoadSiteConfig(Write("hospital/site.toml", RenderSiteConfig(s)));
  EXPECT_EQ(site.tls.key, (dir_ / "hospital/site.key").string());
  EXPECT_EQ(site.data.path, "medmnist/pneumoniamnist.npz");
}

// A base file, one edit, and what the error must mention.
struct BadCase {
  const char* name;
  const char* find;
  const char* replace;
  std::vector<std::string> expected;  // substrings of the message besides the file name
};

constexpr const char* kCoordinatorBase = R"([coordinator]
federation = "fedmed"
listen = "0.0.0.0:7443"
[tls]
ca_cert = "ca.pem"
cert = "coordinator.pem"
key = "coordinator.key"
allowed_sites = ["site-1", "site-2", "site-3"]
[federation]
rounds = 5
min_sites = 2
[model]
name = "cnn"
[training]
optimizer = "sgd"
learning_rate = 0.01
[evaluation]
data = "medmnist/pneumoniamnist.npz"
split = "test"
federated = true
)";

const std::string kSiteBase = testing::MinimalSiteToml() + R"(partition = "iid"
shard = 1
num_shards = 3
alpha = 0.5
[connection]
backoff_initial_seconds = 0.5
backoff_max_seconds = 30
)";

std::string Edit(std::string text, const std::string& find, const std::string& replace) {
  const size_t at = text.find(find);
  if (at == std::string::npos) ADD_FAILURE() << "base has no '" << find << "'";
  return at == std::string::npos ? text : text.replace(at, find.size(), replace);
}

template <typename Load>
void ExpectBadCases(const std::string& path, const std::string& base,
                    const std::vector<BadCase>& cases, Load load) {
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::ofstream(path) << Edit(base, c.find, c.replace);
    try {
      load(path);
      ADD_FAILURE() << "no ConfigError";
    } catch (const ConfigError& e) {
      EXPECT_TRUE(Contains(e.what(), path + ":"));
      for (const std::string& part : c.expected) EXPECT_TRUE(Contains(e.what(), part));
    }
  }
}

TEST_F(ConfigTest, BaseFilesAreValid) {
  EXPECT_NO_THROW(LoadCoordinatorConfig(Write("c.toml", kCoordinatorBase)));
  EXPECT_NO_THROW(LoadSiteConfig(Write("s.toml", kSiteBase)));
}

TEST_F(ConfigTest, BadCoordinatorValuesNameFileSectionAndKey) {
  const std::vector<BadCase> cases = {
      {"wrong type", "rounds = 5", "rounds = \"five\"",
       {"[federation] rounds: expected an integer", "got the string \"five\" (line 10)"}},
      {"float for integer", "rounds = 5", "rounds = 2.5",
       {"[federation] rounds: expected an integer", "got the number 2.5"}},
      {"integer overflow", "rounds = 5", "rounds = 99999999999",
       {"[federation] rounds: expected an integer between -2147483648 and 2147483647"}},
      {"out of range", "rounds = 5", "rounds = 0",
       {"[federation] rounds: expected an integer >= 1, got 0"}},
      {"negative learning rate", "learning_rate = 0.01", "learning_rate = -0.5",
       {"[training] learning_rate: expected a number > 0, got -0.5"}},
      {"unknown optimizer", "optimizer = \"sgd\"", "optimizer = \"rmsprop\"",
       {"[training] optimizer: expected \"sgd\" or \"adam\", got \"rmsprop\""}},
      {"unknown split", "split = \"test\"", "split = \"validation\"", {"[evaluation] split"}},
      {"bool type", "federated = true", "federated = \"yes\"",
       {"[evaluation] federated: expected true or false"}},
      {"unknown key", "learning_rate = 0.01", "lerning_rate = 0.01",
       {"[training] lerning_rate: unknown key", "accepted keys in [training]:",
        "learning_rate"}},
      {"unknown section", "[model]", "[modle]",
       {"unknown section [modle]", "accepted sections:", "[model]"}},
      {"missing required key", "cert = \"coordinator.pem\"\n", "",
       {"[tls] cert: expected a value, got nothing (this key is required)"}},
      {"quorum above the allow-list", "min_sites = 2", "min_sites = 4",
       {"[federation] min_sites: expected an integer between 1 and 3", "got 4"}},
      {"sites per round below quorum", "min_sites = 2", "min_sites = 2\nsites_per_round = 1",
       {"[federation] sites_per_round"}},
      {"duplicate site", "\"site-3\"]", "\"site-1\"]",
       {"[tls] allowed_sites: expected unique site names"}},
      {"bad site name", "\"site-3\"]", "\"site 3\"]", {"[tls] allowed_sites", "\"site 3\""}},
      {"allow-list is not an array", "allowed_sites = [\"site-1\", \"site-2\", \"site-3\"]",
       "allowed_sites = \"site-1\"", {"[tls] allowed_sites: expected an array of strings"}},
      {"no model shape", "data = \"medmnist/pneumoniamnist.npz\"", "data = \"\"",
       {"[model] in_channels"}},
      {"empty federation name", "federation = \"fedmed\"", "federation = \"\"",
       {"[coordinator] federation: expected a non-empty name, got \"\""}},
      {"listen without port", "listen = \"0.0.0.0:7443\"", "listen = \"0.0.0.0\"",
       {"[coordinator] listen: expected host:port"}},
      {"negative seed", "min_sites = 2", "min_sites = 2\nseed = -1",
       {"[federation] seed: expected a non-negative integer"}},
      {"unknown strategy", "[evaluation]", "[strategy]\nname = \"fedsgd\"\n[evaluation]",
       {"[strategy] name: expected \"fedavg\", \"fedprox\", \"fedadam\", \"fedyogi\", "
        "\"fedadagrad\", \"median\" or \"trimmed_mean\", got \"fedsgd\""}},
      {"proximal_mu with fedavg", "[evaluation]", "[strategy]\nproximal_mu = 0.1\n[evaluation]",
       {"[strategy] proximal_mu: applies only to fedprox, not to name = \"fedavg\""}},
      {"fedprox without proximal_mu", "[evaluation]",
       "[strategy]\nname = \"fedprox\"\n[evaluation]",
       {"[strategy] proximal_mu: expected a number > 0 (required with name = \"fedprox\"), got "
        "nothing"}},
      {"zero proximal_mu", "[evaluation]",
       "[strategy]\nname = \"fedprox\"\nproximal_mu = 0\n[evaluation]",
       {"[strategy] proximal_mu: expected a number > 0, got 0.0"}},
      {"beta2 with fedadagrad", "[evaluation]",
       "[strategy]\nname = \"fedadagrad\"\nbeta2 = 0.99\n[evaluation]",
       {"[strategy] beta2: applies only to fedadam and fedyogi, not to name = \"fedadagrad\""}},
      {"tau with median", "[evaluation]", "[strategy]\nname = \"median\"\ntau = 1e-3\n[evaluation]",
       {"[strategy] tau: applies only to fedadam, fedyogi and fedadagrad"}},
      {"trim_fraction with fedavg", "[evaluation]", "[strategy]\ntrim_fraction = 0.1\n[evaluation]",
       {"[strategy] trim_fraction: applies only to trimmed_mean"}},
      {"beta1 of 1", "[evaluation]", "[strategy]\nname = \"fedadam\"\nbeta1 = 1\n[evaluation]",
       {"[strategy] beta1: expected a number in [0, 1), got 1.0"}},
      {"zero tau", "[evaluation]", "[strategy]\nname = \"fedyogi\"\ntau = 0\n[evaluation]",
       {"[strategy] tau: expected a number > 0, got 0.0"}},
      {"infinite server learning rate", "[evaluation]",
       "[strategy]\nname = \"fedadam\"\nserver_learning_rate = inf\n[evaluation]",
       {"[strategy] server_learning_rate: expected a number > 0, got inf"}},
      {"nan beta2", "[evaluation]", "[strategy]\nname = \"fedyogi\"\nbeta2 = nan\n[evaluation]",
       {"[strategy] beta2: expected a number in [0, 1), got nan"}},
      {"trim_fraction of a half", "[evaluation]",
       "[strategy]\nname = \"trimmed_mean\"\ntrim_fraction = 0.5\n[evaluation]",
       {"[strategy] trim_fraction: expected a number in [0, 0.5), got 0.5"}},
      {"server learning rate as a string", "[evaluation]",
       "[strategy]\nname = \"fedadam\"\nserver_learning_rate = \"fast\"\n[evaluation]",
       {"[strategy] server_learning_rate: expected a number", "got the string \"fast\""}},
      {"unknown strategy key", "[evaluation]", "[strategy]\nmu = 0.1\n[evaluation]",
       {"[strategy] mu: unknown key", "proximal_mu", "trim_fraction"}},
  };
  const std::string path = (dir_ / "coordinator.toml").string();
  ExpectBadCases(path, kCoordinatorBase, cases,
                 [](const std::string& p) { LoadCoordinatorConfig(p); });
}

TEST_F(ConfigTest, SecureAggregationIsValidatedAndRefusesRobustStrategies) {
  const auto load = [&](const std::string& extra) {
    return LoadCoordinatorConfig(Write("sa.toml", std::string(kCoordinatorBase) + extra));
  };
  EXPECT_TRUE(load("\n[secure_aggregation]\nenabled = true\n").secure_aggregation.enabled);
  const auto expect_error = [&](const std::string& extra, const std::string& fragment) {
    try {
      load(extra);
      ADD_FAILURE() << "accepted: " << extra;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_error("\n[secure_aggregation]\nenabled = true\nthreshold = 4\n",
               "[secure_aggregation] threshold: expected 0 (a majority");
  expect_error("\n[secure_aggregation]\nthreshold = 1\n", "[secure_aggregation] threshold");
  expect_error("\n[secure_aggregation]\nquantization_bits = 40\n",
               "[secure_aggregation] quantization_bits");
  expect_error("\n[secure_aggregation]\nclip_range = 0\n", "[secure_aggregation] clip_range");
  expect_error("\n[secure_aggregation]\nquantization_bits = 8\nclip_range = 100\n",
               "[secure_aggregation] clip_range: expected a number > 0 with 2 * clip_range");
  expect_error("\n[secure_aggregation]\nneighbours = 3\n",
               "[secure_aggregation] neighbours: expected 0 (every other site) or an even number");
  for (const char* robust : {"median", "trimmed_mean"}) {
    expect_error(std::string("\n[strategy]\nname = \"") + robust +
                     "\"\n\n[secure_aggregation]\nenabled = true\n",
                 "needs each site's update on its own, but [secure_aggregation] enabled = true");
  }
}

TEST_F(ConfigTest, EveryStrategyRoundTripsWithItsDefaults) {
  const CoordinatorConfig base = FullCoordinatorConfig(dir_);
  std::vector<StrategyConfig> strategies(9);
  strategies[0].name = "fedavg";
  strategies[1].name = "fedprox";
  strategies[1].proximal_mu = 0.01;
  strategies[2].name = "fedadam";
  strategies[3].name = "fedyogi";
  strategies[3].server_learning_rate = 0.0316;
  strategies[3].beta1 = 0.0;
  strategies[3].beta2 = 0.5;
  strategies[3].tau = 1e-6;
  strategies[4].name = "fedadagrad";
  strategies[4].beta1 = 0.9;
  strategies[5].name = "median";
  strategies[6].name = "trimmed_mean";
  strategies[7].name = "trimmed_mean";
  strategies[7].trim_fraction = 0.0;
  strategies[8].name = "fedadam";
  strategies[8].tau = 0.1 + 0.2;
  for (const StrategyConfig& strategy : strategies) {
    SCOPED_TRACE(strategy.name);
    CoordinatorConfig c = base;
    c.strategy = strategy;
    c.secure_aggregation.enabled = !StrategyNeedsIndividualUpdates(strategy.name);
    const std::string text = RenderCoordinatorConfig(c);
    const CoordinatorConfig loaded = LoadCoordinatorConfig(Write("c.toml", text));
    EXPECT_TRUE(loaded.strategy == strategy) << text;
    EXPECT_TRUE(loaded == c) << text;
  }
  // Unset keys that apply are rendered as comments showing the default; others not at all.
  CoordinatorConfig c = base;
  c.strategy = strategies[2];
  const std::string text = RenderCoordinatorConfig(c);
  EXPECT_TRUE(Contains(text, "[strategy]\n"));
  EXPECT_TRUE(Contains(text, "name = \"fedadam\"\n"));
  EXPECT_TRUE(Contains(text, "# server_learning_rate = 0.1  (the default for fedadam)\n"));
  EXPECT_TRUE(Contains(text, "# beta2 = 0.99  (the default for fedadam)\n"));
  EXPECT_TRUE(Contains(text, "# tau = 1e-09  (the default for fedadam)\n"));
  EXPECT_FALSE(Contains(text, "proximal_mu"));
  EXPECT_FALSE(Contains(text, "trim_fraction"));
  // The default configuration renders fedavg with no numeric key.
  const std::string plain = RenderCoordinatorConfig(CoordinatorConfig());
  EXPECT_TRUE(Contains(plain, "name = \"fedavg\"\n"));
  EXPECT_FALSE(Contains(plain, "tau ="));
}

TEST_F(ConfigTest, StrategyDefaultsAreFlowers) {
  StrategyConfig s;
  EXPECT_TRUE(WithStrategyDefaults(s) == s) << "fedavg has no numeric key";
  s.name = "fedadam";
  StrategyConfig d = WithStrategyDefaults(s);
  EXPECT_EQ(d.server_learning_rate, 0.1);
  EXPECT_EQ(d.beta1, 0.9);
  EXPECT_EQ(d.beta2, 0.99);
  EXPECT_EQ(d.tau, 1e-9);
  EXPECT_FALSE(d.proximal_mu);
  EXPECT_FALSE(d.trim_fraction);
  s.name = "fedyogi";
  s.beta1 = 0.5;
  d = WithStrategyDefaults(s);
  EXPECT_EQ(d.server_learning_rate, 0.01);
  EXPECT_EQ(d.beta1, 0.5) << "a set value is kept";
  EXPECT_EQ(d.beta2, 0.99);
  EXPECT_EQ(d.tau, 1e-3);
  s = StrategyConfig();
  s.name = "fedadagrad";
  d = WithStrategyDefaults(s);
  EXPECT_EQ(d.server_learning_rate, 0.1);
  EXPECT_EQ(d.beta1, 0.0);
  EXPECT_FALSE(d.beta2) << "FedAdagrad has no beta2";
  EXPECT_EQ(d.tau, 1e-9);
  s.name = "trimmed_mean";
  EXPECT_EQ(WithStrategyDefaults(s).trim_fraction, 0.2);
  s.name = "fedprox";
  EXPECT_FALSE(WithStrategyDefaults(s).proximal_mu) << "no default: required";

  s = StrategyConfig();
  s.name = "median";
  s.beta1 = 0.9;
  try {
    ValidateStrategyConfig(s, "");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "(configuration built in code): [strategy] beta1: applies only to fedadam, "
                 "fedyogi and fedadagrad, not to name = \"median\" (remove the key or choose "
                 "another strategy)");
  }
}

TEST_F(ConfigTest, BadSiteValuesNameFileSectionAndKey) {
  const std::vector<BadCase> cases = {
      {"shard above num_shards", "shard = 1", "shard = 4",
       {"[data] shard: expected an integer between 1 and 3 (num_shards), got 4"}},
      {"partition none with shards", "partition = \"iid\"", "partition = \"none\"",
       {"[data] num_shards: expected 1 with partition \"none\""}},
      {"unknown partition", "partition = \"iid\"", "partition = \"random\"",
       {"[data] partition"}},
      {"zero alpha", "alpha = 0.5", "alpha = 0", {"[data] alpha: expected a number > 0, got 0.0"}},
      {"backoff max below initial", "backoff_max_seconds = 30", "backoff_max_seconds = 0.1",
       {"[connection] backoff_max_seconds"}},
      {"missing name", "name = \"site-1\"\n", "", {"[site] name", "required"}},
      {"missing data path", "path = \"medmnist/pneumoniamnist.npz\"\n", "", {"[data] path"}},
      {"address without port", "coordinator = \"localhost:7443\"",
       "coordinator = \"localhost\"", {"[site] coordinator: expected the coordinator's host:port"}},
      {"invalid name", "name = \"site-1\"", "name = \"site 1\"", {"[site] name"}},
      {"proxy without scheme", "backoff_max_seconds = 30",
       "backoff_max_seconds = 30\n[coordinator]\nproxy = \"proxy.hospital.example:3128\"",
       {"[coordinator] proxy: expected \"http://host:port\"", "got \"proxy.hospital.example:3128\""}},
      {"https proxy", "backoff_max_seconds = 30",
       "backoff_max_seconds = 30\n[coordinator]\nproxy = \"https://proxy:3128\"",
       {"[coordinator] proxy: expected"}},
      {"unknown key", "backoff_max_seconds = 30", "backoff_max_seconds = 30\nretry = true",
       {"[connection] retry: unknown key", "give_up_after_seconds"}},
      {"wrong type", "num_shards = 3", "num_shards = [3]",
       {"[data] num_shards: expected an integer", "got the array"}},
  };
  const std::string path = (dir_ / "site.toml").string();
  ExpectBadCases(path, kSiteBase, cases, [](const std::string& p) { LoadSiteConfig(p); });
}

TEST_F(ConfigTest, SectionWrittenAsAValueIsAnError) {
  const std::string base = kSiteBase;
  const std::string path =
      Write("s.toml", "connection = 5\n" + base.substr(0, base.find("[connection]")));
  try {
    LoadSiteConfig(path);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_TRUE(Contains(e.what(), path + ": [connection]: expected a table"));
  }
}

TEST_F(ConfigTest, SyntaxErrorNamesFileAndLine) {
  const std::string path = Write("c.toml", "[coordinator]\nthreads = = 2\n");
  try {
    LoadCoordinatorConfig(path);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_TRUE(Contains(e.what(), path + ":2:"));
    EXPECT_TRUE(Contains(e.what(), "not valid TOML"));
  }
  const std::string missing = (dir_ / "nope.toml").string();
  try {
    LoadSiteConfig(missing);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_TRUE(Contains(e.what(), missing + ": cannot read configuration file"));
  }
  try {
    LoadSiteConfig(dir_.string());
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_TRUE(Contains(e.what(), dir_.string() + ": cannot read configuration file"));
  }
}

TEST_F(ConfigTest, ValidateNamesConfigBuiltInCode) {
  CoordinatorConfig c = FullCoordinatorConfig(dir_);
  EXPECT_NO_THROW(ValidateCoordinatorConfig(c));
  c.training.momentum = 1.0;
  try {
    ValidateCoordinatorConfig(c);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "(configuration built in code): [training] momentum: expected a number in "
                 "[0, 1), got 1.0");
  }
}

TEST_F(ConfigTest, FederationSectionsEmbedInOtherFiles) {
  const std::string path = Write("experiment.toml", R"(
[simulation]
name = "iid-3"
[federation]
rounds = 9
[training]
optimizer = "adam"
[strategy]
name = "fedprox"
proximal_mu = 0.1
)");
  TomlFile file(path);
  std::string name;
  CoordinatorConfig c;
  file.Read("simulation", "name", &name);
  ReadFederationSections(file, &c);
  file.Finish();
  EXPECT_EQ(name, "iid-3");
  EXPECT_EQ(c.rounds, 9);
  EXPECT_EQ(c.training.optimizer, "adam");
  EXPECT_EQ(c.strategy.name, "fedprox");
  EXPECT_EQ(c.strategy.proximal_mu, 0.1);
  EXPECT_FALSE(c.strategy.tau);
  EXPECT_EQ(c.min_sites, 2);

  TomlFile typo(Write("typo.toml", "[training]\nbatch = 8\n"));
  ReadFederationSections(typo, &c);
  EXPECT_THROW(typo.Finish(), ConfigError);
  TomlFile tls(Write("tls.toml", "[tls]\ncert = \"x.pem\"\n"));
  ReadFederationSections(tls, &c);
  EXPECT_THROW(tls.Finish(), ConfigError) << "[tls] is not one of the federation sections";
}

TEST(TomlUtilTest, LiteralsAndAddresses) {
  EXPECT_EQ(TomlDouble(600), "600.0");
  EXPECT_EQ(TomlDouble(0.01), "0.01");
  EXPECT_EQ(TomlDouble(-2.5e-7), "-2.5e-07");
  EXPECT_EQ(TomlString("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
  EXPECT_EQ(TomlStringArray({"a", "b"}), "[\"a\", \"b\"]");
  std::string host;
  int port = 0;
  EXPECT_TRUE(ParseHostPort("[2001:db8::1]:7443", &host, &port));
  EXPECT_EQ(host, "2001:db8::1");
  EXPECT_EQ(port, 7443);
  EXPECT_TRUE(ParseHostPort("localhost:0", &host, &port));
  EXPECT_FALSE(ParseHostPort("::1:7443", &host, &port));
  EXPECT_FALSE(ParseHostPort("localhost:70000", &host, &port));
  EXPECT_FALSE(ParseHostPort("localhost:", &host, &port));
  EXPECT_FALSE(ParseHostPort(":7443", &host, &port));
  EXPECT_TRUE(IsValidSiteName("site-1"));
  EXPECT_FALSE(IsValidSiteName("-site"));
  EXPECT_FALSE(IsValidSiteName("../etc"));
  EXPECT_FALSE(IsValidSiteName(std::string(65, 'a')));
}

}  // namespace
}  // namespace fedmed
