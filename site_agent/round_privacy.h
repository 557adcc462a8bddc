// The site's privacy decisions for each round: which mechanism and noise a round uses, what it
// would cost, whether the budget allows it, and the durable record of the spend before the
// update leaves (common/privacy/privacy_budget.h). No gRPC and no LibTorch here.
//
// Per round, with [privacy] mode "dp-sgd":
//   q, steps = PlanDpSgd(training images, the task's batch_size, local_epochs)
//   sigma    = [privacy] noise_multiplier, or calibrated (CalibrateNoiseMultiplier) so that what
//              was already spent plus this round and every remaining round of the federation at
//              the same schedule comes to [privacy] target_epsilon;
// with mode "update": q = 1, steps = 1, z likewise. The round is declined when its spend would
// take the total above [privacy] budget_epsilon, or when target_epsilon is already reached.
#ifndef FEDMED_SITE_AGENT_ROUND_PRIVACY_H_
#define FEDMED_SITE_AGENT_ROUND_PRIVACY_H_

#include <cstdint>
#include <memory>
#include <string>

#include "common/config/site_config.h"
#include "common/model/local_training.h"
#include "common/privacy/privacy_budget.h"
#include "site_agent/connection.h"

namespace fedmed {

class RoundPrivacy {
 public:
  // What a round would use and cost.
  struct Plan {
    int round = 0;
    bool train = false;          // false: decline the round, for `decline_reason`
    std::string decline_reason;
    // The mechanism to train with (report.mechanism: the noise and clipping), the spend so
    // far, the round's cost, the budget.
    PrivacySpend report;
  };

  // For a site with `num_train_samples` training images and `config` (mode "dp-sgd" or
  // "update"), keeping its ledger at output_dir/privacy_ledger.json (see PrivacyBudget for the
  // errors thrown).
  RoundPrivacy(const SitePrivacyConfig& config, const std::string& output_dir,
               int64_t num_train_samples);

  // The plan for training round `round` of a federation of `total_rounds` rounds with the
  // task's `settings` (batch size, local epochs). Never throws for a budget that is spent: the
  // plan says to decline. Throws ConfigError for settings the schedule refuses.
  Plan PlanRound(int round, int total_rounds, const TrainSettings& settings) const;

  // Records `plan`'s spend durably and returns the report to send with the update (epsilon_total
  // including this round). Call after training and before the upload. Throws Error if the plan
  // would exceed the budget (a plan from PlanRound with train = true never does).
  PrivacySpend Commit(const Plan& plan);

  // One line for the start-up log: mode, clipping, noise or target, budget, spent so far.
  std::string Describe() const;

  const SitePrivacyConfig& config() const { return config_; }
  const PrivacyBudget& budget() const { return *budget_; }

 private:
  PrivacySpend Report(const PrivacyMechanism& m, double epsilon_round,
                       double epsilon_total) const;

  SitePrivacyConfig config_;
  int64_t num_train_samples_;
  std::unique_ptr<PrivacyBudget> budget_;
};

}  // namespace fedmed

#endif  // FEDMED_SITE_AGENT_ROUND_PRIVACY_H_
