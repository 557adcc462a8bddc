// Configuration of fedmed-site, the agent each hospital runs: a TOML file, parsed, validated and
// rendered here.
//
//   [site]       name, coordinator, output_dir, threads
//   [coordinator] proxy
//   [tls]        ca_cert, cert, key
//   [data]       path, format, partition, shard, num_shards, alpha, seed, max_bad_fraction,
//                decode_threads, image_size, channels, normalization, mean, std, equalize,
//                window_center, window_width, dicom_dir, augment_hflip_probability,
//                augment_rotation_degrees, augment_crop_scale_min, augment_brightness,
//                augment_contrast
//   [connection] backoff_initial_seconds, backoff_max_seconds, give_up_after_seconds
//   [privacy]    mode, clipping_norm, noise_multiplier | target_epsilon, delta, budget_epsilon,
//                conversion
//   [model]      torchscript_path
//
// Each section is one key table (SiteConfigSections, built with common/config/config_schema.h):
// reading, validation, rendering and equality all follow from it.
// [site] name and coordinator, [tls] ca_cert, cert, key and [data] path are required; every
// other key has the default shown below. Unknown sections and keys are errors. Relative [tls]
// paths, output_dir and [model] torchscript_path are resolved against the directory of the
// config file and stored absolute; [data] path is stored as written and resolved by fedmed-site
// with ResolveDataPath.
#ifndef FEDMED_COMMON_CONFIG_SITE_CONFIG_H_
#define FEDMED_COMMON_CONFIG_SITE_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>

#include "common/privacy/privacy_spend.h"
#include "common/config/config_schema.h"
#include "common/config/tls_files.h"
#include "common/data/augmentation_spec.h"
#include "common/data/preprocess.h"
#include "common/data/site_data_config.h"

namespace fedmed {

// SiteDataConfig, the [data] section: common/data/site_data_config.h.

// Differential privacy of what the site sends (docs/PRIVACY.md explains the modes to a privacy
// officer; common/privacy/ implements them). A value of 0 means "not set".
//
//   mode "none":    no noise; every other key must be left unset.
//   mode "dp-sgd":  DP-SGD (Abadi et al., CCS 2016): each training image's influence on a step is
//                   clipped to clipping_norm (C) and Gaussian noise of std noise_multiplier * C is
//                   added; protects each training image.
//   mode "update":  site-level DP (McMahan et al., ICLR 2018): the whole update is clipped to
//                   clipping_norm (S) and noise of std noise_multiplier * S is added before it
//                   leaves; protects the site's whole data set.
//
// With a mode other than "none": clipping_norm, delta and budget_epsilon are required, and
// exactly one of noise_multiplier (the noise itself) or target_epsilon (the noise is calibrated
// so that the federation's announced rounds spend at most target_epsilon in total, which must be
// <= budget_epsilon). budget_epsilon is a hard limit: a round whose spend would take the site's
// total epsilon (at delta) above it is declined, whatever else is configured.
struct SitePrivacyConfig {
  std::string mode = "none";         // "none" | "dp-sgd" | "update"
  double clipping_norm = 0;          // C or S (L2 norm), > 0
  double noise_multiplier = 0;       // sigma or z (noise std / clipping norm), > 0
  double target_epsilon = 0;         // > 0, <= budget_epsilon
  double delta = 0;                  // in (0, 1); choose < 1 / (number of training images)
  double budget_epsilon = 0;         // > 0: the most epsilon (at delta) this site ever spends
  std::string conversion = "balle2020";  // RDP -> (epsilon, delta): "balle2020" | "classic"

  bool enabled() const { return mode != "none"; }
};

// [model]: the site's copy of the federation's TorchScript model. The coordinator names the
// model (ModelSpec::name) in every task; a site needs a file only when the federation trains a
// TorchScript model ([model] name = "torchscript" in coordinator.toml), and then it must hold a
// file of the same architecture (parameter names and shapes), which it announces at
// registration (common/model/architecture.h) and the coordinator checks. The path never leaves
// the site. DP-SGD cannot train a TorchScript model, so [privacy] mode "dp-sgd" is refused with a
// torchscript_path (ValidateSiteConfig).
struct SiteModelConfig {
  std::string torchscript_path;  // "" = none (zoo federations)
};

struct SiteConfig {
  std::string config_path;  // the file this was loaded from ("" when built in code)
  // [site]
  std::string name;                 // this site's name = its certificate CN (IsValidSiteName)
  // key `coordinator`; host:port the site dials. Port 0 only as a placeholder filled in once the
  // coordinator has bound a free port (fedmed-simulate, tests); it cannot be dialled.
  std::string coordinator_address;
  std::string output_dir = "site-out";  // privacy log, local metrics
  int threads = 1;                      // LibTorch compute threads, >= 1
  // [coordinator] proxy: "" (the environment decides), "http://[user:password@]host:port" or
  // "none"; the rules: common/config/proxy_route.h
  std::string coordinator_proxy;
  // [tls]
  TlsFiles tls;
  // [data]
  SiteDataConfig data;
  // [connection] reconnection with exponential backoff after a failure or coordinator restart
  double backoff_initial_seconds = 0.5;  // first wait, > 0
  double backoff_max_seconds = 30;       // longest wait, >= backoff_initial_seconds
  double give_up_after_seconds = 0;      // 0 = retry forever; >= 0
  // [privacy]
  SitePrivacyConfig privacy;
  // [model]
  SiteModelConfig model;
};

// Site names become certificate CNs and directory names: 1 to 64 characters from letters,
// digits, '-', '_' and '.', starting with a letter or digit.
bool IsValidSiteName(const std::string& name);
inline constexpr const char* kSiteNameRule =
    "a site name of 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit";

// Every key of the section(s) is equal; config_path is not compared. Never throw.
bool operator==(const SiteDataConfig& a, const SiteDataConfig& b);
bool operator==(const SitePrivacyConfig& a, const SitePrivacyConfig& b);
bool operator==(const SiteModelConfig& a, const SiteModelConfig& b);
bool operator==(const SiteConfig& a, const SiteConfig& b);
inline bool operator!=(const SiteDataConfig& a, const SiteDataConfig& b) { return !(a == b); }
inline bool operator!=(const SiteConfig& a, const SiteConfig& b) { return !(a == b); }

// SitePrivacyConfig::mode is parsed with ParsePrivacyMode (common/privacy/privacy_spend.h).

// The key tables of site.toml, in file order: [site], [coordinator], [tls], [data],
// [connection], [privacy], [model]. Never throws.
const ConfigSections<SiteConfig>& SiteConfigSections();

// The [data] and [privacy] key tables on their own (fedmed-simulate embeds [privacy]). Never
// throw.
const ConfigSection<SiteDataConfig>& SiteDataSection();
const ConfigSection<SitePrivacyConfig>& SitePrivacySection();

// Reads, resolves and validates the file at `path` (config_path = path as given).
// Throws ConfigError "<path>: [section] key: expected <what>, got <value>" for a value of the
// wrong type or range, an unknown section or key, a missing required key, or contradictory
// settings; "<path>:<line>:<column>: not valid TOML: ..." for a syntax error.
SiteConfig LoadSiteConfig(const std::string& path);

// Checks ranges and consistency, section by section in file order (see the field comments; in
// addition, [privacy] mode "dp-sgd" with a [model] torchscript_path is refused, naming both
// keys). Throws ConfigError naming config_path, section and key of the first violation. Called
// by LoadSiteConfig.
void ValidateSiteConfig(const SiteConfig& config);

// Checks every [data] key: path, partition and shards, image files, preprocessing
// (ValidatePreprocessSpec), DICOM windowing and augmentation (ValidateAugmentationSpec). Throws
// ConfigError "<config_path>: [data] key: ..." for the first violation ("" = "(configuration
// built in code)"). Called by ValidateSiteConfig.
void ValidateSiteDataConfig(const std::string& config_path, const SiteDataConfig& data);

// Checks the [privacy] rules above. Throws ConfigError "<config_path>: [privacy] key: ..." for
// the first violation.
void ValidateSitePrivacyConfig(const std::string& config_path, const SitePrivacyConfig& privacy);

// Reads the [privacy] section of `file` into `privacy` (keys absent keep their values), declaring
// its keys as accepted; for files that embed it (fedmed-simulate's config). Throws ConfigError
// for a value of the wrong type. Validate with ValidateSitePrivacyConfig.
void ReadSitePrivacySection(TomlFile& file, SitePrivacyConfig* privacy);

// The complete TOML file for `config`, every key with its comment, paths as they are in
// `config`. LoadSiteConfig of the rendered file gives back `config` (with relative paths
// resolved). Never throws.
std::string RenderSiteConfig(const SiteConfig& config);

}  // namespace fedmed

#endif  // FEDMED_COMMON_CONFIG_SITE_CONFIG_H_
