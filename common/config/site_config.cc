#include "common/config/site_config.h"

#include <cctype>
#include <cmath>
#include <limits>

#include "common/config/proxy_route.h"
#include "common/config/shared_sections.h"
#include "common/config/toml_util.h"
#include "common/util/error.h"

namespace fedmed {

namespace {

using SC = SiteConfig;
using K = ConfigKey<SC>;

constexpr uint64_t kMaxSeed = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

ConfigSection<SC> SiteSection() {
  return {"site",
          "",
          {
              K("name", &SC::name,
                "This site's name: the CN of its certificate, on the coordinator's allow-list.",
                [](const std::string& v, const SC&) {
                  return Require(IsValidSiteName(v), std::string(kSiteNameRule) +
                                                         " (the CN of this site's certificate)");
                })
                  .Required(),
              K("coordinator", &SC::coordinator_address,
                "host:port of the coordinator (the site only dials out).",
                [](const std::string& v, const SC&) {
                  std::string host;
                  int port = 0;
                  return Require(ParseHostPort(v, &host, &port),
                                 "the coordinator's host:port (e.g. \"fl.hospital.example:7443\")");
                })
                  .Required(),
              K("output_dir", &SC::output_dir, "Where this site's log (site.log) is written.",
                NonEmpty("a directory"))
                  .Path(),
              K("threads", &SC::threads, "LibTorch compute threads.", IntAtLeast(1)),
          }};
}

ConfigSection<SC> CoordinatorSection() {
  return {"coordinator",
          "",
          {
              K("proxy", &SC::coordinator_proxy,
                "How this site reaches the coordinator (docs/NETWORK.md): \"\" = as the\n"
                "https_proxy / no_proxy environment variables say (directly when unset);\n"
                "\"http://host:port\" = through that HTTP CONNECT proxy, whatever they say;\n"
                "\"none\" = directly, whatever they say.",
                [](const std::string& v, const SC&) {
                  std::string why;
                  return Require(v.empty() || v == "none" || ParseProxyUri(v, &why).has_value(),
                                 kProxyUriRule);
                }),
          }};
}

ConfigSection<SiteDataConfig> MakeSiteDataSection() {
  using D = SiteDataConfig;
  using DK = ConfigKey<D>;
  using A = AugmentationSpec;
  const auto dicom = [](const D& d) { return ParseDataFormat(d.format) == DataFormat::kDicom; };
  static constexpr const char* kDicomOnly = "no value: windowing applies to format \"dicom\" only";
  const std::vector<DK> split_keys = {
      DK("path", &D::path,
         "This site's images: a MedMNIST .npz (format \"medmnist\"), an image folder\n"
         "root/<class>/<images> with optional train/ val/ test/ subfolders (\"image_folder\"),\n"
         "or a CSV manifest path,label[,split] of PNG/JPEG (\"csv\") or DICOM (\"dicom\") files.",
         NonEmpty("the site's images (.npz archive, image folder or manifest, see format)"))
          .Required(),
      DK("format", &D::format, "",
         [](const std::string& v, const D&) {
           return Require(ParseDataFormat(v).has_value(),
                          "\"medmnist\" (.npz), \"image_folder\" (root/<class>/<images>), \"csv\" "
                          "(manifest of PNG/JPEG files) or \"dicom\" (manifest of DICOM files)");
         }),
      DK("partition", &D::partition,
         "\"none\" uses the whole file; \"iid\", \"dirichlet\" or \"quantity\" take shard\n"
         "`shard` of `num_shards` (for demonstrations that split one file across sites).",
         OneOf({"none", "iid", "dirichlet", "quantity"})),
      DK("shard", &D::shard, "",
         [](int v, const D& d) {
           // Checked once num_shards itself is valid.
           return Require(d.num_shards < 1 || (v >= 1 && v <= d.num_shards),
                          "an integer between 1 and " + std::to_string(d.num_shards) +
                              " (num_shards)");
         }),
      DK("num_shards", &D::num_shards, "",
         [](int v, const D& d) {
           if (v < 1) return Verdict::Expected("an integer >= 1");
           return Require(d.partition != "none" || v == 1,
                          "1 with partition \"none\" (the site uses the whole file)");
         }),
      DK("alpha", &D::alpha,
         "Dirichlet concentration of the dirichlet and quantity splits (smaller = more skew).",
         Positive()),
      DK("seed", &D::seed, "Seed of the split; the same at every site.",
         [](uint64_t v, const D&) {
           return Require(v <= kMaxSeed, "an integer between 0 and " + std::to_string(kMaxSeed));
         }),
      DK("max_bad_fraction", &D::max_bad_fraction,
         "Image files: refuse to start when more than this fraction of a split's files are\n"
         "bad (cannot be decoded, wrong channels or size, no label); each is logged once.",
         [](double v, const D&) { return Require(v >= 0 && v <= 1, "a fraction in [0, 1]"); }),
      DK("decode_threads", &D::decode_threads, "Background decoding threads (0 = one per core).",
         [](int v, const D&) {
           return Require(v >= 0, "0 (one per core) or a number of threads >= 1");
         }),
      DK("max_image_pixels", &D::max_image_pixels,
         "Image files: the most pixels (width x height) one image may declare; a larger\n"
         "file is a bad file, refused from its header (default 16384 x 16384).",
         [](int64_t v, const D&) { return Require(v >= 1, "a number of pixels >= 1"); }),
  };
  const std::vector<DK> dicom_keys = {
      DK("window_center", &D::window_center,
         "DICOM: window centre and width for every file (else each file's own window, else\n"
         "its min/max), and the folder indexed for sop_instance_uid manifests.",
         [dicom](const std::optional<double>& v, const D& d) {
           if (v && !dicom(d)) return Verdict::Expected(kDicomOnly);
           if (v && !std::isfinite(*v)) return Verdict::Expected("a finite number");
           // Only center missing here; the width's own faults are reported at window_width.
           const bool width_ok = d.window_width && std::isfinite(*d.window_width);
           return Require(v || !width_ok || !dicom(d),
                          "a value together with window_width (both or neither; neither = the "
                          "window in each file)");
         })
          .Example("40.0"),
      DK("window_width", &D::window_width, "",
         [dicom](const std::optional<double>& v, const D& d) {
           if (v && !dicom(d)) return Verdict::Expected(kDicomOnly);
           if (v && !std::isfinite(*v)) return Verdict::Expected("a finite number");
           if (!v && d.window_center) {
             return Verdict::Expected("a value together with window_center (both or neither; "
                                      "neither = the window in each file)");
           }
           return Require(!v || *v >= 1, "a window width >= 1 (in modality units, e.g. HU)");
         })
          .Example("400.0"),
      DK("dicom_dir", &D::dicom_dir, "",
         [dicom](const std::string& v, const D& d) {
           return Require(v.empty() || dicom(d),
                          "no value: dicom_dir applies to format \"dicom\" only");
         }),
  };
  const auto augment = [](double A::*field) { return Member(&D::augmentation, field); };
  const std::vector<DK> augment_keys = {
      DK("augment_hflip_probability", augment(&A::hflip_probability),
         "Training augmentation (0, or crop scale 1, = off): horizontal flip probability,\n"
         "rotation range in degrees, smallest area fraction of a random resized crop,\n"
         "brightness and contrast jitter."),
      DK("augment_rotation_degrees", augment(&A::rotation_degrees), ""),
      DK("augment_crop_scale_min", augment(&A::crop_scale_min), ""),
      DK("augment_brightness", augment(&A::brightness), ""),
      DK("augment_contrast", augment(&A::contrast), ""),
  };
  return {"data",
          "",
          Concat(Concat(Concat(split_keys, Lift(&D::preprocess, PreprocessKeys())), dicom_keys),
                 augment_keys),
          {
              [](const D& d, const std::string& f) {
                ValidatePreprocessSpec(d.preprocess, SectionName(f, "data"));
              },
              [](const D& d, const std::string& f) {
                ValidateAugmentationSpec(d.augmentation, SettingName(f, "data", "augment_"));
              },
          }};
}

ConfigSection<SC> ConnectionSection() {
  return {
      "connection",
      "",
      {
          K("backoff_initial_seconds", &SC::backoff_initial_seconds,
            "Reconnection after a failure: waits grow from backoff_initial_seconds to\n"
            "backoff_max_seconds; give up after give_up_after_seconds (0 = retry forever).",
            Positive("a number of seconds")),
          K("backoff_max_seconds", &SC::backoff_max_seconds, "",
            [](double v, const SC& c) {
              return Require(v >= c.backoff_initial_seconds,
                             "a number of seconds >= backoff_initial_seconds (" +
                                 TomlDouble(c.backoff_initial_seconds) + ")");
            }),
          K("give_up_after_seconds", &SC::give_up_after_seconds, "",
            [](double v, const SC&) {
              return Require(v >= 0, "a number of seconds >= 0 (0 = retry forever)");
            }),
      }};
}

// The checks of a [privacy] value: unset with mode "none", else finite and >= 0, then `then`.
template <typename Then>
ConfigKey<SitePrivacyConfig>::Check<double> PrivacyValue(Then then) {
  return [then](double v, const SitePrivacyConfig& p) {
    if (ParsePrivacyMode(p.mode) == PrivacyMode::kNone) {
      return Require(v == 0, "no value: mode is \"none\" (no differential privacy); set mode to "
                             "\"dp-sgd\" or \"update\" to use it");
    }
    if (!(std::isfinite(v) && v >= 0)) return Verdict::Expected("a finite number > 0");
    return then(v, p);
  };
}

// " (required with mode \"dp-sgd\")".
std::string RequiredWith(const SitePrivacyConfig& p) {
  return " (required with mode \"" + p.mode + "\")";
}

ConfigSection<SitePrivacyConfig> MakeSitePrivacySection() {
  using P = SitePrivacyConfig;
  using PK = ConfigKey<P>;
  static constexpr const char* kExactlyOne =
      "exactly one of noise_multiplier (> 0) and target_epsilon (> 0)";
  return {
      "privacy",
      "",
      {
          PK("mode", &P::mode,
             "Differential privacy of what leaves this site (docs/PRIVACY.md):\n"
             "\"none\"; \"dp-sgd\" protects each training image (per-sample clipping + noise);\n"
             "\"update\" protects the whole data set (the update is clipped + noised).",
             [](const std::string& v, const P&) {
               return Require(ParsePrivacyMode(v).has_value(),
                              "\"none\", \"dp-sgd\" (per-image DP-SGD) or \"update\" (site-level "
                              "DP)");
             }),
          PK("clipping_norm", UnsetWhenZero(&P::clipping_norm),
             "L2 clipping norm: per image (dp-sgd) or of the whole update (update).",
             PrivacyValue([](double v, const P& p) {
               const std::string what = p.mode == "dp-sgd" ? "per-sample" : "whole-update";
               return Require(v > 0, "the " + what + " L2 clipping norm, a number > 0" +
                                         RequiredWith(p));
             }))
              .Example("1.0"),
          PK("noise_multiplier", UnsetWhenZero(&P::noise_multiplier),
             "Either the noise (std / clipping norm) or the epsilon to calibrate it to over the\n"
             "federation's rounds; not both.",
             PrivacyValue([](double v, const P& p) {
               return Require(v > 0 || p.target_epsilon != 0, kExactlyOne, "neither");
             }))
              .Example("1.1"),
          PK("target_epsilon", UnsetWhenZero(&P::target_epsilon), "",
             PrivacyValue([](double v, const P& p) {
               if (v > 0 && p.noise_multiplier > 0) return Verdict::Expected(kExactlyOne, "both");
               // Checked once budget_epsilon itself is set.
               return Require(p.budget_epsilon <= 0 || v <= p.budget_epsilon,
                              "at most budget_epsilon (" + TomlDouble(p.budget_epsilon) + ")");
             }))
              .Example("4.0"),
          PK("delta", UnsetWhenZero(&P::delta),
             "epsilon is measured at this delta; choose delta < 1 / (number of training images).",
             PrivacyValue([](double v, const P& p) {
               return Require(v > 0 && v < 1,
                              "a probability in (0, 1), e.g. 1e-5" + RequiredWith(p));
             }))
              .Example("1e-5"),
          PK("budget_epsilon", UnsetWhenZero(&P::budget_epsilon),
             "Hard limit: a round that would take the total epsilon above it is declined.",
             PrivacyValue([](double v, const P& p) {
               return Require(v > 0, "the most epsilon this site may ever spend, a number > 0" +
                                         RequiredWith(p));
             }))
              .Example("8.0"),
          PK("conversion", &P::conversion,
             "RDP to (epsilon, delta): \"balle2020\" (Balle et al. 2020, tighter) or \"classic\".",
             OneOf({"balle2020", "classic"})),
      }};
}

ConfigSection<SC> ModelSection() {
  return {
      "model",
      "",
      {
          K("torchscript_path", Member(&SC::model, &SiteModelConfig::torchscript_path),
            "The federation names the model in every task. Only when it trains a TorchScript "
            "model\n"
            "([model] name = \"torchscript\" at the coordinator): this site's copy of that file\n"
            "(same parameter names and shapes; checked at registration). Never sent.")
              .Path(),
      },
      {
          [](const SC& c, const std::string& f) {
            if (c.privacy.mode == "dp-sgd" && !c.model.torchscript_path.empty()) {
              throw ConfigError(
                  SettingName(f, "privacy", "mode") +
                  ": \"dp-sgd\" cannot train a TorchScript model ([model] torchscript_path = " +
                  TomlString(c.model.torchscript_path) +
                  "): DP-SGD computes per-sample gradients from each layer's activations, "
                  "which a script's layers do not expose; use mode \"update\" (site-level DP) "
                  "or \"none\", or remove torchscript_path when the federation trains a zoo "
                  "model");
            }
          },
      }};
}

constexpr const char* kHeader =
    "fedmed site configuration: fedmed-site --config <this file>\n"
    "Relative [tls] paths, output_dir and [model] torchscript_path are relative to this file's\n"
    "directory. [data] path is looked up under the data root (--data, FEDMED_DATA,\n"
    "../shared/data) unless it is absolute. Images never leave this site; only model updates do.";

}  // namespace

const ConfigSection<SiteDataConfig>& SiteDataSection() {
  static const ConfigSection<SiteDataConfig> section = MakeSiteDataSection();
  return section;
}

const ConfigSection<SitePrivacyConfig>& SitePrivacySection() {
  static const ConfigSection<SitePrivacyConfig> section = MakeSitePrivacySection();
  return section;
}

const ConfigSections<SiteConfig>& SiteConfigSections() {
  static const ConfigSections<SC> sections = {
      SiteSection(),
      CoordinatorSection(),
      TlsSection({"site", "the coordinator's"}).In(&SC::tls),
      SiteDataSection().In(&SC::data),
      ConnectionSection(),
      SitePrivacySection().In(&SC::privacy),
      ModelSection(),
  };
  return sections;
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
  return SectionEqual(SiteDataSection(), a, b);
}

bool operator==(const SitePrivacyConfig& a, const SitePrivacyConfig& b) {
  return SectionEqual(SitePrivacySection(), a, b);
}

bool operator==(const SiteModelConfig& a, const SiteModelConfig& b) {
  SiteConfig x, y;
  x.model = a;
  y.model = b;
  return SectionEqual(FindSection(SiteConfigSections(), "model"), x, y);
}

bool operator==(const SiteConfig& a, const SiteConfig& b) {
  return SectionsEqual(SiteConfigSections(), a, b);
}

SiteConfig LoadSiteConfig(const std::string& path) {
  TomlFile file(path);
  SiteConfig c;
  c.config_path = path;
  ReadSections(file, SiteConfigSections(), &c);
  file.Finish();
  ValidateSiteConfig(c);
  return c;
}

void ValidateSiteConfig(const SiteConfig& c) {
  ValidateSections(SiteConfigSections(), c, c.config_path);
}

void ValidateSiteDataConfig(const std::string& config_path, const SiteDataConfig& data) {
  ValidateSection(SiteDataSection(), data, config_path);
}

void ValidateSitePrivacyConfig(const std::string& config_path, const SitePrivacyConfig& privacy) {
  ValidateSection(SitePrivacySection(), privacy, config_path);
}

void ReadSitePrivacySection(TomlFile& file, SitePrivacyConfig* privacy) {
  ReadSection(file, SitePrivacySection(), privacy);
}

std::string RenderSiteConfig(const SiteConfig& c) {
  return RenderSections(kHeader, SiteConfigSections(), c);
}

}  // namespace fedmed
