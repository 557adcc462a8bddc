#include "site_agent/round_privacy.h"

#include <algorithm>
#include <cstdio>

#include "common/privacy/dp_sgd_schedule.h"
#include "common/privacy/rdp_accountant.h"
#include "common/util/error.h"

namespace fedmed {

namespace {

std::string Format(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

}  // namespace

RoundPrivacy::RoundPrivacy(const SitePrivacyConfig& config, const std::string& output_dir,
                           int64_t num_train_samples)
    : config_(config), num_train_samples_(num_train_samples) {
  if (!config_.enabled()) {
    throw ConfigError("RoundPrivacy needs [privacy] mode \"dp-sgd\" or \"update\"");
  }
  budget_ = std::make_unique<PrivacyBudget>(output_dir + "/privacy_ledger.json",
                                            config_.budget_epsilon, config_.delta,
                                            ParseRdpConversion(config_.conversion));
}

RoundPrivacy::Plan RoundPrivacy::PlanRound(int round, int total_rounds,
                                           const TrainSettings& settings) const {
  Plan plan;
  plan.round = round;
  PrivacyMechanism m;
  m.mode = ParsePrivacyMode(config_.mode).value_or(PrivacyMode::kNone);
  m.clipping_norm = config_.clipping_norm;
  if (m.mode == PrivacyMode::kDpSgd) {
    const DpSgdSchedule schedule =
        PlanDpSgd(num_train_samples_, settings.batch_size, settings.local_epochs);
    m.sampling_rate = schedule.sampling_rate;
    m.steps = schedule.steps;
  } else {
    m.sampling_rate = 1;
    m.steps = 1;
  }
  const std::string eps_spent = Format("%.4g", budget_->spent());
  if (config_.noise_multiplier > 0) {
    m.noise_multiplier = config_.noise_multiplier;
  } else {
    // Spread what is left of target_epsilon over this round and the remaining ones.
    const int64_t rounds_left = std::max(1, total_rounds - round + 1);
    try {
      m.noise_multiplier = CalibrateNoiseMultiplier(
          config_.target_epsilon, config_.delta, m.sampling_rate, m.steps * rounds_left,
          budget_->conversion(), /*epsilon_tolerance=*/0.01, &budget_->accountant());
    } catch (const ConfigError& e) {
      plan.decline_reason = "target_epsilon " + Format("%.4g", config_.target_epsilon) +
                            " is reached (spent " + eps_spent + "): no noise level lets round " +
                            std::to_string(round) + " stay within it";
      plan.report = Report(m, 0, budget_->spent());
      return plan;
    }
  }
  const double cost = budget_->RoundEpsilon(m);
  const double total = budget_->TotalAfter(m);
  plan.report = Report(m, cost, budget_->spent());
  if (total > config_.budget_epsilon) {
    plan.decline_reason = "privacy budget: round " + std::to_string(round) + " would spend epsilon " +
                          Format("%.4g", cost) + " and take the total from " + eps_spent +
                          " to " + Format("%.4g", total) + ", above budget_epsilon " +
                          Format("%.4g", config_.budget_epsilon) + " (delta " +
                          Format("%.3g", config_.delta) + ")";
    return plan;
  }
  plan.train = true;
  return plan;
}

PrivacySpend RoundPrivacy::Commit(const Plan& plan) {
  const RoundSpend spend = budget_->Commit(plan.round, plan.report.mechanism);
  return Report(plan.report.mechanism, spend.epsilon_round, spend.epsilon_total);
}

PrivacySpend RoundPrivacy::Report(const PrivacyMechanism& m, double epsilon_round,
                                   double epsilon_total) const {
  PrivacySpend r;
  r.mechanism = m;
  r.delta = config_.delta;
  r.epsilon_round = epsilon_round;
  r.epsilon_total = epsilon_total;
  r.budget_epsilon = config_.budget_epsilon;
  return r;
}

std::string RoundPrivacy::Describe() const {
  std::string noise = config_.noise_multiplier > 0
                          ? "noise multiplier " + Format("%.4g", config_.noise_multiplier)
                          : "noise calibrated to target epsilon " +
                                Format("%.4g", config_.target_epsilon);
  std::string s = config_.mode + " (" +
                  (config_.mode == "dp-sgd" ? "per-image" : "whole-update") +
                  " clipping norm " + Format("%.4g", config_.clipping_norm) + ", " + noise +
                  "), budget epsilon " + Format("%.4g", config_.budget_epsilon) + " at delta " +
                  Format("%.3g", config_.delta) + " (" + config_.conversion + "); spent " +
                  Format("%.4g", budget_->spent()) + " over " +
                  std::to_string(budget_->history().size()) + " round(s) so far (" +
                  budget_->ledger_path() + ")";
  if (budget_->previous_budget_epsilon() > 0 &&
      budget_->previous_budget_epsilon() != config_.budget_epsilon) {
    s += "; the budget changed from " + Format("%.4g", budget_->previous_budget_epsilon());
  }
  return s;
}

}  // namespace fedmed
