#include "common/config/strategy_config.h"

#include <cmath>
#include <utility>
#include <vector>

#include "common/config/config_schema.h"
#include "common/config/coordinator_config.h"

namespace fedmed {

namespace {

const std::vector<std::pair<std::string, StrategyKind>>& StrategyNames() {
  static const std::vector<std::pair<std::string, StrategyKind>> names = {
      {"fedavg", StrategyKind::kFedAvg},       {"fedprox", StrategyKind::kFedProx},
      {"fedadam", StrategyKind::kFedAdam},     {"fedyogi", StrategyKind::kFedYogi},
      {"fedadagrad", StrategyKind::kFedAdagrad}, {"median", StrategyKind::kMedian},
      {"trimmed_mean", StrategyKind::kTrimmedMean}};
  return names;
}

// A numeric [strategy] key: the strategies it applies to, each with its default (nullopt:
// required, no default), and its range.
struct StrategyKeyRule {
  const char* key;
  std::optional<double> StrategyConfig::*field;
  const char* doc;       // the comment rendered above the key
  const char* expected;  // the range, as validation reports it
  bool (*in_range)(double);
  std::vector<std::pair<std::string, std::optional<double>>> defaults;
};

bool Positive(double v) { return std::isfinite(v) && v > 0; }
bool UnitInterval(double v) { return v >= 0 && v < 1; }  // false for NaN
bool BelowHalf(double v) { return v >= 0 && v < 0.5; }

const std::vector<StrategyKeyRule>& StrategyKeyRules() {
  static const std::vector<StrategyKeyRule> rules = {
      {"proximal_mu", &StrategyConfig::proximal_mu,
       "FedProx proximal term mu (required): each site adds (mu/2) * ||w - w_global||^2 to its\n"
       "local loss (Li et al. 2020 tried 0.001, 0.01, 0.1 and 1).",
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
       "updates are dropped before averaging.",
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

// The row of a numeric key: checked against the strategy it applies to, and rendered only where
// it applies or is set (unset: as a comment with the strategy's default).
ConfigKey<StrategyConfig> NumericKey(const StrategyKeyRule& rule) {
  using S = StrategyConfig;
  const auto check = [&rule](const std::optional<double>& value, const S& s) {
    const auto* applies = RuleFor(rule, s.name);
    if (applies == nullptr) {
      return value ? Verdict::Refused("applies only to " + AppliesTo(rule) +
                                      ", not to name = " + TomlString(s.name) +
                                      " (remove the key or choose another strategy)")
                   : Verdict();
    }
    if (!value && !applies->second) {
      return Verdict::Expected(
          std::string(rule.expected) + " (required with name = " + TomlString(s.name) + ")",
          "nothing");
    }
    return Require(!value || rule.in_range(*value), rule.expected);
  };
  const auto render = [&rule](const S& s) {
    const std::optional<double>& value = s.*rule.field;
    const auto* applies = RuleFor(rule, s.name);
    if (!value && applies == nullptr) return std::string();
    std::string text = config_internal::CommentLines(rule.doc);
    if (value) return text + rule.key + " = " + TomlDouble(*value) + "\n";
    if (applies->second) {
      return text + "# " + rule.key + " = " + TomlDouble(*applies->second) +
             "  (the default for " + s.name + ")\n";
    }
    return text + "# " + rule.key + " = (required)\n";
  };
  return ConfigKey<S>(rule.key, rule.field, rule.doc, check).RenderedBy(render);
}

}  // namespace

const ConfigSection<StrategyConfig>& StrategySection() {
  static const ConfigSection<StrategyConfig> section = [] {
    std::vector<std::string> names;
    for (const auto& entry : StrategyNames()) names.push_back(entry.first);
    ConfigSection<StrategyConfig> s{
        "strategy",
        "",
        {ConfigKey<StrategyConfig>(
            "name", &StrategyConfig::name,
            "How the round's updates become the next global model:\n"
            "  \"fedavg\"        mean of the updates weighted by sample count "
            "(McMahan et al. 2017)\n"
            "  \"fedprox\"       FedAvg, and the sites train with a proximal term "
            "(Li et al. 2020)\n"
            "  \"fedadam\", \"fedyogi\", \"fedadagrad\"\n"
            "                  adaptive server optimiser on the weighted mean update\n"
            "                  (Reddi et al., \"Adaptive Federated Optimization\", ICLR 2021)\n"
            "  \"median\", \"trimmed_mean\"\n"
            "                  coordinate-wise, unweighted, robust to a few faulty sites "
            "(Yin et al.\n"
            "                  2018); they keep every update and cannot run under secure "
            "aggregation\n"
            "A key for another strategy than `name` is an error; commented keys show the "
            "default.",
            OneOf(names))}};
    for (const StrategyKeyRule& rule : StrategyKeyRules()) s.keys.push_back(NumericKey(rule));
    return s;
  }();
  return section;
}

bool operator==(const StrategyConfig& a, const StrategyConfig& b) {
  return SectionEqual(StrategySection(), a, b);
}

std::optional<StrategyKind> ParseStrategyKind(const std::string& name) {
  for (const auto& [text, kind] : StrategyNames()) {
    if (text == name) return kind;
  }
  return std::nullopt;
}

bool StrategyNeedsIndividualUpdates(const std::string& name) {
  const std::optional<StrategyKind> kind = ParseStrategyKind(name);
  return kind == StrategyKind::kMedian || kind == StrategyKind::kTrimmedMean;
}

void ValidateStrategyConfig(const StrategyConfig& config, const std::string& config_path) {
  ValidateSection(StrategySection(), config, config_path);
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

}  // namespace fedmed
