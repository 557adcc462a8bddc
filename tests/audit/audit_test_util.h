// Helpers shared by the privacy-log tests: audit certificates from a test CA, and a site's
// privacy log written the way a site writes it (spends from PrivacyBudget, one entry per event).
#ifndef FEDMED_TESTS_AUDIT_AUDIT_TEST_UTIL_H_
#define FEDMED_TESTS_AUDIT_AUDIT_TEST_UTIL_H_

#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/audit/privacy_log.h"
#include "common/crypto/pki.h"
#include "common/crypto/sha256.h"
#include "common/privacy/privacy_budget.h"
#include "common/privacy/rdp_accountant.h"

namespace fedmed::testing {

// An Ed25519 audit-log certificate for `common_name` from `ca`, as fedmed-pki issues it.
inline KeyAndCert IssueAuditCertificate(const KeyAndCert& ca, const std::string& common_name,
                                        int validity_days = 30) {
  return IssueCertificate(ca, AuditCertificateRequest(common_name, validity_days));
}

// The bytes a site would upload for `round` (stand-ins; only their digest is logged).
inline std::string UpdateBytes(const std::string& site, int round) {
  return "encoded model delta of " + site + " for round " + std::to_string(round);
}

// The DP-SGD mechanism of the test site: sigma 1.1, C 1.0, q = 0.0125 (batch 64 of 5120
// images), 80 steps per round (one local epoch).
inline PrivacyMechanism TestMechanism() {
  PrivacyMechanism m;
  m.mode = PrivacyMode::kDpSgd;
  m.noise_multiplier = 1.1;
  m.clipping_norm = 1.0;
  m.sampling_rate = 0.0125;
  m.steps = 80;
  return m;
}

// A DP-SGD "trained" entry of `round` with clipping norm 1 and the epsilon_round the accountant
// gives for sigma, q, steps and delta; epsilon_total, budget_epsilon and update_sha256 are left
// to the caller.
inline TrainedEvent DpSgdTrained(int round, double noise_multiplier, double sampling_rate,
                                 int64_t steps, double delta) {
  TrainedEvent e;
  e.round = round;
  e.mechanism = PrivacyMode::kDpSgd;
  e.clipping_norm = 1.0;
  e.noise_multiplier = noise_multiplier;
  e.sampling_rate = sampling_rate;
  e.steps = steps;
  e.delta = delta;
  e.epsilon_round = ComputeEpsilon(sampling_rate, noise_multiplier, steps, delta);
  return e;
}

inline TrainedEvent TrainedFromSpend(const RoundSpend& spend, double delta, double budget,
                                     const std::string& site) {
  TrainedEvent e;
  e.round = spend.round;
  e.mechanism = spend.mechanism.mode;
  e.clipping_norm = spend.mechanism.clipping_norm;
  e.noise_multiplier = spend.mechanism.noise_multiplier;
  e.sampling_rate = spend.mechanism.sampling_rate;
  e.steps = spend.mechanism.steps;
  e.delta = delta;
  e.conversion = "balle2020";
  e.epsilon_round = spend.epsilon_round;
  e.epsilon_total = spend.epsilon_total;
  e.budget_epsilon = budget;
  e.update_sha256 = Sha256Hex(UpdateBytes(site, spend.round));
  return e;
}

// What WriteSiteLog wrote: the "trained" entries (with their line hashes, for anchors).
struct WrittenSiteLog {
  std::vector<TrainedEvent> trained;
  std::vector<PrivacyLogEntry> trained_entries;
};

// Writes the privacy log of `site` at `log_path` as a site does over two runs of a federation
// of 14 rounds, 20 entries in all:
//   run 1 (budget 2.0): start, registered, trained rounds 1-8, stop                (11 entries)
//   run 2 (budget raised to 2.15): start, budget, registered, trained rounds 9-12,
//         declined round 13 (it would take the total to 2.198 > 2.15), stop       (9 entries)
// Spends come from a real PrivacyBudget (ledger at `ledger_path`), delta 1e-5, balle2020.
// `digests` replaces the logged update digest of the rounds it names.
inline WrittenSiteLog WriteSiteLog(const std::string& log_path, const std::string& ledger_path,
                                   const KeyAndCert& audit, const std::string& site,
                                   const std::map<int, std::string>& digests = {}) {
  const double delta = 1e-5;
  const PrivacyMechanism m = TestMechanism();
  WrittenSiteLog written;
  const auto train = [&](PrivacyBudget& budget, PrivacyLogWriter& log, int round) {
    const RoundSpend spend = budget.Commit(round, m);
    written.trained.push_back(TrainedFromSpend(spend, delta, budget.budget_epsilon(), site));
    const auto digest = digests.find(round);
    if (digest != digests.end()) written.trained.back().update_sha256 = digest->second;
    written.trained_entries.push_back(log.AppendTrained(written.trained.back()));
  };
  {
    PrivacyBudget budget(ledger_path, 2.0, delta);
    PrivacyLogWriter log(log_path, audit.key_pem, audit.cert_pem);
    log.Append(kEventStart, {{"role", "site"},
                             {"privacy_mode", "dp-sgd"},
                             {"budget_epsilon", 2.0},
                             {"delta", delta},
                             {"conversion", "balle2020"},
                             {"clipping_norm", 1.0},
                             {"noise_multiplier", 1.1}});
    log.Append(kEventRegistered, {{"total_rounds", 14}, {"num_train_samples", 5120}});
    for (int round = 1; round <= 8; ++round) train(budget, log, round);
    log.Append(kEventStop, {{"reason", "operator stop (SIGTERM)"}});
  }
  {
    PrivacyBudget budget(ledger_path, 2.15, delta);
    PrivacyLogWriter log(log_path, audit.key_pem, audit.cert_pem);
    log.Append(kEventStart, {{"role", "site"},
                             {"privacy_mode", "dp-sgd"},
                             {"budget_epsilon", 2.15},
                             {"delta", delta},
                             {"conversion", "balle2020"},
                             {"clipping_norm", 1.0},
                             {"noise_multiplier", 1.1}});
    BudgetEvent change;
    change.budget_epsilon = 2.15;
    change.previous_budget_epsilon = budget.previous_budget_epsilon();
    change.delta = delta;
    change.epsilon_spent = budget.spent();
    log.AppendBudget(change);
    log.Append(kEventRegistered, {{"total_rounds", 14}, {"num_train_samples", 5120}});
    for (int round = 9; round <= 12; ++round) train(budget, log, round);
    DeclinedEvent declined;
    declined.round = 13;
    declined.epsilon_round = budget.RoundEpsilon(m);
    declined.epsilon_total = budget.spent();
    declined.budget_epsilon = budget.budget_epsilon();
    declined.delta = delta;
    declined.reason = "privacy budget: round 13 would take the total to " +
                      std::to_string(budget.TotalAfter(m)) + ", above budget_epsilon 2.15";
    if (budget.Allows(m)) throw std::logic_error("test log: round 13 should exceed the budget");
    log.AppendDeclined(declined);
    log.Append(kEventStop, {{"reason", "federation finished"}});
  }
  return written;
}

// The coordinator's "round" records matching sites' logs: for every round in which any of
// `sites` trained, selected = contributors = those sites, received = their digests, and the
// sites' log heads; written to `log_path` with `audit` (the coordinator's audit key).
inline void WriteCoordinatorLog(const std::string& log_path, const KeyAndCert& audit,
                                const std::vector<std::pair<std::string, WrittenSiteLog>>& sites,
                                bool with_log_heads = true) {
  std::map<int, RoundEvent> rounds;
  for (const auto& [site, written] : sites) {
    for (size_t i = 0; i < written.trained.size(); ++i) {
      RoundEvent& r = rounds[written.trained[i].round];
      r.round = written.trained[i].round;
      r.selected.push_back(site);
      r.contributors.push_back(site);
      r.received[site] = written.trained[i].update_sha256;
      if (with_log_heads) {
        r.log_heads[site] =
            LogAnchor{written.trained_entries[i].seq, written.trained_entries[i].hash};
      }
    }
  }
  PrivacyLogWriter log(log_path, audit.key_pem, audit.cert_pem);
  log.Append(kEventStart, {{"role", "coordinator"}, {"federation", "demo"}, {"rounds", 14}});
  for (auto& [round, r] : rounds) {
    r.aggregate_sha256 = Sha256Hex("global model after round " + std::to_string(round));
    r.metrics = {{"accuracy", 0.80 + 0.005 * round}, {"auc", 0.85 + 0.004 * round}};
    log.AppendRound(r);
  }
  log.Append(kEventStop, {{"reason", "federation finished"}});
}

}  // namespace fedmed::testing

#endif  // FEDMED_TESTS_AUDIT_AUDIT_TEST_UTIL_H_
