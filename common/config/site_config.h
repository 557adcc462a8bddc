// Configuration of fedmed-site, the agent each hospital runs: a TOML file, parsed, validated and
// rendered here.
//
//   [site]       name, coordinator, output_dir, threads
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

#include "common/config/coordinator_config.h"
#include "common/data/augmentation_spec.h"
#include "common/data/preprocess.h"

namespace fedmed {

// Which part of the data file this site trains on. A real hospital uses all of its own data
// (partition "none"); demonstrations on one machine split one file across sites, the way
// hospitals differ (see common/data/partition.h).
//
// The hospital's images come in one of four formats (docs/DATA.md, "Hospital data"), loaded by
// LoadSiteSplit (common/data/site_images.h):
//   "medmnist"      path = a MedMNIST .npz archive (common/data/medmnist.h)
//   "image_folder"  path = a folder in torchvision's ImageFolder convention; with subfolders
//                   train/, val/, test/ each is a split, else every image is training data
//                   (common/data/image_folder.h)
//   "csv"           path = a CSV manifest path,label[,split] of PNG/JPEG files
//   "dicom"         path = a CSV manifest path,label[,split] or sop_instance_uid,label[,split] of
//                   DICOM files (common/data/dicom.h); dicom_dir, window_center/width apply
// Preprocessing (image_size, channels, normalization, mean, std, equalize; common/data/
// preprocess.h) applies to every format and must be the same at every site of a federation.
struct SiteDataConfig {
  std::string path;                 // the site's images: see format
  std::string partition = "none";   // "none" | "iid" | "dirichlet" | "quantity"
  int shard = 1;                    // 1-based, 1..num_shards
  int num_shards = 1;               // >= 1; must be 1 with partition "none"
  double alpha = 0.5;               // Dirichlet concentration (dirichlet, quantity); > 0
  uint64_t seed = 0;                // seed of the split, the same at every site; <= 2^63 - 1
  // (The fields below come after those above so that aggregate initialisers written before
  // they existed keep their meaning.)
  std::string format = "medmnist";  // "medmnist" | "image_folder" | "csv" | "dicom"
  // Image files (formats other than medmnist): the site refuses to start when more than this
  // fraction of a split's files are bad (undecodable, wrong channels or size, no label); in [0, 1].
  double max_bad_fraction = 0.05;
  int decode_threads = 0;           // background decoding threads; 0 = one per core; >= 0
  // Keys image_size, channels, normalization, mean (1 or 3 numbers), std, equalize.
  PreprocessSpec preprocess{};
  // DICOM only: window override (both or neither; width >= 1, modality units such as HU) and
  // the directory indexed for sop_instance_uid manifests (resolved like path).
  std::optional<double> window_center{}, window_width{};
  std::string dicom_dir{};
  // Training-time augmentation (keys augment_<field>; common/data/augmentation_spec.h); the site
  // agent copies it into TrainSettings::augmentation.
  AugmentationSpec augmentation{};
};

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

// Settings are equal; config_path is not compared.
bool operator==(const SiteDataConfig& a, const SiteDataConfig& b);
bool operator==(const SitePrivacyConfig& a, const SitePrivacyConfig& b);
bool operator==(const SiteModelConfig& a, const SiteModelConfig& b);
bool operator==(const SiteConfig& a, const SiteConfig& b);
inline bool operator!=(const SiteConfig& a, const SiteConfig& b) { return !(a == b); }

// Reads, resolves and validates the file at `path` (config_path = path as given).
// Throws ConfigError "<path>: [section] key: expected <what>, got <value>" for a value of the
// wrong type or range, an unknown section or key, a missing required key, or contradictory
// settings; "<path>:<line>:<column>: not valid TOML: ..." for a syntax error.
SiteConfig LoadSiteConfig(const std::string& path);

// Checks ranges and consistency (see the field comments; in addition, [privacy] mode "dp-sgd"
// with a [model] torchscript_path is refused, naming both keys). Throws ConfigError naming
// config_path, section and key of the first violation. Called by LoadSiteConfig.
void ValidateSiteConfig(const SiteConfig& config);

// Checks the [data] keys of image files, preprocessing, DICOM and augmentation (format,
// max_bad_fraction, decode_threads, image_size .. equalize, window_center/width, dicom_dir,
// augment_*). Throws ConfigError "<config_path>: [data] key: ..." for the first violation.
// Called by ValidateSiteConfig.
void ValidateSiteDataImageKeys(const std::string& config_path, const SiteDataConfig& data);

// Checks the [privacy] rules above. Throws ConfigError "<config_path>: [privacy] key: ..." for
// the first violation.
void ValidateSitePrivacyConfig(const std::string& config_path, const SitePrivacyConfig& privacy);

class TomlFile;
// Reads the preprocessing keys image_size, channels, normalization, mean (1 or 3 numbers), std
// and equalize of `section` (the site's [data], the coordinator's [preprocessing]) into `spec`
// (keys absent keep their values). Throws ConfigError naming the file, section and key for a
// value of the wrong type, or a mean/std list of other than 1 or 3 numbers. Validate with
// ValidatePreprocessSpec (common/data/preprocess.h).
void ReadPreprocessKeys(TomlFile& file, const std::string& section, PreprocessSpec* spec);

// Those six keys as TOML lines, with a comment; read back by ReadPreprocessKeys.
std::string RenderPreprocessKeys(const PreprocessSpec& spec);

// Reads the [privacy] section of `file` into `privacy` (keys absent keep their values); for
// files that embed it (fedmed-simulate's config). Validate with ValidateSitePrivacyConfig.
void ReadSitePrivacySection(TomlFile& file, SitePrivacyConfig* privacy);

// The complete TOML file for `config`, every key with a comment, paths as they are in `config`.
// LoadSiteConfig of the rendered file gives back `config` (with relative paths resolved).
std::string RenderSiteConfig(const SiteConfig& config);

}  // namespace fedmed

#endif  // FEDMED_COMMON_CONFIG_SITE_CONFIG_H_
