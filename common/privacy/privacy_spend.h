// What a round costs a site's privacy budget: the one type for a privacy spend, from the site's
// accountant (privacy_budget.h) through the site's report with its update or decline
// (common/transport/messages.h, PrivacySpend in proto/fedmed.proto) to the coordinator's
// records (coordinator/metrics_log.h). Header-only, no dependencies: the configuration
// (common/config/site_config.h, [privacy] mode) names its mode with the same enum.
//
// Mechanisms (docs/PRIVACY.md):
//   "none"    no differential privacy
//   "dp-sgd"  per-sample clipping to C and Gaussian noise sigma * C at every step of Poisson
//             sampling with rate q (Abadi et al., CCS 2016), `steps` steps per round
//   "update"  the whole update clipped to S and noised with z * S once per round (site-level DP,
//             McMahan et al., ICLR 2018): q = 1, one step
#ifndef FEDMED_COMMON_PRIVACY_PRIVACY_SPEND_H_
#define FEDMED_COMMON_PRIVACY_PRIVACY_SPEND_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fedmed {

enum class PrivacyMode { kNone, kDpSgd, kUpdate };

// "none", "dp-sgd" or "update": the name in config files, ledgers, logs and on the wire.
inline const char* PrivacyModeName(PrivacyMode mode) {
  switch (mode) {
    case PrivacyMode::kDpSgd: return "dp-sgd";
    case PrivacyMode::kUpdate: return "update";
    case PrivacyMode::kNone: break;
  }
  return "none";
}

// The mode named `name`, or nullopt for any other text. Never throws.
inline std::optional<PrivacyMode> ParsePrivacyMode(std::string_view name) {
  if (name == "none") return PrivacyMode::kNone;
  if (name == "dp-sgd") return PrivacyMode::kDpSgd;
  if (name == "update") return PrivacyMode::kUpdate;
  return std::nullopt;
}

// One round's use of a privacy mechanism, as the accountant sees it.
struct PrivacyMechanism {
  PrivacyMode mode = PrivacyMode::kNone;
  double noise_multiplier = 0;  // sigma (dp-sgd) or z (update), > 0
  double clipping_norm = 0;     // C per sample (dp-sgd) or S for the update (update), > 0
  double sampling_rate = 1;     // q in (0, 1]; 1 for "update"
  int64_t steps = 1;            // >= 1; 1 for "update"
};

// A round's privacy spend, as the site reports it. Every epsilon is at `delta`.
struct PrivacySpend {
  PrivacyMechanism mechanism;  // mode kNone: the site runs no differential privacy
  double delta = 0;
  double epsilon_round = 0;    // this round's cost (what it would have cost, when declined)
  double epsilon_total = 0;    // spent over every round so far
  double budget_epsilon = 0;   // the site's budget; epsilon_total never exceeds it
};

}  // namespace fedmed

#endif  // FEDMED_COMMON_PRIVACY_PRIVACY_SPEND_H_
