// A site's privacy budget: what it has spent, what the next round would cost, and a durable
// record of every spend, so that no round ever takes the site above its budget, across restarts.
//
// The budget is an epsilon at a fixed delta. Every round the site trains is one use of a
// Gaussian mechanism, composed with the RDP accountant (common/privacy/rdp_accountant.h):
//   "dp-sgd"  `steps` steps of the Poisson-subsampled Gaussian mechanism at sampling rate q and
//             noise multiplier sigma (Abadi et al. 2016; Mironov, Talwar & Zhang 2019);
//   "update"  one Gaussian mechanism on the clipped update, q = 1, steps = 1, noise multiplier z
//             (site-level DP, McMahan et al., ICLR 2018), counted every round the site takes part.
// A site that is not selected for a round, or declines it, spends nothing.
//
// The ledger file (JSON, written with WriteFileAtomically of common/util/file_io.h: temporary
// file, fsync, rename, fsync of the directory) lists every committed round with its mechanism parameters; the accountant is
// rebuilt from that list when the site starts, so a restarted site resumes with exactly what it
// had spent. Commit() returns only once the spend is on disk: callers commit before the update
// they describe leaves the site, so a crash can lose an upload but never the record of a spend.
// (The tamper-evident, signed privacy log is a separate, later layer; this file is the site's
// own working state.)
#ifndef FEDMED_COMMON_PRIVACY_PRIVACY_BUDGET_H_
#define FEDMED_COMMON_PRIVACY_PRIVACY_BUDGET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/privacy/privacy_spend.h"
#include "common/privacy/rdp_accountant.h"

namespace fedmed {

// A committed round.
struct RoundSpend {
  int round = 0;
  PrivacyMechanism mechanism;
  double epsilon_round = 0;  // this round alone, at the budget's delta
  double epsilon_total = 0;  // every committed round up to this one, composed
};

class PrivacyBudget {
 public:
  // Opens the ledger at `ledger_path` (a missing file is an empty ledger; its directory must
  // exist) for a budget of `budget_epsilon` (> 0) at `delta` (in (0, 1)), converting RDP with
  // `conversion`. A different budget than the ledger was written with is allowed (it applies
  // from now on; the caller logs the change); a different delta or conversion is not.
  // Throws ConfigError for bad arguments, or a ledger kept at another delta or conversion (both
  // named); FormatError naming the file if it is not a ledger (corrupt JSON, missing fields,
  // parameters out of range); Error naming the file if it exists but cannot be read.
  PrivacyBudget(std::string ledger_path, double budget_epsilon, double delta,
                RdpConversion conversion = RdpConversion::kBalle2020);

  double budget_epsilon() const { return budget_epsilon_; }
  double delta() const { return delta_; }
  RdpConversion conversion() const { return conversion_; }
  // The budget recorded in the ledger before this run (0 if the ledger was new).
  double previous_budget_epsilon() const { return previous_budget_epsilon_; }

  // Epsilon spent by every committed round, composed (0 before the first).
  double spent() const;
  // Epsilon of `m` alone, and of everything committed composed with `m`. Throw ConfigError if
  // the parameters of `m` are out of range.
  double RoundEpsilon(const PrivacyMechanism& m) const;
  double TotalAfter(const PrivacyMechanism& m) const;
  // TotalAfter(m) <= budget_epsilon().
  bool Allows(const PrivacyMechanism& m) const;

  // Records round `round` as spent, durably, and returns the record. Throws Error (and records
  // nothing) if it would take the total above the budget, ConfigError for bad parameters, Error
  // naming the file if it cannot be written.
  RoundSpend Commit(int round, const PrivacyMechanism& m);

  const std::vector<RoundSpend>& history() const { return history_; }
  const RdpAccountant& accountant() const { return accountant_; }
  const std::string& ledger_path() const { return path_; }

 private:
  void Save() const;

  std::string path_;
  double budget_epsilon_;
  double delta_;
  RdpConversion conversion_;
  double previous_budget_epsilon_ = 0;
  RdpAccountant accountant_;
  std::vector<RoundSpend> history_;
};

// Throws ConfigError naming the field if a parameter of `m` is out of range (see
// PrivacyMechanism).
void ValidatePrivacyMechanism(const PrivacyMechanism& m);

}  // namespace fedmed

#endif  // FEDMED_COMMON_PRIVACY_PRIVACY_BUDGET_H_
