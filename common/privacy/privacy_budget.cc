#include "common/privacy/privacy_budget.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <optional>
#include <sstream>

#include "common/util/error.h"
#include "common/util/file_io.h"

namespace fedmed {

namespace {

constexpr int kLedgerVersion = 1;

std::string Num(double v) {
  std::ostringstream out;
  out.precision(6);
  out << v;
  return out.str();
}

void Compose(RdpAccountant& accountant, const PrivacyMechanism& m) {
  accountant.Compose(m.sampling_rate, m.noise_multiplier, m.steps);
}

}  // namespace

void ValidatePrivacyMechanism(const PrivacyMechanism& m) {
  const auto fail = [&m](const std::string& field, const std::string& expected, double got) {
    throw ConfigError("privacy mechanism \"" + std::string(PrivacyModeName(m.mode)) + "\": " +
                      field + " " + Num(got) +
                      ", expected " + expected);
  };
  if (m.mode == PrivacyMode::kNone) {
    throw ConfigError("privacy mechanism \"none\": expected \"dp-sgd\" or \"update\"");
  }
  if (!std::isfinite(m.noise_multiplier) || m.noise_multiplier <= 0) {
    fail("noise_multiplier", "a finite number > 0", m.noise_multiplier);
  }
  if (!std::isfinite(m.clipping_norm) || m.clipping_norm <= 0) {
    fail("clipping_norm", "a finite number > 0", m.clipping_norm);
  }
  if (!(m.sampling_rate > 0 && m.sampling_rate <= 1)) {
    fail("sampling_rate", "a probability in (0, 1]", m.sampling_rate);
  }
  if (m.steps < 1) fail("steps", "an integer >= 1", static_cast<double>(m.steps));
  if (m.mode == PrivacyMode::kUpdate && (m.sampling_rate != 1 || m.steps != 1)) {
    fail("sampling_rate", "1 with 1 step (the whole update is released once per round)",
         m.sampling_rate);
  }
}

PrivacyBudget::PrivacyBudget(std::string ledger_path, double budget_epsilon, double delta,
                             RdpConversion conversion)
    : path_(std::move(ledger_path)),
      budget_epsilon_(budget_epsilon),
      delta_(delta),
      conversion_(conversion) {
  if (!std::isfinite(budget_epsilon) || budget_epsilon <= 0) {
    throw ConfigError("privacy budget: budget_epsilon " + Num(budget_epsilon) +
                      ", expected a finite number > 0");
  }
  if (!(delta > 0 && delta < 1)) {
    throw ConfigError("privacy budget: delta " + Num(delta) + ", expected a number in (0, 1)");
  }
  if (!std::filesystem::exists(path_)) return;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ReadFile(path_, "privacy ledger"));
    if (j.at("version").get<int>() != kLedgerVersion) {
      throw FormatError("privacy ledger " + path_ + ": version " +
                        std::to_string(j.at("version").get<int>()) + ", expected " +
                        std::to_string(kLedgerVersion));
    }
    const double ledger_delta = j.at("delta").get<double>();
    const std::string ledger_conversion = j.at("conversion").get<std::string>();
    if (ledger_delta != delta_) {
      throw ConfigError("privacy ledger " + path_ + " was kept at delta = " + Num(ledger_delta) +
                        " but [privacy] delta is " + Num(delta_) +
                        "; epsilons at different deltas do not add up: keep delta unchanged "
                        "for the life of the site's data");
    }
    if (ledger_conversion != RdpConversionName(conversion_)) {
      throw ConfigError("privacy ledger " + path_ + " was kept with the \"" + ledger_conversion +
                        "\" conversion but [privacy] conversion is \"" +
                        RdpConversionName(conversion_) + "\"; keep it unchanged");
    }
    previous_budget_epsilon_ = j.at("budget_epsilon").get<double>();
    for (const nlohmann::json& r : j.at("rounds")) {
      RoundSpend spend;
      spend.round = r.at("round").get<int>();
      const std::string mode = r.at("mechanism").get<std::string>();
      const std::optional<PrivacyMode> parsed = ParsePrivacyMode(mode);
      if (!parsed || *parsed == PrivacyMode::kNone) {
        throw FormatError("privacy ledger " + path_ + ", round " + std::to_string(spend.round) +
                          ": privacy mechanism \"" + mode +
                          "\": expected \"dp-sgd\" or \"update\"");
      }
      spend.mechanism.mode = *parsed;
      spend.mechanism.noise_multiplier = r.at("noise_multiplier").get<double>();
      spend.mechanism.clipping_norm = r.at("clipping_norm").get<double>();
      spend.mechanism.sampling_rate = r.at("sampling_rate").get<double>();
      spend.mechanism.steps = r.at("steps").get<int64_t>();
      try {
        ValidatePrivacyMechanism(spend.mechanism);
      } catch (const ConfigError& e) {
        throw FormatError("privacy ledger " + path_ + ", round " + std::to_string(spend.round) +
                          ": " + e.what());
      }
      // Recomputed from the parameters, not trusted from the file.
      spend.epsilon_round = RoundEpsilon(spend.mechanism);
      Compose(accountant_, spend.mechanism);
      spend.epsilon_total = spent();
      history_.push_back(spend);
    }
  } catch (const nlohmann::json::exception& e) {
    throw FormatError("privacy ledger " + path_ + " is not a valid ledger: " + e.what());
  }
}

double PrivacyBudget::spent() const {
  if (history_.empty()) return 0;
  return accountant_.Spent(delta_, conversion_).epsilon;
}

double PrivacyBudget::RoundEpsilon(const PrivacyMechanism& m) const {
  ValidatePrivacyMechanism(m);
  RdpAccountant alone(accountant_.orders());
  Compose(alone, m);
  return alone.Spent(delta_, conversion_).epsilon;
}

double PrivacyBudget::TotalAfter(const PrivacyMechanism& m) const {
  ValidatePrivacyMechanism(m);
  RdpAccountant after = accountant_;
  Compose(after, m);
  return after.Spent(delta_, conversion_).epsilon;
}

bool PrivacyBudget::Allows(const PrivacyMechanism& m) const {
  return TotalAfter(m) <= budget_epsilon_;
}

RoundSpend PrivacyBudget::Commit(int round, const PrivacyMechanism& m) {
  RoundSpend spend;
  spend.round = round;
  spend.mechanism = m;
  spend.epsilon_round = RoundEpsilon(m);
  spend.epsilon_total = TotalAfter(m);
  if (spend.epsilon_total > budget_epsilon_) {
    throw Error("round " + std::to_string(round) + " would spend epsilon " +
                Num(spend.epsilon_round) + ", taking the total to " + Num(spend.epsilon_total) +
                " at delta " + Num(delta_) + ", above the budget of " + Num(budget_epsilon_));
  }
  const RdpAccountant before = accountant_;
  Compose(accountant_, m);
  history_.push_back(spend);
  try {
    Save();
  } catch (...) {
    accountant_ = before;
    history_.pop_back();
    throw;
  }
  return spend;
}

void PrivacyBudget::Save() const {
  nlohmann::json j;
  j["version"] = kLedgerVersion;
  j["delta"] = delta_;
  j["conversion"] = RdpConversionName(conversion_);
  j["budget_epsilon"] = budget_epsilon_;
  nlohmann::json rounds = nlohmann::json::array();
  for (const RoundSpend& r : history_) {
    rounds.push_back({{"round", r.round},
                      {"mechanism", PrivacyModeName(r.mechanism.mode)},
                      {"noise_multiplier", r.mechanism.noise_multiplier},
                      {"clipping_norm", r.mechanism.clipping_norm},
                      {"sampling_rate", r.mechanism.sampling_rate},
                      {"steps", r.mechanism.steps},
                      {"epsilon_round", r.epsilon_round},
                      {"epsilon_total", r.epsilon_total}});
  }
  j["rounds"] = rounds;
  WriteFileAtomically(path_, j.dump(2) + "\n", "privacy ledger");
}

}  // namespace fedmed
