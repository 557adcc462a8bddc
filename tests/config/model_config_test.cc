// The configuration keys of hospital data and bring-your-own models that both parties share:
// the coordinator's [preprocessing], [model] torchscript_path / initial_weights and [training]
// frozen_layers, and the site's [model] torchscript_path. Round trips, path resolution, the
// defaults that keep existing configs working, and a ConfigError naming the key for each bad
// value.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/data/preprocess.h"
#include "common/util/error.h"
#include "tests/config/config_test_util.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;

class ModelConfigTest : public testing::ConfigFileTest {
 protected:
  // A minimal coordinator.toml with `extra` appended.
  std::string Coordinator(const std::string& extra) {
    return Write("deploy/coordinator.toml",
                 "[tls]\nca_cert = \"ca.pem\"\ncert = \"c.pem\"\nkey = \"c.key\"\n"
                 "allowed_sites = [\"site-1\"]\n[federation]\nmin_sites = 1\n"
                 "[evaluation]\ndata = \"x.npz\"\n" + extra);
  }
};

TEST_F(ModelConfigTest, CoordinatorModelPreprocessingAndFrozenLayersRoundTrip) {
  CoordinatorConfig c;
  c.tls = TlsFiles{(dir_ / "ca.pem").string(), (dir_ / "c.pem").string(),
                   (dir_ / "c.key").string()};
  c.allowed_sites = {"site-1", "site-2"};
  c.output_dir = (dir_ / "out").string();
  c.model = "torchscript";
  c.torchscript_path = (dir_ / "models/mynet.pt").string();
  c.initial_weights = (dir_ / "models/pretrained.pt").string();
  c.in_channels = 3;
  c.image_size = 64;
  c.preprocessing.image_size = 64;
  c.preprocessing.channels = 3;
  c.preprocessing.normalization = "mean_std";
  c.preprocessing.mean = {0.485, 0.456, 0.406};
  c.preprocessing.std = {0.229, 0.224, 0.1 + 0.2};
  c.preprocessing.equalize = true;
  c.training.frozen_layers = {"features.0", "head.bias"};
  c.eval_data = "x.npz";
  const std::string path = Write("coordinator.toml", RenderCoordinatorConfig(c));
  const CoordinatorConfig loaded = LoadCoordinatorConfig(path);
  EXPECT_TRUE(loaded == c) << RenderCoordinatorConfig(loaded);
  EXPECT_EQ(loaded.preprocessing.Canonical(), c.preprocessing.Canonical());
  CoordinatorConfig changed = c;
  changed.training.frozen_layers.pop_back();
  EXPECT_FALSE(loaded == changed);
  changed = c;
  changed.preprocessing.equalize = false;
  EXPECT_FALSE(loaded == changed);
}

TEST_F(ModelConfigTest, RelativeModelPathsAreResolvedAgainstTheConfigFile) {
  const CoordinatorConfig c = LoadCoordinatorConfig(Coordinator(
      "[model]\nname = \"torchscript\"\ntorchscript_path = \"models/net.pt\"\n"
      "initial_weights = \"../weights/start.pt\"\n"));
  EXPECT_EQ(c.torchscript_path, (dir_ / "deploy/models/net.pt").string());
  EXPECT_EQ(c.initial_weights, (dir_ / "weights/start.pt").string());

  const std::string site = Write("hospital/site.toml",
                                 "[site]\nname = \"site-1\"\ncoordinator = \"fl:7443\"\n"
                                 "[tls]\nca_cert = \"ca.pem\"\ncert = \"s.pem\"\nkey = \"s.key\"\n"
                                 "[data]\npath = \"x.npz\"\n"
                                 "[model]\ntorchscript_path = \"net.pt\"\n");
  const SiteConfig s = LoadSiteConfig(site);
  EXPECT_EQ(s.model.torchscript_path, (dir_ / "hospital/net.pt").string());
  // Rendered with the absolute path, it loads back the same.
  EXPECT_TRUE(LoadSiteConfig(Write("copy/site.toml", RenderSiteConfig(s))) == s);
}

TEST_F(ModelConfigTest, DefaultsAgreeSoExistingConfigsKeepWorking) {
  const CoordinatorConfig c = LoadCoordinatorConfig(Coordinator(""));
  EXPECT_EQ(c.model, "cnn");
  EXPECT_EQ(c.torchscript_path, "");
  EXPECT_EQ(c.initial_weights, "");
  EXPECT_TRUE(c.training.frozen_layers.empty());
  // A site's default [data] keys give exactly the federation's default preprocessing.
  EXPECT_EQ(c.preprocessing.Canonical(), SiteDataConfig{}.preprocess.Canonical());
  EXPECT_EQ(c.preprocessing.Canonical(), "size=0;channels=0;norm=medmnist;equalize=0");
}

TEST_F(ModelConfigTest, BadModelKeysNameTheKey) {
  std::string e = testing::ErrorMessageOf<ConfigError>([&] {
    LoadCoordinatorConfig(Coordinator("[model]\nname = \"torchscript\"\n"));
  });
  EXPECT_NE(e.find("coordinator.toml: [model] torchscript_path: expected the TorchScript file"),
            std::string::npos)
      << e;
  e = testing::ErrorMessageOf<ConfigError>([&] {
    LoadCoordinatorConfig(Coordinator("[model]\nname = \"cnn\"\ntorchscript_path = \"a.pt\"\n"));
  });
  EXPECT_NE(e.find("[model] torchscript_path: expected no value unless name = \"torchscript\""),
            std::string::npos)
      << e;
}

TEST_F(ModelConfigTest, BadPreprocessingNamesTheKey) {
  std::string e = testing::ErrorMessageOf<ConfigError>([&] {
    LoadCoordinatorConfig(Coordinator("[preprocessing]\nnormalization = \"imagenet\"\n"));
  });
  EXPECT_NE(e.find("[preprocessing] normalization"), std::string::npos) << e;
  e = testing::ErrorMessageOf<ConfigError>([&] {
    LoadCoordinatorConfig(Coordinator("[preprocessing]\nmean = [0.4, 0.5]\n"));
  });
  EXPECT_NE(e.find("[preprocessing] mean: expected 1 number"), std::string::npos) << e;
  // A fixed size must be the model's.
  e = testing::ErrorMessageOf<ConfigError>([&] {
    LoadCoordinatorConfig(Coordinator("[preprocessing]\nimage_size = 64\n"));
  });
  EXPECT_NE(e.find("[preprocessing] image_size: expected 0 (keep the images' size) or [model] "
                   "image_size (28), got 64"),
            std::string::npos)
      << e;
  e = testing::ErrorMessageOf<ConfigError>([&] {
    LoadCoordinatorConfig(
        Coordinator("[model]\nin_channels = 1\nnum_classes = 2\n[preprocessing]\nchannels = 3\n"));
  });
  EXPECT_NE(e.find("[preprocessing] channels"), std::string::npos) << e;
  // Matching settings load.
  const CoordinatorConfig ok = LoadCoordinatorConfig(Coordinator(
      "[model]\nimage_size = 64\nin_channels = 3\n[preprocessing]\nimage_size = 64\n"
      "channels = 3\nnormalization = \"mean_std\"\nmean = [0.5]\nstd = [0.2, 0.3, 0.4]\n"));
  EXPECT_EQ(ok.preprocessing.Canonical(),
            "size=64;channels=3;norm=mean_std;mean=0.5,0.5,0.5;std=0.2,0.3,0.4;equalize=0");
}

TEST_F(ModelConfigTest, BadFrozenLayersNameTheEntry) {
  std::string e = testing::ErrorMessageOf<ConfigError>([&] {
    LoadCoordinatorConfig(Coordinator("[training]\nfrozen_layers = [\"conv1\", \"fc..1\"]\n"));
  });
  EXPECT_NE(e.find("coordinator.toml: [training] frozen_layers[1]: \"fc..1\""), std::string::npos)
      << e;
  e = testing::ErrorMessageOf<ConfigError>([&] {
    LoadCoordinatorConfig(Coordinator("[training]\nfrozen_layers = [\"conv1\", \"conv1\"]\n"));
  });
  EXPECT_NE(e.find("[training] frozen_layers[1]: \"conv1\" repeats frozen_layers[0]"),
            std::string::npos)
      << e;
}

TEST_F(ModelConfigTest, SiteRefusesDpSgdWithATorchScriptModel) {
  const std::string e = testing::ErrorMessageOf<ConfigError>([&] {
    LoadSiteConfig(Write("site.toml",
                         "[site]\nname = \"site-1\"\ncoordinator = \"fl:7443\"\n"
                         "[tls]\nca_cert = \"ca.pem\"\ncert = \"s.pem\"\nkey = \"s.key\"\n"
                         "[data]\npath = \"x.npz\"\n[model]\ntorchscript_path = \"net.pt\"\n"
                         "[privacy]\nmode = \"dp-sgd\"\nclipping_norm = 1.0\n"
                         "noise_multiplier = 1.1\ndelta = 1e-5\nbudget_epsilon = 8.0\n"));
  });
  EXPECT_NE(e.find("site.toml: [privacy] mode: \"dp-sgd\" cannot train a TorchScript model "
                   "([model] torchscript_path = "),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("use mode \"update\""), std::string::npos) << e;
}

}  // namespace
}  // namespace fedmed
