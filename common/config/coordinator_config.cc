#include "common/config/coordinator_config.h"

#include <cmath>
#include <limits>
#include <set>
#include <tuple>

#include "common/config/site_config.h"
#include "common/config/toml_util.h"
#include "common/model/frozen_layers.h"
#include "common/util/error.h"

namespace fedmed {

namespace {

using Presence = TomlFile::Presence;

constexpr uint64_t kMaxSeed = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

// [strategy]: the accepted names, and for each numeric key the strategies it applies to with
// their defaults (see the table at StrategyConfig in the header).
const std::vector<std::string> kStrategyNames = {"fedavg",     "fedprox", "fedadam",
                                                 "fedyogi",    "fedadagrad", "median",
                                                 "trimmed_mean"};

struct StrategyKeyRule {
  const char* key;
  std::optional<double> StrategyConfig::*field;
  const char* doc;       // the comment RenderCoordinatorConfig writes above the key
  const char* expected;  // the range, as ValidateStrategyConfig reports it
  bool (*in_range)(double);
  // The strategies the key applies to, with their default (nullopt: required, no default).
  std::vector<std::pair<std::string, std::optional<double>>> defaults;
};

bool Positive(double v) { return std::isfinite(v) && v > 0; }
bool UnitInterval(double v) { return v >= 0 && v < 1; }  // false for NaN
bool BelowHalf(double v) { return v >= 0 && v < 0.5; }

const std::vector<StrategyKeyRule>& StrategyKeyRules() {
  static const std::vector<StrategyKeyRule> rules = {
      {"proximal_mu", &StrategyConfig::proximal_mu,
       "FedProx proximal term mu (required): each site adds (mu/2) * ||w - w_global||^2 to its\n"
       "# local loss (Li et al. 2020 tried 0.001, 0.01, 0.1 and 1).",
       "a number > 0", Positive, {{"fedprox", std::nullopt}}},
      {"server_learning_rate", &StrategyConfig::server_learning_rate,
       "Server learning rate eta of the update x += eta * m / (sqrt(v) + tau).", "a number > 0",
       Positive, {{"fedadam", 0.1}, {"fedyogi", 0.01}, {"fedadagrad", 0.1}}},
      {"beta1", &StrategyConfig::beta1,
       "Decay of the first moment: m = beta1 * m + (1 - beta1) * delta.", "a number in [0, 1)",
       UnitInterval, {{"fedadam", 0.9}, {"fedyogi", 0.9}, {"fedadagrad", 0.0}}},
      {"beta2", &StrategyConfig::beta2, "Decay of the second moment v.", "a number in [0, 1)",
       UnitInterval, {{"fedadam", 0.99}, {"fedyogi", 0.99}}},
      {"tau", &StrategyConfig::tau,
       "Adaptivity tau: the smaller, the more adaptive the step; v starts at tau^2.",
       "a number > 0", Positive, {{"fedadam", 1e-9}, {"fedyogi", 1e-3}, {"fedadagrad", 1e-9}}},
      {"trim_fraction", &StrategyConfig::trim_fraction,
       "Per coordinate, the floor(trim_fraction * n) largest and as many smallest of the n\n"
       "# updates are dropped before averaging.",
       "a number in [0, 0.5)", BelowHalf, {{"trimmed_mean", 0.2}}},
  };
  return rules;
}

// The rule's entry for `name`, or nullptr when the key does not apply to that strategy.
const std::pair<std::string, std::optional<double>>* RuleFor(const StrategyKeyRule& rule,
                                                             const std::string& name) {
  for (const auto& entry : rule.defaults) {
    if (entry.first == name) return &entry;
  }
  return nullptr;
}

// "fedprox", "fedadam and fedyogi", "fedadam, fedyogi and fedadagrad".
std::string AppliesTo(const StrategyKeyRule& rule) {
  std::string text;
  for (std::size_t i = 0; i < rule.defaults.size(); ++i) {
    if (i > 0) text += i + 1 == rule.defaults.size() ? " and " : ", ";
    text += rule.defaults[i].first;
  }
  return text;
}

std::string RenderStrategy(const StrategyConfig& s) {
  std::string text =
      "# How the round's updates become the next global model:\n"
      "#   \"fedavg\"        mean of the updates weighted by sample count (McMahan et al. 2017)\n"
      "#   \"fedprox\"       FedAvg, and the sites train with a proximal term (Li et al. 2020)\n"
      "#   \"fedadam\", \"fedyogi\", \"fedadagrad\"\n"
      "#                   adaptive server optimiser on the weighted mean update\n"
      "#                   (Reddi et al., \"Adaptive Federated Optimization\", ICLR 2021)\n"
      "#   \"median\", \"trimmed_mean\"\n"
      "#                   coordinate-wise, unweighted, robust to a few faulty sites (Yin et al.\n"
      "#                   2018); they keep every update and cannot run under secure aggregation\n"
      "# A key for another strategy than `name` is an error; commented keys show the default.\n"
      "name = " + TomlString(s.name) + "\n";
  for (const StrategyKeyRule& rule : StrategyKeyRules()) {
    const std::optional<double>& value = s.*rule.field;
    const auto* applies = RuleFor(rule, s.name);
    if (!value && applies == nullptr) continue;
    text += std::string("# ") + rule.doc + "\n";
    if (value) {
      text += std::string(rule.key) + " = " + TomlDouble(*value) + "\n";
    } else if (applies->second) {
      text += std::string("# ") + rule.key + " = " + TomlDouble(*applies->second) +
              "  (the default for " + s.name + ")\n";
    } else {
      text += std::string("# ") + rule.key + " = (required)\n";
    }
  }
  return text;
}

// Reads an optional number; leaves *out unset when the key is absent. TomlFile does not say
// whether a key was present, so the key is read into two different defaults: an absent key
// leaves both as they were, a present one sets both to its value (NaN included).
void ReadOptional(TomlFile& file, const std::string& section, const std::string& key,
                  std::optional<double>* out) {
  double a = std::numeric_limits<double>::quiet_NaN();
  double b = 0.0;
  file.Read(section, key, &a);
  file.Read(section, key, &b);
  if (!(std::isnan(a) && b == 0.0)) *out = a;
}

}  // namespace

bool operator==(const TlsFiles& a, const TlsFiles& b) {
  return std::tie(a.ca_cert, a.cert, a.key) == std::tie(b.ca_cert, b.cert, b.key);
}

bool operator==(const TrainingConfig& a, const TrainingConfig& b) {
  return std::tie(a.local_epochs, a.batch_size, a.optimizer, a.learning_rate, a.momentum,
                  a.weight_decay, a.frozen_layers) ==
         std::tie(b.local_epochs, b.batch_size, b.optimizer, b.learning_rate, b.momentum,
                  b.weight_decay, b.frozen_layers);
}

bool operator==(const StrategyConfig& a, const StrategyConfig& b) {
  return std::tie(a.name, a.proximal_mu, a.server_learning_rate, a.beta1, a.beta2, a.tau,
                  a.trim_fraction) == std::tie(b.name, b.proximal_mu, b.server_learning_rate,
                                               b.beta1, b.beta2, b.tau, b.trim_fraction);
}

bool operator==(const SecureAggregationConfig& a, const SecureAggregationConfig& b) {
  return std::tie(a.enabled, a.threshold, a.clip_range, a.quantization_bits,
                  a.stage_timeout_seconds, a.neighbours) ==
         std::tie(b.enabled, b.threshold, b.clip_range, b.quantization_bits,
                  b.stage_timeout_seconds, b.neighbours);
}

bool operator==(const CoordinatorConfig& a, const CoordinatorConfig& b) {
  const auto settings = [](const CoordinatorConfig& c) {
    return std::tie(c.federation, c.listen_address, c.output_dir, c.threads, c.tls,
                    c.allowed_sites, c.rounds, c.min_sites, c.sites_per_round, c.min_available_sites,
                    c.round_deadline_seconds, c.registration_timeout_seconds, c.seed, c.model,
                    c.in_channels, c.num_classes, c.image_size, c.torchscript_path,
                    c.initial_weights, c.preprocessing, c.training, c.strategy,
                    c.secure_aggregation, c.eval_data,
                    c.eval_split, c.federated_evaluation, c.eval_batch_size, c.checkpoint_every);
  };
  return settings(a) == settings(b);
}

void ReadFederationSections(TomlFile& file, CoordinatorConfig* config) {
  CoordinatorConfig& c = *config;
  file.Read("federation", "rounds", &c.rounds);
  file.Read("federation", "min_sites", &c.min_sites);
  file.Read("federation", "sites_per_round", &c.sites_per_round);
  file.Read("federation", "min_available_sites", &c.min_available_sites);
  file.Read("federation", "round_deadline_seconds", &c.round_deadline_seconds);
  file.Read("federation", "registration_timeout_seconds", &c.registration_timeout_seconds);
  file.Read("federation", "seed", &c.seed);
  file.Read("model", "name", &c.model);
  file.Read("model", "in_channels", &c.in_channels);
  file.Read("model", "num_classes", &c.num_classes);
  file.Read("model", "image_size", &c.image_size);
  file.Read("model", "torchscript_path", &c.torchscript_path);
  file.Read("model", "initial_weights", &c.initial_weights);
  ReadPreprocessKeys(file, "preprocessing", &c.preprocessing);
  file.Read("training", "local_epochs", &c.training.local_epochs);
  file.Read("training", "batch_size", &c.training.batch_size);
  file.Read("training", "optimizer", &c.training.optimizer);
  file.Read("training", "learning_rate", &c.training.learning_rate);
  file.Read("training", "momentum", &c.training.momentum);
  file.Read("training", "weight_decay", &c.training.weight_decay);
  file.Read("training", "frozen_layers", &c.training.frozen_layers);
  file.Read("strategy", "name", &c.strategy.name);
  for (const StrategyKeyRule& rule : StrategyKeyRules()) {
    ReadOptional(file, "strategy", rule.key, &(c.strategy.*rule.field));
  }
  SecureAggregationConfig& a = c.secure_aggregation;
  file.Read("secure_aggregation", "enabled", &a.enabled);
  file.Read("secure_aggregation", "threshold", &a.threshold);
  file.Read("secure_aggregation", "clip_range", &a.clip_range);
  file.Read("secure_aggregation", "quantization_bits", &a.quantization_bits);
  file.Read("secure_aggregation", "stage_timeout_seconds", &a.stage_timeout_seconds);
  file.Read("secure_aggregation", "neighbours", &a.neighbours);
  file.Read("evaluation", "data", &c.eval_data);
  file.Read("evaluation", "split", &c.eval_split);
  file.Read("evaluation", "federated", &c.federated_evaluation);
  file.Read("evaluation", "batch_size", &c.eval_batch_size);
  file.Read("evaluation", "checkpoint_every", &c.checkpoint_every);
}

CoordinatorConfig LoadCoordinatorConfig(const std::string& path) {
  TomlFile file(path);
  CoordinatorConfig c;
  c.config_path = path;
  file.Read("coordinator", "federation", &c.federation);
  file.Read("coordinator", "listen", &c.listen_address);
  file.Read("coordinator", "output_dir", &c.output_dir);
  file.Read("coordinator", "threads", &c.threads);
  file.Read("tls", "ca_cert", &c.tls.ca_cert, Presence::kRequired);
  file.Read("tls", "cert", &c.tls.cert, Presence::kRequired);
  file.Read("tls", "key", &c.tls.key, Presence::kRequired);
  file.Read("tls", "allowed_sites", &c.allowed_sites, Presence::kRequired);
  ReadFederationSections(file, &c);
  file.Finish();

  c.output_dir = ResolveRelativeTo(path, c.output_dir);
  ResolveTlsPaths(path, &c.tls);
  c.torchscript_path = ResolveRelativeTo(path, c.torchscript_path);
  c.initial_weights = ResolveRelativeTo(path, c.initial_weights);
  ValidateCoordinatorConfig(c);
  return c;
}

void ResolveTlsPaths(const std::string& config_path, TlsFiles* tls) {
  tls->ca_cert = ResolveRelativeTo(config_path, tls->ca_cert);
  tls->cert = ResolveRelativeTo(config_path, tls->cert);
  tls->key = ResolveRelativeTo(config_path, tls->key);
}

void ValidateCoordinatorConfig(const CoordinatorConfig& c) {
  const std::string& f = c.config_path;
  const auto require = [&f](bool ok, const char* section, const char* key,
                            const std::string& expected, const std::string& got) {
    if (!ok) ThrowBadSetting(f, section, key, expected, got);
  };
  const auto str = [](const std::string& s) { return TomlString(s); };
  const auto num = [](auto v) { return std::to_string(v); };

  require(!c.federation.empty(), "coordinator", "federation", "a non-empty name",
          str(c.federation));
  std::string host;
  int port = 0;
  require(ParseHostPort(c.listen_address, &host, &port), "coordinator", "listen",
          "host:port (e.g. \"0.0.0.0:7443\")", str(c.listen_address));
  require(!c.output_dir.empty(), "coordinator", "output_dir", "a directory", str(c.output_dir));
  require(c.threads >= 1, "coordinator", "threads", "an integer >= 1", num(c.threads));

  require(!c.tls.ca_cert.empty(), "tls", "ca_cert", "the CA certificate file", str(""));
  require(!c.tls.cert.empty(), "tls", "cert", "the coordinator's certificate file", str(""));
  require(!c.tls.key.empty(), "tls", "key", "the coordinator's private key file", str(""));
  require(!c.allowed_sites.empty(), "tls", "allowed_sites",
          "at least one site name (certificate CN)", TomlStringArray(c.allowed_sites));
  std::set<std::string> seen;
  for (const std::string& site : c.allowed_sites) {
    require(IsValidSiteName(site), "tls", "allowed_sites", kSiteNameRule, str(site));
    require(seen.insert(site).second, "tls", "allowed_sites", "unique site names",
            str(site) + " twice");
  }

  const int num_sites = static_cast<int>(c.allowed_sites.size());
  require(c.rounds >= 1, "federation", "rounds", "an integer >= 1", num(c.rounds));
  require(c.min_sites >= 1 && c.min_sites <= num_sites, "federation", "min_sites",
          "an integer between 1 and " + num(num_sites) + " (the number of [tls] allowed_sites)",
          num(c.min_sites));
  require(c.sites_per_round == 0 ||
              (c.sites_per_round >= c.min_sites && c.sites_per_round <= num_sites),
          "federation", "sites_per_round",
          "0 (all registered sites) or an integer between min_sites (" + num(c.min_sites) +
              ") and the number of [tls] allowed_sites (" + num(num_sites) + ")",
          num(c.sites_per_round));
  require(c.min_available_sites == 0 ||
              (c.min_available_sites >= c.min_sites && c.min_available_sites <= num_sites),
          "federation", "min_available_sites",
          "0 (= min_sites) or an integer between min_sites (" + num(c.min_sites) +
              ") and the number of [tls] allowed_sites (" + num(num_sites) + ")",
          num(c.min_available_sites));
  require(c.round_deadline_seconds > 0, "federation", "round_deadline_seconds",
          "a number of seconds > 0", TomlDouble(c.round_deadline_seconds));
  require(c.registration_timeout_seconds >= 0, "federation", "registration_timeout_seconds",
          "a number of seconds >= 0 (0 = wait forever)",
          TomlDouble(c.registration_timeout_seconds));
  require(c.seed <= kMaxSeed, "federation", "seed",
          "an integer between 0 and " + num(kMaxSeed), num(c.seed));

  require(!c.model.empty(), "model", "name", "a model zoo name such as \"cnn\"", str(c.model));
  require(c.in_channels >= 0, "model", "in_channels",
          "an integer >= 1, or 0 to take it from the evaluation data", num(c.in_channels));
  require(c.num_classes == 0 || c.num_classes >= 2, "model", "num_classes",
          "an integer >= 2, or 0 to take it from the evaluation data", num(c.num_classes));
  require(c.image_size >= 1, "model", "image_size", "an integer >= 1", num(c.image_size));
  require(!c.eval_data.empty() || (c.in_channels > 0 && c.num_classes > 0), "model",
          c.in_channels > 0 ? "num_classes" : "in_channels",
          "a value > 0 when [evaluation] data is not set (nothing else tells the model shape)",
          num(c.in_channels > 0 ? c.num_classes : c.in_channels));
  const bool scripted = c.model == "torchscript";
  require(!scripted || !c.torchscript_path.empty(), "model", "torchscript_path",
          "the TorchScript file of the network (torch.jit.save output) with name = "
          "\"torchscript\"",
          "nothing");
  require(scripted || c.torchscript_path.empty(), "model", "torchscript_path",
          "no value unless name = \"torchscript\" (the model is " + str(c.model) + ")",
          str(c.torchscript_path));

  const PreprocessSpec& p = c.preprocessing;
  ValidatePreprocessSpec(p, SettingName(f, "preprocessing", "").substr(
                                0, SettingName(f, "preprocessing", "").size() - 1));
  require(p.image_size == 0 || p.image_size == c.image_size, "preprocessing", "image_size",
          "0 (keep the images' size) or [model] image_size (" + num(c.image_size) + ")",
          num(p.image_size));
  require(p.channels == 0 || c.in_channels == 0 || p.channels == c.in_channels, "preprocessing",
          "channels", "0 (keep the images' channels) or [model] in_channels (" +
                          num(c.in_channels) + ")",
          num(p.channels));

  const TrainingConfig& t = c.training;
  require(t.local_epochs >= 1, "training", "local_epochs", "an integer >= 1",
          num(t.local_epochs));
  require(t.batch_size >= 1, "training", "batch_size", "an integer >= 1", num(t.batch_size));
  require(t.optimizer == "sgd" || t.optimizer == "adam", "training", "optimizer",
          "\"sgd\" or \"adam\"", str(t.optimizer));
  require(t.learning_rate > 0, "training", "learning_rate", "a number > 0",
          TomlDouble(t.learning_rate));
  require(t.momentum >= 0 && t.momentum < 1, "training", "momentum",
          "a number in [0, 1)", TomlDouble(t.momentum));
  require(t.weight_decay >= 0, "training", "weight_decay", "a number >= 0",
          TomlDouble(t.weight_decay));
  try {
    ValidateFrozenLayers(t.frozen_layers);
  } catch (const ConfigError& e) {
    // "<file>: [training] frozen_layers[i]: ..."
    throw ConfigError(SettingName(f, "training", e.what()));
  }

  ValidateStrategyConfig(c.strategy, f);

  const SecureAggregationConfig& a = c.secure_aggregation;
  require(a.threshold == 0 || (a.threshold >= 2 && a.threshold <= num_sites), "secure_aggregation",
          "threshold",
          "0 (a majority of each round's sites) or an integer between 2 and the number of [tls] "
          "allowed_sites (" + num(num_sites) + ")",
          num(a.threshold));
  require(std::isfinite(a.clip_range) && a.clip_range > 0 &&
              2.0 * a.clip_range * num_sites <= std::ldexp(1.0, a.quantization_bits) - 1 - num_sites,
          "secure_aggregation", "clip_range",
          "a number > 0 with 2 * clip_range * " + num(num_sites) + " sites <= 2^" +
              num(a.quantization_bits) + " - 1 - " + num(num_sites),
          TomlDouble(a.clip_range));
  require(a.quantization_bits >= 8 && a.quantization_bits <= 32, "secure_aggregation",
          "quantization_bits", "an integer between 8 and 32", num(a.quantization_bits));
  require(a.stage_timeout_seconds > 0, "secure_aggregation", "stage_timeout_seconds",
          "a number of seconds > 0", TomlDouble(a.stage_timeout_seconds));
  require(a.neighbours == 0 || (a.neighbours >= 2 && a.neighbours % 2 == 0), "secure_aggregation",
          "neighbours", "0 (every other site) or an even number >= 2 (SecAgg+)",
          num(a.neighbours));
  require(a.neighbours == 0 || a.threshold <= a.neighbours + 1, "secure_aggregation",
          "threshold",
          "at most neighbours + 1 = " + num(a.neighbours + 1) +
              " (each site's shares are held by itself and its neighbours)",
          num(a.threshold));
  if (a.enabled) {
    require(num_sites >= 2, "secure_aggregation", "enabled",
            "false with a single allowed site (nothing to hide it among)", "true");
    if (c.strategy.name == "median" || c.strategy.name == "trimmed_mean") {
      throw ConfigError(SettingName(f, "strategy", "name") + ": " + TomlString(c.strategy.name) +
                        " needs each site's update on its own, but [secure_aggregation] enabled = "
                        "true lets the coordinator see only their sum; choose fedavg, fedprox, "
                        "fedadam, fedyogi or fedadagrad, or disable secure aggregation");
    }
  }

  require(c.eval_split == "train" || c.eval_split == "val" || c.eval_split == "test",
          "evaluation", "split", "\"train\", \"val\" or \"test\"", str(c.eval_split));
  require(c.eval_batch_size >= 1, "evaluation", "batch_size", "an integer >= 1",
          num(c.eval_batch_size));
  require(c.checkpoint_every >= 1, "evaluation", "checkpoint_every", "an integer >= 1",
          num(c.checkpoint_every));
}

void ValidateStrategyConfig(const StrategyConfig& s, const std::string& config_path) {
  bool known = false;
  std::string names;
  for (std::size_t i = 0; i < kStrategyNames.size(); ++i) {
    known = known || s.name == kStrategyNames[i];
    if (i > 0) names += i + 1 == kStrategyNames.size() ? " or " : ", ";
    names += TomlString(kStrategyNames[i]);
  }
  if (!known) ThrowBadSetting(config_path, "strategy", "name", names, TomlString(s.name));
  for (const StrategyKeyRule& rule : StrategyKeyRules()) {
    const std::optional<double>& value = s.*rule.field;
    const auto* applies = RuleFor(rule, s.name);
    if (applies == nullptr) {
      if (value) {
        throw ConfigError(SettingName(config_path, "strategy", rule.key) + ": applies only to " +
                          AppliesTo(rule) + ", not to name = " + TomlString(s.name) +
                          " (remove the key or choose another strategy)");
      }
      continue;
    }
    if (!value && !applies->second) {
      ThrowBadSetting(config_path, "strategy", rule.key,
                      std::string(rule.expected) + " (required with name = " +
                          TomlString(s.name) + ")",
                      "nothing");
    }
    if (value && !rule.in_range(*value)) {
      ThrowBadSetting(config_path, "strategy", rule.key, rule.expected, TomlDouble(*value));
    }
  }
}

StrategyConfig WithStrategyDefaults(const StrategyConfig& config) {
  StrategyConfig out = config;
  for (const StrategyKeyRule& rule : StrategyKeyRules()) {
    std::optional<double>& value = out.*rule.field;
    const auto* applies = RuleFor(rule, out.name);
    if (!value && applies != nullptr) value = applies->second;
  }
  return out;
}

std::string RenderCoordinatorConfig(const CoordinatorConfig& c) {
  const auto num = [](auto v) { return std::to_string(v); };
  const TrainingConfig& t = c.training;
  return std::string() +
         "# fedmed coordinator configuration: fedmed-coordinator --config <this file>\n"
         "# Relative [tls] paths and output_dir are relative to this file's directory.\n"
         "# [evaluation] data is looked up under the data root (--data, FEDMED_DATA,\n"
         "# ../shared/data) unless it is absolute.\n"
         "\n"
         "[coordinator]\n"
         "# Name of the federation, shown in logs and in status.json.\n"
         "federation = " + TomlString(c.federation) + "\n"
         "# host:port the gRPC server listens on (port 0 = any free port).\n"
         "listen = " + TomlString(c.listen_address) + "\n"
         "# Where the log, metrics, status.json and checkpoints are written.\n"
         "output_dir = " + TomlString(c.output_dir) + "\n"
         "# LibTorch compute threads.\n"
         "threads = " + num(c.threads) + "\n"
         "\n"
         "[tls]\n"
         "# The federation CA certificate: every site's certificate must chain to it.\n"
         "ca_cert = " + TomlString(c.tls.ca_cert) + "\n"
         "# This coordinator's certificate and private key (keep the key mode 0600).\n"
         "cert = " + TomlString(c.tls.cert) + "\n"
         "key = " + TomlString(c.tls.key) + "\n"
         "# Site names (certificate CNs) allowed to join.\n"
         "allowed_sites = " + TomlStringArray(c.allowed_sites) + "\n"
         "\n"
         "[federation]\n"
         "# Number of training rounds.\n"
         "rounds = " + num(c.rounds) + "\n"
         "# Quorum: a round counts only with updates from at least this many sites.\n"
         "min_sites = " + num(c.min_sites) + "\n"
         "# Sites selected per round (0 = every registered site).\n"
         "sites_per_round = " + num(c.sites_per_round) + "\n"
         "# Registered sites needed before the first round starts (0 = min_sites).\n"
         "min_available_sites = " + num(c.min_available_sites) + "\n"
         "# Seconds a round waits for updates; later updates are left out.\n"
         "round_deadline_seconds = " + TomlDouble(c.round_deadline_seconds) + "\n"
         "# Seconds to wait for min_sites sites to register (0 = wait forever).\n"
         "registration_timeout_seconds = " + TomlDouble(c.registration_timeout_seconds) + "\n"
         "# Seed of site selection, model initialisation and the sites' training seeds.\n"
         "seed = " + num(c.seed) + "\n"
         "\n"
         "[model]\n"
         "# Model zoo name, e.g. \"cnn\" or \"resnet18\".\n"
         "name = " + TomlString(c.model) + "\n"
         "# Input channels and number of classes (0 = take them from the evaluation data).\n"
         "in_channels = " + num(c.in_channels) + "\n"
         "num_classes = " + num(c.num_classes) + "\n"
         "# Images are image_size x image_size pixels.\n"
         "image_size = " + num(c.image_size) + "\n"
         "# With name = \"torchscript\": the network as a TorchScript file (torch.jit.save);\n"
         "# every site sets [model] torchscript_path to its own copy (same parameter names and\n"
         "# shapes).\n"
         "torchscript_path = " + TomlString(c.torchscript_path) + "\n"
         "# Fine-tuning: initial weights (a state dict or a TorchScript file) instead of the\n"
         "# model's own initialisation (\"\" = none).\n"
         "initial_weights = " + TomlString(c.initial_weights) + "\n"
         "\n"
         "[preprocessing]\n"
         "# What every site's [data] preprocessing keys must say (sites that differ are refused);\n"
         "# the [evaluation] data is preprocessed alike. The defaults are MedMNIST's.\n" +
         RenderPreprocessKeys(c.preprocessing) +
         "\n"
         "[training]\n"
         "# Local training each selected site runs per round.\n"
         "local_epochs = " + num(t.local_epochs) + "\n"
         "batch_size = " + num(t.batch_size) + "\n"
         "# \"sgd\" or \"adam\".\n"
         "optimizer = " + TomlString(t.optimizer) + "\n"
         "learning_rate = " + TomlDouble(t.learning_rate) + "\n"
         "# SGD momentum (not used by adam).\n"
         "momentum = " + TomlDouble(t.momentum) + "\n"
         "weight_decay = " + TomlDouble(t.weight_decay) + "\n"
         "# Fine-tuning: parameter-name prefixes (matched at dots) that the sites do not train,\n"
         "# e.g. [\"conv1\", \"gn1\"].\n"
         "frozen_layers = " + TomlStringArray(t.frozen_layers) + "\n"
         "\n"
         "[strategy]\n" +
         RenderStrategy(c.strategy) +
         "\n"
         "[secure_aggregation]\n"
         "# Secure aggregation (Bonawitz et al. 2017): the coordinator learns only the sum of the\n"
         "# round's updates. Not with median or trimmed_mean.\n"
         "enabled = " + TomlBool(c.secure_aggregation.enabled) + "\n"
         "# Survivors needed to unmask a round (0 = a majority of the round's sites).\n"
         "threshold = " + num(c.secure_aggregation.threshold) + "\n"
         "# Each value of a site's weighted update is clipped to [-clip_range, clip_range].\n"
         "clip_range = " + TomlDouble(c.secure_aggregation.clip_range) + "\n"
         "# Bits of the fixed-point code of the sum (8..32).\n"
         "quantization_bits = " + num(c.secure_aggregation.quantization_bits) + "\n"
         "# Seconds the key exchange and unmasking stages wait for late sites.\n"
         "stage_timeout_seconds = " + TomlDouble(c.secure_aggregation.stage_timeout_seconds) + "\n"
         "# SecAgg+: exchange keys and masks with this many neighbours only (even; 0 = all).\n"
         "neighbours = " + num(c.secure_aggregation.neighbours) + "\n"
         "\n"
         "[evaluation]\n"
         "# Held-out images the coordinator evaluates the global model on (\"\" = none).\n"
         "data = " + TomlString(c.eval_data) + "\n"
         "# Split of that file: \"train\", \"val\" or \"test\".\n"
         "split = " + TomlString(c.eval_split) + "\n"
         "# Also ask the sites to evaluate the global model on their local test split.\n"
         "federated = " + TomlBool(c.federated_evaluation) + "\n"
         "batch_size = " + num(c.eval_batch_size) + "\n"
         "# Write a checkpoint every this many rounds.\n"
         "checkpoint_every = " + num(c.checkpoint_every) + "\n";
}

}  // namespace fedmed
