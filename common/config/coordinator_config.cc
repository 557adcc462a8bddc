#include "common/config/coordinator_config.h"

#include <cmath>
#include <limits>
#include <set>

#include "common/config/shared_sections.h"
#include "common/config/site_config.h"
#include "common/config/toml_util.h"
#include "common/model/frozen_layers.h"
#include "common/util/error.h"

namespace fedmed {

namespace {

using C = CoordinatorConfig;
using K = ConfigKey<C>;

constexpr uint64_t kMaxSeed = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

std::string Num(int64_t v) { return std::to_string(v); }
int NumSites(const C& c) { return static_cast<int>(c.allowed_sites.size()); }

ConfigSection<C> CoordinatorSection() {
  return {"coordinator",
          "",
          {
              K("federation", &C::federation,
                "Name of the federation, shown in logs and in status.json.",
                NonEmpty("a non-empty name")),
              K("listen", &C::listen_address,
                "host:port the gRPC server listens on (port 0 = any free port).",
                [](const std::string& v, const C&) {
                  std::string host;
                  int port = 0;
                  return Require(ParseHostPort(v, &host, &port),
                                 "host:port (e.g. \"0.0.0.0:7443\")");
                }),
              K("output_dir", &C::output_dir,
                "Where the log, metrics, status.json and checkpoints are written.",
                NonEmpty("a directory"))
                  .Path(),
              K("threads", &C::threads, "LibTorch compute threads.", IntAtLeast(1)),
          }};
}

Verdict CheckAllowedSites(const std::vector<std::string>& sites, const C&) {
  if (sites.empty()) return Verdict::Expected("at least one site name (certificate CN)");
  std::set<std::string> seen;
  for (const std::string& site : sites) {
    if (!IsValidSiteName(site)) return Verdict::Expected(kSiteNameRule, TomlString(site));
    if (!seen.insert(site).second) {
      return Verdict::Expected("unique site names", TomlString(site) + " twice");
    }
  }
  return Verdict();
}

ConfigSection<C> TlsAndAllowListSection() {
  ConfigSection<C> section = TlsSection({"coordinator", "every site's"}).In(&C::tls);
  section.keys.push_back(K("allowed_sites", &C::allowed_sites,
                           "Site names (certificate CNs) allowed to join.", CheckAllowedSites)
                             .Required());
  section.keys.push_back(
      K("crl", &C::crl,
        "The federation CA's revocation list (fedmed-pki revoke writes it), re-read when it\n"
        "changes and on SIGHUP: a revoked certificate is refused (\"\" = none).")
          .Path());
  return section;
}

ConfigSection<C> FederationSection() {
  // "... and the number of [tls] allowed_sites (3)".
  const auto up_to_sites = [](const C& c) {
    return "and the number of [tls] allowed_sites (" + Num(NumSites(c)) + ")";
  };
  return {
      "federation",
      "",
      {
          K("rounds", &C::rounds, "Number of training rounds.", IntAtLeast(1)),
          K("min_sites", &C::min_sites,
            "Quorum: a round counts only with updates from at least this many sites.",
            [](int v, const C& c) {
              return Require(v >= 1 && v <= NumSites(c),
                             "an integer between 1 and " + Num(NumSites(c)) +
                                 " (the number of [tls] allowed_sites)");
            }),
          K("sites_per_round", &C::sites_per_round,
            "Sites selected per round (0 = every registered site).",
            [up_to_sites](int v, const C& c) {
              return Require(v == 0 || (v >= c.min_sites && v <= NumSites(c)),
                             "0 (all registered sites) or an integer between min_sites (" +
                                 Num(c.min_sites) + ") " + up_to_sites(c));
            }),
          K("min_available_sites", &C::min_available_sites,
            "Registered sites needed before the first round starts (0 = min_sites).",
            [up_to_sites](int v, const C& c) {
              return Require(v == 0 || (v >= c.min_sites && v <= NumSites(c)),
                             "0 (= min_sites) or an integer between min_sites (" +
                                 Num(c.min_sites) + ") " + up_to_sites(c));
            }),
          K("round_deadline_seconds", &C::round_deadline_seconds,
            "Seconds a round waits for updates; later updates are left out.",
            Positive("a number of seconds")),
          K("registration_timeout_seconds", &C::registration_timeout_seconds,
            "Seconds to wait for min_sites sites to register (0 = wait forever).",
            [](double v, const C&) {
              return Require(v >= 0, "a number of seconds >= 0 (0 = wait forever)");
            }),
          K("seed", &C::seed,
            "Seed of site selection, model initialisation and the sites' training seeds.",
            [](uint64_t v, const C&) {
              return Require(v <= kMaxSeed, "an integer between 0 and " + std::to_string(kMaxSeed));
            }),
          K("max_update_norm", &C::max_update_norm,
            "Refuse an update whose L2 norm exceeds this (0 = no absolute bound).",
            [](double v, const C&) {
              return Require(std::isfinite(v) && v >= 0, "a finite number >= 0 (0 = no bound)");
            }),
          K("max_update_norm_ratio", &C::max_update_norm_ratio,
            "Refuse an update whose L2 norm exceeds this times the global model's (0 = no bound).",
            [](double v, const C&) {
              return Require(std::isfinite(v) && v >= 0, "a finite number >= 0 (0 = no bound)");
            }),
          K("max_site_samples", &C::max_site_samples,
            "Largest training or test sample count a site may register.", IntAtLeast(1)),
          K("max_invalid_updates", &C::max_invalid_updates,
            "Refused updates in a row after which a site is excluded.", IntAtLeast(1)),
          K("max_attempts", &C::max_attempts,
            "Attempts of one round before the federation stops with an error.", IntAtLeast(1)),
          K("upload_idle_seconds", &C::upload_idle_seconds,
            "Cancel an update upload that receives no data for this long (0 = no limit).",
            [](double v, const C&) {
              return Require(std::isfinite(v) && v >= 0, "a finite number >= 0 (0 = no limit)");
            }),
      }};
}

ConfigSection<C> ModelSection() {
  // Without held-out data nothing else tells the model's input channels and classes.
  const auto shape_known = [](int64_t v, const C& c) {
    return v > 0 || !c.eval_data.empty();
  };
  static constexpr const char* kShape =
      "a value > 0 when [evaluation] data is not set (nothing else tells the model shape)";
  return {
      "model",
      "",
      {
          K("name", &C::model, "Model zoo name, e.g. \"cnn\" or \"resnet18\".",
            NonEmpty("a model zoo name such as \"cnn\"")),
          K("in_channels", &C::in_channels,
            "Input channels and number of classes (0 = take them from the evaluation data).",
            [shape_known](int64_t v, const C& c) {
              if (v < 0) return Verdict::Expected("an integer >= 1, or 0 to take it from the "
                                                  "evaluation data");
              return Require(shape_known(v, c), kShape);
            }),
          K("num_classes", &C::num_classes, "",
            [shape_known](int64_t v, const C& c) {
              if (v != 0 && v < 2) {
                return Verdict::Expected("an integer >= 2, or 0 to take it from the evaluation "
                                         "data");
              }
              return Require(shape_known(v, c), kShape);
            }),
          K("image_size", &C::image_size, "Images are image_size x image_size pixels.",
            IntAtLeast(1)),
          K("torchscript_path", &C::torchscript_path,
            "With name = \"torchscript\": the network as a TorchScript file (torch.jit.save);\n"
            "every site sets [model] torchscript_path to its own copy (same parameter names and\n"
            "shapes).",
            [](const std::string& v, const C& c) {
              if (c.model == "torchscript") {
                return Require(!v.empty(),
                               "the TorchScript file of the network (torch.jit.save output) with "
                               "name = \"torchscript\"",
                               "nothing");
              }
              return Require(v.empty(), "no value unless name = \"torchscript\" (the model is " +
                                            TomlString(c.model) + ")");
            })
              .Path(),
          K("initial_weights", &C::initial_weights,
            "Fine-tuning: initial weights (a state dict or a TorchScript file) instead of the\n"
            "model's own initialisation (\"\" = none).")
              .Path(),
      }};
}

ConfigSection<C> PreprocessingSection() {
  return {
      "preprocessing",
      "What every site's [data] preprocessing keys must say (sites that differ are refused);\n"
      "the [evaluation] data is preprocessed alike. The defaults are MedMNIST's.",
      Lift(&C::preprocessing, PreprocessKeys()),
      {
          [](const C& c, const std::string& f) {
            ValidatePreprocessSpec(c.preprocessing, SectionName(f, "preprocessing"));
          },
          [](const C& c, const std::string& f) {
            const PreprocessSpec& p = c.preprocessing;
            if (p.image_size != 0 && p.image_size != c.image_size) {
              ThrowBadSetting(f, "preprocessing", "image_size",
                              "0 (keep the images' size) or [model] image_size (" +
                                  Num(c.image_size) + ")",
                              Num(p.image_size));
            }
            if (p.channels != 0 && c.in_channels != 0 && p.channels != c.in_channels) {
              ThrowBadSetting(f, "preprocessing", "channels",
                              "0 (keep the images' channels) or [model] in_channels (" +
                                  Num(c.in_channels) + ")",
                              Num(p.channels));
            }
          },
      }};
}

const ConfigSection<TrainingConfig>& TrainingSection() {
  using T = TrainingConfig;
  using TK = ConfigKey<T>;
  static const ConfigSection<T> section = {
      "training",
      "",
      {
          TK("local_epochs", &T::local_epochs, "Local training each selected site runs per round.",
             IntAtLeast(1)),
          TK("batch_size", &T::batch_size, "", IntAtLeast(1)),
          TK("optimizer", &T::optimizer, "\"sgd\" or \"adam\".", OneOf({"sgd", "adam"})),
          TK("learning_rate", &T::learning_rate, "", Positive()),
          TK("momentum", &T::momentum, "SGD momentum (not used by adam).",
             [](double v, const T&) { return Require(v >= 0 && v < 1, "a number in [0, 1)"); }),
          TK("weight_decay", &T::weight_decay, "",
             [](double v, const T&) { return Require(v >= 0, "a number >= 0"); }),
          TK("frozen_layers", &T::frozen_layers,
             "Fine-tuning: parameter-name prefixes (matched at dots) that the sites do not train,\n"
             "e.g. [\"conv1\", \"gn1\"]."),
      },
      {
          [](const T& t, const std::string& f) {
            try {
              ValidateFrozenLayers(t.frozen_layers);
            } catch (const ConfigError& e) {
              // "<file>: [training] frozen_layers[i]: ..."
              throw ConfigError(SettingName(f, "training", e.what()));
            }
          },
      }};
  return section;
}

ConfigSection<C> SecureAggregationSection() {
  using A = SecureAggregationConfig;
  const auto m = [](auto A::*field) { return Member(&C::secure_aggregation, field); };
  return {
      "secure_aggregation",
      "",
      {
          K("enabled", m(&A::enabled),
            "Secure aggregation (Bonawitz et al. 2017): the coordinator learns only the sum of "
            "the\nround's updates. Not with median or trimmed_mean.",
            [](bool v, const C& c) {
              return Require(!v || NumSites(c) >= 2,
                             "false with a single allowed site (nothing to hide it among)");
            }),
          K("threshold", m(&A::threshold),
            "Survivors needed to unmask a round (0 = a majority of the round's sites).",
            [](int v, const C& c) {
              const int k = c.secure_aggregation.neighbours;
              if (v != 0 && (v < 2 || v > NumSites(c))) {
                return Verdict::Expected(
                    "0 (a majority of each round's sites) or an integer between 2 and the number "
                    "of [tls] allowed_sites (" + Num(NumSites(c)) + ")");
              }
              // Checked once neighbours itself is valid.
              const bool valid_k = k == 0 || (k >= 2 && k % 2 == 0);
              return Require(!valid_k || k == 0 || v <= k + 1,
                             "at most neighbours + 1 = " + Num(k + 1) +
                                 " (each site's shares are held by itself and its neighbours)");
            }),
          K("clip_range", m(&A::clip_range),
            "Each value of a site's weighted update is clipped to [-clip_range, clip_range].",
            [](double v, const C& c) {
              const int n = NumSites(c);
              const int bits = c.secure_aggregation.quantization_bits;
              return Require(std::isfinite(v) && v > 0 &&
                                 2.0 * v * n <= std::ldexp(1.0, bits) - 1 - n,
                             "a number > 0 with 2 * clip_range * " + Num(n) + " sites <= 2^" +
                                 Num(bits) + " - 1 - " + Num(n));
            }),
          K("quantization_bits", m(&A::quantization_bits),
            "Bits of the fixed-point code of the sum (8..32).",
            [](int v, const C&) {
              return Require(v >= 8 && v <= 32, "an integer between 8 and 32");
            }),
          K("stage_timeout_seconds", m(&A::stage_timeout_seconds),
            "Seconds the key exchange and unmasking stages wait for late sites.",
            Positive("a number of seconds")),
          K("neighbours", m(&A::neighbours),
            "SecAgg+: exchange keys and masks with this many neighbours only (even; 0 = all).",
            [](int v, const C&) {
              return Require(v == 0 || (v >= 2 && v % 2 == 0),
                             "0 (every other site) or an even number >= 2 (SecAgg+)");
            }),
      },
      {
          [](const C& c, const std::string& f) {
            if (c.secure_aggregation.enabled && StrategyNeedsIndividualUpdates(c.strategy.name)) {
              throw ConfigError(
                  SettingName(f, "strategy", "name") + ": " + TomlString(c.strategy.name) +
                  " needs each site's update on its own, but [secure_aggregation] enabled = "
                  "true lets the coordinator see only their sum; choose fedavg, fedprox, "
                  "fedadam, fedyogi or fedadagrad, or disable secure aggregation");
            }
          },
      }};
}

ConfigSection<C> TransportSection() {
  return {
      "transport",
      "",
      {
          K("update_encoding", &C::update_encoding,
            "How sites send their updates: \"float32\" (exact), \"float16\" (2 bytes a value)\n"
            "or \"int8\" (1 byte a value, per-tensor scale, unbiased stochastic rounding).",
            [](const std::string& v, const C& c) {
              if (v != "float32" && v != "float16" && v != "int8") {
                return Verdict::Expected("\"float32\", \"float16\" or \"int8\"", TomlString(v));
              }
              // A masked input is already a fixed-point code of quantization_bits per value in
              // 32-bit words that the masks cover whole; quantising the update again before
              // masking would only add error, and the words cannot shrink without changing the
              // masking protocol.
              return Require(v == "float32" || !c.secure_aggregation.enabled,
                             "\"float32\" with [secure_aggregation] enabled = true (masked "
                             "updates are fixed-point words of quantization_bits already; set "
                             "that instead)",
                             TomlString(v));
            }),
          K("resume_seconds", &C::resume_seconds,
            "How long a site whose connection ended during a model download or its upload keeps\n"
            "its place in the round, to reconnect and resume (0 = it leaves the round at once).",
            [](double v, const C&) {
              return Require(std::isfinite(v) && v >= 0, "a number of seconds >= 0");
            }),
      }};
}

ConfigSection<C> EvaluationSection() {
  return {
      "evaluation",
      "",
      {
          K("data", &C::eval_data,
            "Held-out images the coordinator evaluates the global model on (\"\" = none)."),
          K("split", &C::eval_split, "Split of that file: \"train\", \"val\" or \"test\".",
            OneOf({"train", "val", "test"})),
          K("federated", &C::federated_evaluation,
            "Also ask the sites to evaluate the global model on their local test split."),
          K("batch_size", &C::eval_batch_size, "", IntAtLeast(1)),
      },
      {},
      {{"checkpoint_every",
        "no longer accepted: the coordinator writes a checkpoint after every round (resuming "
        "needs it); delete this line"}}};
}

ConfigSection<StatusConfig> StatusSection() {
  using S = StatusConfig;
  using KS = ConfigKey<S>;
  const auto non_loopback = [](const S& c) {
    std::string host;
    int port = 0;
    return !c.listen.empty() && ParseHostPort(c.listen, &host, &port) && !IsLoopbackHost(host);
  };
  return {"status",
          "",
          {
              KS("listen", &S::listen,
                 "The status page, JSON and Prometheus metrics (docs/OPERATIONS.md): host:port\n"
                 "(\"127.0.0.1:8080\"; port 0 = any free port, logged); \"\" = off.",
                 [](const std::string& v, const S&) {
                   std::string host;
                   int port = 0;
                   return Require(v.empty() || ParseHostPort(v, &host, &port),
                                  "\"\" (off) or host:port (e.g. \"127.0.0.1:8080\")");
                 }),
              KS("tls", &S::tls,
                 "Serve HTTPS with the [tls] cert and key; required for a non-loopback listen.",
                 [non_loopback](bool v, const S& c) {
                   return Require(v || !non_loopback(c),
                                  "true when listen is not a loopback address (" + c.listen +
                                      "): the token must not travel in clear");
                 }),
              KS("token_file", &S::token_file,
                 "The file holding the access token (fedmed-pki init writes status.token).",
                 [](const std::string& v, const S& c) {
                   return Require(c.listen.empty() || !v.empty(),
                                  "a token file (mode 0600) when listen is set");
                 })
                  .Path(),
          }};
}

constexpr const char* kHeader =
    "fedmed coordinator configuration: fedmed-coordinator --config <this file>\n"
    "Relative [tls] paths, output_dir and [model] paths are relative to this file's directory.\n"
    "[evaluation] data is looked up under the data root (--data, FEDMED_DATA,\n"
    "../shared/data) unless it is absolute.";

}  // namespace

bool IsLoopbackHost(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

const ConfigSections<CoordinatorConfig>& CoordinatorConfigSections() {
  static const ConfigSections<C> sections = {
      CoordinatorSection(),
      TlsAndAllowListSection(),
      FederationSection(),
      ModelSection(),
      PreprocessingSection(),
      TrainingSection().In(&C::training),
      StrategySection().In(&C::strategy),
      SecureAggregationSection(),
      TransportSection(),
      EvaluationSection(),
      StatusSection().In(&C::status),
  };
  return sections;
}

bool operator==(const TrainingConfig& a, const TrainingConfig& b) {
  return SectionEqual(TrainingSection(), a, b);
}

bool operator==(const SecureAggregationConfig& a, const SecureAggregationConfig& b) {
  // The section's rows read the struct through CoordinatorConfig.
  C x, y;
  x.secure_aggregation = a;
  y.secure_aggregation = b;
  return SectionEqual(FindSection(CoordinatorConfigSections(), "secure_aggregation"), x, y);
}

bool operator==(const CoordinatorConfig& a, const CoordinatorConfig& b) {
  return SectionsEqual(CoordinatorConfigSections(), a, b);
}

void ReadFederationSections(TomlFile& file, CoordinatorConfig* config) {
  for (const ConfigSection<C>& section : CoordinatorConfigSections()) {
    if (section.name != "coordinator" && section.name != "tls" && section.name != "status") {
      ReadSection(file, section, config);
    }
  }
}

CoordinatorConfig LoadCoordinatorConfig(const std::string& path) {
  TomlFile file(path);
  CoordinatorConfig c;
  c.config_path = path;
  ReadSections(file, CoordinatorConfigSections(), &c);
  file.Finish();
  ValidateCoordinatorConfig(c);
  return c;
}

void ValidateCoordinatorConfig(const CoordinatorConfig& c) {
  ValidateSections(CoordinatorConfigSections(), c, c.config_path);
}

std::string RenderCoordinatorConfig(const CoordinatorConfig& c) {
  return RenderSections(kHeader, CoordinatorConfigSections(), c);
}

}  // namespace fedmed
