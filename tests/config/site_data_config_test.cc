// The [data] keys of hospital image formats, preprocessing, DICOM windowing and augmentation in
// the site config: defaults, round trips through Render/Load, and errors naming file, section and
// key.
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

const std::string kBase = testing::MinimalSiteToml("xray/manifest.csv");

std::string Write(const TempDir& dir, const std::string& name, const std::string& text) {
  std::ofstream(dir / name) << text;
  return dir / name;
}

std::string ErrorOf(const std::string& path) {
  try {
    LoadSiteConfig(path);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(SiteDataConfigTest, DefaultsKeepTheMedMnistBehaviour) {
  TempDir dir;
  const SiteConfig c = LoadSiteConfig(Write(dir, "s.toml", kBase));
  EXPECT_EQ(c.data.format, "medmnist");
  EXPECT_EQ(c.data.max_bad_fraction, 0.05);
  EXPECT_EQ(c.data.decode_threads, 0);
  EXPECT_EQ(c.data.preprocess, PreprocessSpec{});
  EXPECT_EQ(c.data.preprocess.Canonical(), "size=0;channels=0;norm=medmnist;equalize=0");
  EXPECT_FALSE(c.data.window_center.has_value());
  EXPECT_FALSE(c.data.window_width.has_value());
  EXPECT_TRUE(c.data.dicom_dir.empty());
  EXPECT_FALSE(c.data.augmentation.enabled());
}

TEST(SiteDataConfigTest, EveryKeyRoundTrips) {
  TempDir dir;
  SiteConfig c = LoadSiteConfig(Write(dir, "base.toml", kBase));
  c.config_path.clear();
  SiteDataConfig& d = c.data;
  d.format = "dicom";
  d.max_bad_fraction = 0.1 + 0.2;
  d.decode_threads = 3;
  d.preprocess.image_size = 224;
  d.preprocess.channels = 3;
  d.preprocess.normalization = "mean_std";
  d.preprocess.mean = {0.485, 0.456, 0.406};
  d.preprocess.std = {0.229, 0.224, 1.0 / 3.0};
  d.preprocess.equalize = true;
  d.window_center = -600;
  d.window_width = 1500.5;
  d.dicom_dir = "pacs/export";
  d.augmentation = AugmentationSpec{0.5, 10, 0.8, 0.2, 0.3};
  const std::string text = RenderSiteConfig(c);
  const SiteConfig loaded = LoadSiteConfig(Write(dir, "full.toml", text));
  EXPECT_TRUE(loaded.data == c.data) << text;
  EXPECT_EQ(loaded.data.preprocess.Canonical(), c.data.preprocess.Canonical());
  SiteDataConfig other = loaded.data;
  other.augmentation.contrast = 0.31;
  EXPECT_FALSE(other == loaded.data);
  other = loaded.data;
  other.window_center.reset();
  EXPECT_FALSE(other == loaded.data);

  // Unset windows are rendered as comments and read back unset.
  c.data.window_center.reset();
  c.data.window_width.reset();
  const std::string unset = RenderSiteConfig(c);
  EXPECT_NE(unset.find("# window_center = "), std::string::npos);
  EXPECT_TRUE(LoadSiteConfig(Write(dir, "unset.toml", unset)).data == c.data);
}

TEST(SiteDataConfigTest, OneMeanValueAppliesToEveryChannel) {
  TempDir dir;
  const SiteConfig c = LoadSiteConfig(Write(
      dir, "s.toml",
      std::string(kBase) + "format = \"csv\"\nnormalization = \"mean_std\"\nmean = [0.4]\n"
                           "std = [0.25]\nchannels = 1\nimage_size = 64\n"));
  EXPECT_EQ(c.data.preprocess.mean, (std::array<double, 3>{0.4, 0.4, 0.4}));
  EXPECT_EQ(c.data.preprocess.std, (std::array<double, 3>{0.25, 0.25, 0.25}));
  EXPECT_EQ(c.data.preprocess.Canonical(),
            "size=64;channels=1;norm=mean_std;mean=0.4,0.4,0.4;std=0.25,0.25,0.25;equalize=0");
}

TEST(SiteDataConfigTest, BadValuesNameFileSectionAndKey) {
  TempDir dir;
  struct Case {
    std::string extra, expected;
  };
  const std::vector<Case> cases = {
      {"format = \"nifti\"", "[data] format: expected \"medmnist\" (.npz), \"image_folder\""},
      {"max_bad_fraction = 1.5", "[data] max_bad_fraction: expected a fraction in [0, 1], got 1.5"},
      {"decode_threads = -1", "[data] decode_threads: expected 0 (one per core)"},
      {"image_size = 4", "[data] image_size: expected 0 (keep the images' size) or a size"},
      {"channels = 2", "[data] channels: expected 0 (keep), 1 (gray) or 3 (RGB), got 2"},
      {"normalization = \"imagenet\"", "[data] normalization: expected \"medmnist\""},
      {"mean = [0.4, 0.5, 0.5]", "[data] mean: expected no value (0.5): normalization is"},
      {"normalization = \"mean_std\"\nstd = [0.2, 0, 0.2]",
       "[data] std: expected finite numbers > 0"},
      {"mean = [0.1, 0.2]", "[data] mean: expected 1 number (every channel) or 3 numbers"},
      {"window_center = 40.0\nwindow_width = 400.0",
       "[data] window_center: expected no value: windowing applies to format \"dicom\" only"},
      {"format = \"dicom\"\nwindow_center = 40.0",
       "[data] window_width: expected a value together with window_center"},
      {"format = \"dicom\"\nwindow_center = 40.0\nwindow_width = 0.5",
       "[data] window_width: expected a window width >= 1"},
      {"dicom_dir = \"pacs\"", "[data] dicom_dir: expected no value: dicom_dir applies to"},
      {"augment_hflip_probability = 2.0",
       "[data] augment_hflip_probability: expected a probability in [0, 1], got 2"},
      {"augment_rotation_degrees = 270.0", "[data] augment_rotation_degrees: expected an angle"},
      {"augment_crop_scale_min = 0.0", "[data] augment_crop_scale_min: expected an area fraction"},
      {"augment_brightness = -0.1", "[data] augment_brightness: expected a finite number >= 0"},
      {"augment_contrst = 0.1", "[data] augment_contrst: unknown key"},
  };
  for (const Case& k : cases) {
    const std::string path = Write(dir, "bad.toml", std::string(kBase) + k.extra + "\n");
    const std::string message = ErrorOf(path);
    EXPECT_NE(message.find(path + ": " + k.expected.substr(0, k.expected.find(' '))),
              std::string::npos)
        << k.extra << " -> " << message;
    EXPECT_NE(message.find(k.expected), std::string::npos) << k.extra << " -> " << message;
  }
}

TEST(SiteDataConfigTest, ValidateNamesConfigBuiltInCode) {
  SiteDataConfig d;
  d.path = "x.npz";
  d.augmentation.contrast = -1;
  try {
    ValidateSiteDataConfig("", d);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("(configuration built in code): [data] augment_contrast"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace fedmed
