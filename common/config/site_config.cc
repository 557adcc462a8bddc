#include "common/config/site_config.h"

#include <array>
#include <cctype>
#include <cmath>
#include <utility>
#include <limits>
#include <tuple>

#include "common/config/toml_util.h"
#include "common/util/error.h"

namespace fedmed {

namespace {

using Presence = TomlFile::Presence;

constexpr uint64_t kMaxSeed = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

// [data] keys of image files, preprocessing and augmentation.
void ReadSiteImageKeys(TomlFile& file, SiteDataConfig* d) {
  file.Read("data", "format", &d->format);
  file.Read("data", "max_bad_fraction", &d->max_bad_fraction);
  file.Read("data", "decode_threads", &d->decode_threads);
  ReadPreprocessKeys(file, "data", &d->preprocess);
  for (const auto& [key, out] : {std::pair<const char*, std::optional<double>*>{
                                     "window_center", &d->window_center},
                                 {"window_width", &d->window_width}}) {
    double v = std::numeric_limits<double>::quiet_NaN();
    file.Read("data", key, &v);
    if (!std::isnan(v)) *out = v;
  }
  file.Read("data", "dicom_dir", &d->dicom_dir);
  AugmentationSpec& a = d->augmentation;
  file.Read("data", "augment_hflip_probability", &a.hflip_probability);
  file.Read("data", "augment_rotation_degrees", &a.rotation_degrees);
  file.Read("data", "augment_crop_scale_min", &a.crop_scale_min);
  file.Read("data", "augment_brightness", &a.brightness);
  file.Read("data", "augment_contrast", &a.contrast);
}

}  // namespace

void ReadPreprocessKeys(TomlFile& file, const std::string& section, PreprocessSpec* spec) {
  file.Read(section, "image_size", &spec->image_size);
  file.Read(section, "channels", &spec->channels);
  file.Read(section, "normalization", &spec->normalization);
  for (const auto& [key, out] : {std::pair<const char*, std::array<double, 3>*>{
                                     "mean", &spec->mean},
                                 {"std", &spec->std}}) {
    std::vector<double> values;
    file.Read(section, key, &values);
    if (values.empty()) continue;
    if (values.size() == 1) values.assign(3, values[0]);
    if (values.size() != 3) {
      ThrowBadSetting(file.path(), section, key,
                      "1 number (every channel) or 3 numbers (R, G, B), e.g. [0.485, 0.456, "
                      "0.406]",
                      std::to_string(values.size()) + " numbers");
    }
    *out = {values[0], values[1], values[2]};
  }
  file.Read(section, "equalize", &spec->equalize);
}

std::string RenderPreprocessKeys(const PreprocessSpec& p) {
  const auto triple = [](const std::array<double, 3>& v) {
    return "[" + TomlDouble(v[0]) + ", " + TomlDouble(v[1]) + ", " + TomlDouble(v[2]) + "]";
  };
  return std::string() +
         "# Preprocessing, the same at every site: square size in pixels (0 = keep), channels\n"
         "# (1 gray, 3 RGB, 0 = keep), normalization \"medmnist\" ((x/255-0.5)/0.5) or \"mean_std\"\n"
         "# with per-channel mean and std, and per-image histogram equalisation.\n"
         "image_size = " + std::to_string(p.image_size) + "\n"
         "channels = " + std::to_string(p.channels) + "\n"
         "normalization = " + TomlString(p.normalization) + "\n"
         "mean = " + triple(p.mean) + "\n"
         "std = " + triple(p.std) + "\n"
         "equalize = " + TomlBool(p.equalize) + "\n";
}

void ValidateSiteDataImageKeys(const std::string& f, const SiteDataConfig& d) {
  const auto require = [&f](bool ok, const char* key, const std::string& expected,
                            const std::string& got) {
    if (!ok) ThrowBadSetting(f, "data", key, expected, got);
  };
  const bool dicom = d.format == "dicom";
  require(d.format == "medmnist" || d.format == "image_folder" || d.format == "csv" || dicom,
          "format",
          "\"medmnist\" (.npz), \"image_folder\" (root/<class>/<images>), \"csv\" (manifest "
          "of PNG/JPEG files) or \"dicom\" (manifest of DICOM files)",
          TomlString(d.format));
  require(d.max_bad_fraction >= 0 && d.max_bad_fraction <= 1, "max_bad_fraction",
          "a fraction in [0, 1]", TomlDouble(d.max_bad_fraction));
  require(d.decode_threads >= 0, "decode_threads",
          "0 (one per core) or a number of threads >= 1", std::to_string(d.decode_threads));
  ValidatePreprocessSpec(d.preprocess, SettingName(f, "data", "").substr(
                                           0, SettingName(f, "data", "").size() - 1));
  const auto number = [](const std::optional<double>& v) {
    return v ? TomlDouble(*v) : std::string("nothing");
  };
  for (const auto& [key, v] : {std::pair<const char*, const std::optional<double>*>{
                                   "window_center", &d.window_center},
                               {"window_width", &d.window_width}}) {
    require(!v->has_value() || dicom, key, "no value: windowing applies to format \"dicom\" only",
            number(*v));
    require(!v->has_value() || std::isfinite(**v), key, "a finite number", number(*v));
  }
  require(d.window_center.has_value() == d.window_width.has_value(),
          d.window_center ? "window_width" : "window_center",
          "a value together with " +
              std::string(d.window_center ? "window_center" : "window_width") +
              " (both or neither; neither = the window in each file)",
          "nothing");
  require(!d.window_width || *d.window_width >= 1, "window_width",
          "a window width >= 1 (in modality units, e.g. HU)", number(d.window_width));
  require(d.dicom_dir.empty() || dicom, "dicom_dir",
          "no value: dicom_dir applies to format \"dicom\" only", TomlString(d.dicom_dir));
  ValidateAugmentationSpec(d.augmentation, SettingName(f, "data", "augment_"));
}

void ValidateSitePrivacyConfig(const std::string& f, const SitePrivacyConfig& p) {
  const auto require = [&f](bool ok, const char* key, const std::string& expected,
                            const std::string& got) {
    if (!ok) ThrowBadSetting(f, "privacy", key, expected, got);
  };
  const auto finite = [](double v) { return std::isfinite(v); };
  require(p.mode == "none" || p.mode == "dp-sgd" || p.mode == "update", "mode",
          "\"none\", \"dp-sgd\" (per-image DP-SGD) or \"update\" (site-level DP)",
          TomlString(p.mode));
  require(p.conversion == "balle2020" || p.conversion == "classic", "conversion",
          "\"balle2020\" or \"classic\"", TomlString(p.conversion));
  const std::pair<const char*, double> values[] = {
      {"clipping_norm", p.clipping_norm}, {"noise_multiplier", p.noise_multiplier},
      {"target_epsilon", p.target_epsilon}, {"delta", p.delta},
      {"budget_epsilon", p.budget_epsilon}};
  if (!p.enabled()) {
    for (const auto& [key, v] : values) {
      require(v == 0, key, "no value: mode is \"none\" (no differential privacy); set mode to "
                           "\"dp-sgd\" or \"update\" to use it",
              TomlDouble(v));
    }
    return;
  }
  for (const auto& [key, v] : values) {
    require(finite(v) && v >= 0, key, "a finite number > 0", TomlDouble(v));
  }
  const std::string what = p.mode == "dp-sgd" ? "per-sample" : "whole-update";
  require(p.clipping_norm > 0, "clipping_norm",
          "the " + what + " L2 clipping norm, a number > 0 (required with mode \"" + p.mode +
              "\")",
          "nothing");
  require(p.delta > 0 && p.delta < 1, "delta",
          "a probability in (0, 1), e.g. 1e-5 (required with mode \"" + p.mode + "\")",
          p.delta == 0 ? std::string("nothing") : TomlDouble(p.delta));
  require(p.budget_epsilon > 0, "budget_epsilon",
          "the most epsilon this site may ever spend, a number > 0 (required with mode \"" +
              p.mode + "\")",
          "nothing");
  require((p.noise_multiplier > 0) != (p.target_epsilon > 0),
          p.noise_multiplier > 0 ? "target_epsilon" : "noise_multiplier",
          "exactly one of noise_multiplier (> 0) and target_epsilon (> 0)",
          p.noise_multiplier > 0 ? "both" : "neither");
  require(p.target_epsilon <= p.budget_epsilon, "target_epsilon",
          "at most budget_epsilon (" + TomlDouble(p.budget_epsilon) + ")",
          TomlDouble(p.target_epsilon));
}

void ReadSitePrivacySection(TomlFile& file, SitePrivacyConfig* out) {
  SitePrivacyConfig& p = *out;
  file.Read("privacy", "mode", &p.mode);
  file.Read("privacy", "clipping_norm", &p.clipping_norm);
  file.Read("privacy", "noise_multiplier", &p.noise_multiplier);
  file.Read("privacy", "target_epsilon", &p.target_epsilon);
  file.Read("privacy", "delta", &p.delta);
  file.Read("privacy", "budget_epsilon", &p.budget_epsilon);
  file.Read("privacy", "conversion", &p.conversion);
}

bool IsValidSiteName(const std::string& name) {
  if (name.empty() || name.size() > 64 || !std::isalnum(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  for (const char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

bool operator==(const SiteDataConfig& a, const SiteDataConfig& b) {
  const auto settings = [](const SiteDataConfig& d) {
    return std::tie(d.path, d.format, d.partition, d.shard, d.num_shards, d.alpha, d.seed,
                    d.max_bad_fraction, d.decode_threads, d.preprocess, d.window_center,
                    d.window_width, d.dicom_dir, d.augmentation);
  };
  return settings(a) == settings(b);
}

bool operator==(const SitePrivacyConfig& a, const SitePrivacyConfig& b) {
  return std::tie(a.mode, a.clipping_norm, a.noise_multiplier, a.target_epsilon, a.delta,
                  a.budget_epsilon, a.conversion) ==
         std::tie(b.mode, b.clipping_norm, b.noise_multiplier, b.target_epsilon, b.delta,
                  b.budget_epsilon, b.conversion);
}

bool operator==(const SiteModelConfig& a, const SiteModelConfig& b) {
  return a.torchscript_path == b.torchscript_path;
}

bool operator==(const SiteConfig& a, const SiteConfig& b) {
  const auto settings = [](const SiteConfig& c) {
    return std::tie(c.name, c.coordinator_address, c.output_dir, c.threads, c.tls, c.data,
                    c.backoff_initial_seconds, c.backoff_max_seconds, c.give_up_after_seconds,
                    c.privacy, c.model);
  };
  return settings(a) == settings(b);
}

SiteConfig LoadSiteConfig(const std::string& path) {
  TomlFile file(path);
  SiteConfig c;
  c.config_path = path;
  file.Read("site", "name", &c.name, Presence::kRequired);
  file.Read("site", "coordinator", &c.coordinator_address, Presence::kRequired);
  file.Read("site", "output_dir", &c.output_dir);
  file.Read("site", "threads", &c.threads);
  file.Read("tls", "ca_cert", &c.tls.ca_cert, Presence::kRequired);
  file.Read("tls", "cert", &c.tls.cert, Presence::kRequired);
  file.Read("tls", "key", &c.tls.key, Presence::kRequired);
  file.Read("data", "path", &c.data.path, Presence::kRequired);
  file.Read("data", "partition", &c.data.partition);
  file.Read("data", "shard", &c.data.shard);
  file.Read("data", "num_shards", &c.data.num_shards);
  file.Read("data", "alpha", &c.data.alpha);
  file.Read("data", "seed", &c.data.seed);
  ReadSiteImageKeys(file, &c.data);
  file.Read("connection", "backoff_initial_seconds", &c.backoff_initial_seconds);
  file.Read("connection", "backoff_max_seconds", &c.backoff_max_seconds);
  file.Read("connection", "give_up_after_seconds", &c.give_up_after_seconds);
  ReadSitePrivacySection(file, &c.privacy);
  file.Read("model", "torchscript_path", &c.model.torchscript_path);
  file.Finish();

  c.output_dir = ResolveRelativeTo(path, c.output_dir);
  ResolveTlsPaths(path, &c.tls);
  c.model.torchscript_path = ResolveRelativeTo(path, c.model.torchscript_path);
  ValidateSiteConfig(c);
  return c;
}

void ValidateSiteConfig(const SiteConfig& c) {
  const std::string& f = c.config_path;
  const auto require = [&f](bool ok, const char* section, const char* key,
                            const std::string& expected, const std::string& got) {
    if (!ok) ThrowBadSetting(f, section, key, expected, got);
  };
  const auto str = [](const std::string& s) { return TomlString(s); };
  const auto num = [](auto v) { return std::to_string(v); };

  require(IsValidSiteName(c.name), "site", "name",
          std::string(kSiteNameRule) + " (the CN of this site's certificate)", str(c.name));
  std::string host;
  int port = 0;
  require(ParseHostPort(c.coordinator_address, &host, &port), "site", "coordinator",
          "the coordinator's host:port (e.g. \"fl.hospital.example:7443\")",
          str(c.coordinator_address));
  require(!c.output_dir.empty(), "site", "output_dir", "a directory", str(c.output_dir));
  require(c.threads >= 1, "site", "threads", "an integer >= 1", num(c.threads));

  require(!c.tls.ca_cert.empty(), "tls", "ca_cert", "the CA certificate file", str(""));
  require(!c.tls.cert.empty(), "tls", "cert", "this site's certificate file", str(""));
  require(!c.tls.key.empty(), "tls", "key", "this site's private key file", str(""));

  const SiteDataConfig& d = c.data;
  require(!d.path.empty(), "data", "path",
          "the site's images (.npz archive, image folder or manifest, see format)", str(d.path));
  require(d.partition == "none" || d.partition == "iid" || d.partition == "dirichlet" ||
              d.partition == "quantity",
          "data", "partition", "\"none\", \"iid\", \"dirichlet\" or \"quantity\"",
          str(d.partition));
  require(d.num_shards >= 1, "data", "num_shards", "an integer >= 1", num(d.num_shards));
  require(d.partition != "none" || d.num_shards == 1, "data", "num_shards",
          "1 with partition \"none\" (the site uses the whole file)", num(d.num_shards));
  require(d.shard >= 1 && d.shard <= d.num_shards, "data", "shard",
          "an integer between 1 and " + num(d.num_shards) + " (num_shards)", num(d.shard));
  require(d.alpha > 0, "data", "alpha", "a number > 0", TomlDouble(d.alpha));
  require(d.seed <= kMaxSeed, "data", "seed", "an integer between 0 and " + num(kMaxSeed),
          num(d.seed));
  ValidateSiteDataImageKeys(f, d);

  require(c.backoff_initial_seconds > 0, "connection", "backoff_initial_seconds",
          "a number of seconds > 0", TomlDouble(c.backoff_initial_seconds));
  require(c.backoff_max_seconds >= c.backoff_initial_seconds, "connection",
          "backoff_max_seconds",
          "a number of seconds >= backoff_initial_seconds (" +
              TomlDouble(c.backoff_initial_seconds) + ")",
          TomlDouble(c.backoff_max_seconds));
  require(c.give_up_after_seconds >= 0, "connection", "give_up_after_seconds",
          "a number of seconds >= 0 (0 = retry forever)", TomlDouble(c.give_up_after_seconds));
  ValidateSitePrivacyConfig(f, c.privacy);
  if (c.privacy.mode == "dp-sgd" && !c.model.torchscript_path.empty()) {
    throw ConfigError(SettingName(f, "privacy", "mode") +
                      ": \"dp-sgd\" cannot train a TorchScript model ([model] torchscript_path = " +
                      TomlString(c.model.torchscript_path) +
                      "): DP-SGD computes per-sample gradients from each layer's activations, "
                      "which a script's layers do not expose; use mode \"update\" (site-level DP) "
                      "or \"none\", or remove torchscript_path when the federation trains a zoo "
                      "model");
  }
}

namespace {

std::string RenderSiteImageKeys(const SiteDataConfig& d) {
  const auto optional = [](const char* key, const std::optional<double>& v, const char* example) {
    return v ? std::string(key) + " = " + TomlDouble(*v) + "\n"
             : "# " + std::string(key) + " = " + example + "\n";
  };
  const AugmentationSpec& a = d.augmentation;
  return std::string() +
         "# Image files: refuse to start when more than this fraction of a split's files are\n"
         "# bad (cannot be decoded, wrong channels or size, no label); each is logged once.\n"
         "max_bad_fraction = " + TomlDouble(d.max_bad_fraction) + "\n"
         "# Background decoding threads (0 = one per core).\n"
         "decode_threads = " + std::to_string(d.decode_threads) + "\n" +
         RenderPreprocessKeys(d.preprocess) +
         "# DICOM: window centre and width for every file (else each file's own window, else\n"
         "# its min/max), and the folder indexed for sop_instance_uid manifests.\n" +
         optional("window_center", d.window_center, "40.0") +
         optional("window_width", d.window_width, "400.0") +
         "dicom_dir = " + TomlString(d.dicom_dir) + "\n"
         "# Training augmentation (0, or crop scale 1, = off): horizontal flip probability,\n"
         "# rotation range in degrees, smallest area fraction of a random resized crop,\n"
         "# brightness and contrast jitter.\n"
         "augment_hflip_probability = " + TomlDouble(a.hflip_probability) + "\n"
         "augment_rotation_degrees = " + TomlDouble(a.rotation_degrees) + "\n"
         "augment_crop_scale_min = " + TomlDouble(a.crop_scale_min) + "\n"
         "augment_brightness = " + TomlDouble(a.brightness) + "\n"
         "augment_contrast = " + TomlDouble(a.contrast) + "\n";
}

std::string RenderPrivacy(const SitePrivacyConfig& p) {
  // Unset values (0) are shown commented out, so that the file reads back as it was.
  const auto value = [](const char* key, double v, const char* example) {
    return v > 0 ? std::string(key) + " = " + TomlDouble(v) + "\n"
                 : "# " + std::string(key) + " = " + example + "\n";
  };
  return std::string() +
         "\n"
         "[privacy]\n"
         "# Differential privacy of what leaves this site (docs/PRIVACY.md):\n"
         "# \"none\"; \"dp-sgd\" protects each training image (per-sample clipping + noise);\n"
         "# \"update\" protects the whole data set (the update is clipped + noised).\n"
         "mode = " + TomlString(p.mode) + "\n"
         "# L2 clipping norm: per image (dp-sgd) or of the whole update (update).\n" +
         value("clipping_norm", p.clipping_norm, "1.0") +
         "# Either the noise (std / clipping norm) or the epsilon to calibrate it to over the\n"
         "# federation's rounds; not both.\n" +
         value("noise_multiplier", p.noise_multiplier, "1.1") +
         value("target_epsilon", p.target_epsilon, "4.0") +
         "# epsilon is measured at this delta; choose delta < 1 / (number of training images).\n" +
         value("delta", p.delta, "1e-5") +
         "# Hard limit: a round that would take the total epsilon above it is declined.\n" +
         value("budget_epsilon", p.budget_epsilon, "8.0") +
         "# RDP to (epsilon, delta): \"balle2020\" (Balle et al. 2020, tighter) or \"classic\".\n"
         "conversion = " + TomlString(p.conversion) + "\n";
}

}  // namespace

std::string RenderSiteConfig(const SiteConfig& c) {
  const auto num = [](auto v) { return std::to_string(v); };
  const SiteDataConfig& d = c.data;
  return std::string() +
         "# fedmed site configuration: fedmed-site --config <this file>\n"
         "# Relative [tls] paths and output_dir are relative to this file's directory.\n"
         "# [data] path is looked up under the data root (--data, FEDMED_DATA, ../shared/data)\n"
         "# unless it is absolute. Images never leave this site; only model updates do.\n"
         "\n"
         "[site]\n"
         "# This site's name: the CN of its certificate, on the coordinator's allow-list.\n"
         "name = " + TomlString(c.name) + "\n"
         "# host:port of the coordinator (the site only dials out).\n"
         "coordinator = " + TomlString(c.coordinator_address) + "\n"
         "# Where this site's log (site.log) is written.\n"
         "output_dir = " + TomlString(c.output_dir) + "\n"
         "# LibTorch compute threads.\n"
         "threads = " + num(c.threads) + "\n"
         "\n"
         "[tls]\n"
         "# The federation CA certificate: the coordinator's certificate must chain to it.\n"
         "ca_cert = " + TomlString(c.tls.ca_cert) + "\n"
         "# This site's certificate and private key (keep the key mode 0600).\n"
         "cert = " + TomlString(c.tls.cert) + "\n"
         "key = " + TomlString(c.tls.key) + "\n"
         "\n"
         "[data]\n"
         "# This site's images: a MedMNIST .npz (format \"medmnist\"), an image folder\n"
         "# root/<class>/<images> with optional train/ val/ test/ subfolders (\"image_folder\"),\n"
         "# or a CSV manifest path,label[,split] of PNG/JPEG (\"csv\") or DICOM (\"dicom\") files.\n"
         "path = " + TomlString(d.path) + "\n"
         "format = " + TomlString(d.format) + "\n"
         "# \"none\" uses the whole file; \"iid\", \"dirichlet\" or \"quantity\" take shard\n"
         "# `shard` of `num_shards` (for demonstrations that split one file across sites).\n"
         "partition = " + TomlString(d.partition) + "\n"
         "shard = " + num(d.shard) + "\n"
         "num_shards = " + num(d.num_shards) + "\n"
         "# Dirichlet concentration of the dirichlet and quantity splits (smaller = more skew).\n"
         "alpha = " + TomlDouble(d.alpha) + "\n"
         "# Seed of the split; the same at every site.\n"
         "seed = " + num(d.seed) + "\n" +
         RenderSiteImageKeys(d) +
         "\n"
         "[connection]\n"
         "# Reconnection after a failure: waits grow from backoff_initial_seconds to\n"
         "# backoff_max_seconds; give up after give_up_after_seconds (0 = retry forever).\n"
         "backoff_initial_seconds = " + TomlDouble(c.backoff_initial_seconds) + "\n"
         "backoff_max_seconds = " + TomlDouble(c.backoff_max_seconds) + "\n"
         "give_up_after_seconds = " + TomlDouble(c.give_up_after_seconds) + "\n" +
         RenderPrivacy(c.privacy) +
         "\n"
         "[model]\n"
         "# The federation names the model in every task. Only when it trains a TorchScript model\n"
         "# ([model] name = \"torchscript\" at the coordinator): this site's copy of that file\n"
         "# (same parameter names and shapes; checked at registration). Never sent.\n"
         "torchscript_path = " + TomlString(c.model.torchscript_path) + "\n";
}

}  // namespace fedmed
