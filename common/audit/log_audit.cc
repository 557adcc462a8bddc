#include "common/audit/log_audit.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "common/privacy/rdp_accountant.h"
#include "common/util/error.h"

namespace fedmed {

using json = nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string Num(double value) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.10g", value);
  return text;
}

std::string Where(const PrivacyLogEntry& entry, int round) {
  return "line " + std::to_string(entry.line) + " (round " + std::to_string(round) + ")";
}

json NumberOrNull(double value) { return std::isfinite(value) ? json(value) : json(nullptr); }

// The reason `e`'s parameters cannot be composed, or "" when they can.
std::string UnusableParameters(const TrainedEvent& e) {
  if (e.mechanism != PrivacyMode::kDpSgd && e.mechanism != PrivacyMode::kUpdate) {
    return "unknown mechanism \"" + std::string(PrivacyModeName(e.mechanism)) +
           "\" (expected \"dp-sgd\" or \"update\")";
  }
  if (e.conversion != "balle2020" && e.conversion != "classic") {
    return "unknown conversion \"" + e.conversion + "\" (expected \"balle2020\" or \"classic\")";
  }
  if (!(e.delta > 0 && e.delta < 1)) return "delta " + Num(e.delta) + " is not in (0, 1)";
  if (!(e.noise_multiplier > 0 && std::isfinite(e.noise_multiplier))) {
    return "noise_multiplier " + Num(e.noise_multiplier) + " is not a finite number > 0";
  }
  if (e.mechanism == PrivacyMode::kDpSgd) {
    if (!(e.sampling_rate > 0 && e.sampling_rate <= 1)) {
      return "sampling_rate " + Num(e.sampling_rate) + " is not in (0, 1]";
    }
    if (e.steps < 1) return "steps " + std::to_string(e.steps) + " is not >= 1";
  }
  return "";
}

}  // namespace

double RelativeDifference(double a, double b) {
  if (a == b) return 0;
  if (!std::isfinite(a) || !std::isfinite(b)) return std::numeric_limits<double>::infinity();
  return std::fabs(a - b) / std::max(std::fabs(a), std::fabs(b));
}

SiteLogAudit AuditSiteLog(const std::vector<PrivacyLogEntry>& entries, const std::string& path) {
  SiteLogAudit audit;
  audit.path = path;
  audit.entries = static_cast<int64_t>(entries.size());
  if (!entries.empty()) audit.site = entries.front().writer;
  RdpAccountant total;
  bool total_known = true;
  for (const PrivacyLogEntry& entry : entries) {
    const std::string what = path + ": line " + std::to_string(entry.line);
    if (entry.event == kEventRound) audit.is_coordinator = true;
    if (entry.event == kEventBudget || entry.event == kEventStart) {
      const auto it = entry.data.find("budget_epsilon");
      if (it != entry.data.end() && it->is_number()) audit.budget_epsilon = it->get<double>();
    }
    if (entry.event == kEventDeclined) {
      DeclinedRoundAudit declined;
      declined.line = entry.line;
      declined.recorded = DeclinedEventFromJson(entry.data, what);
      audit.budget_epsilon = declined.recorded.budget_epsilon;
      audit.declined.push_back(declined);
      continue;
    }
    if (entry.event != kEventTrained) continue;

    TrainedRoundAudit round;
    round.line = entry.line;
    round.recorded = TrainedEventFromJson(entry.data, what);
    const TrainedEvent& e = round.recorded;
    audit.budget_epsilon = e.budget_epsilon;
    audit.delta = e.delta;
    audit.conversion = e.conversion;
    round.recomputed_round = kNaN;
    round.recomputed_total = kNaN;
    const std::string where = Where(entry, e.round);
    const std::string unusable = UnusableParameters(e);
    if (!unusable.empty()) {
      round.flags.push_back("cannot recompute epsilon: " + unusable);
      total_known = false;  // every later total is unknown too
    } else {
      const bool update = e.mechanism == PrivacyMode::kUpdate;
      if (update && (e.sampling_rate != 1 || e.steps != 1)) {
        round.flags.push_back("mechanism \"update\" records sampling_rate " +
                              Num(e.sampling_rate) + " and steps " + std::to_string(e.steps) +
                              " (expected 1 and 1; recomputed with 1 and 1)");
      }
      const double q = update ? 1.0 : e.sampling_rate;
      const int64_t steps = update ? 1 : e.steps;
      const RdpConversion conversion = ParseRdpConversion(e.conversion);
      RdpAccountant alone;
      alone.Compose(q, e.noise_multiplier, steps);
      round.recomputed_round = alone.Spent(e.delta, conversion).epsilon;
      total.Compose(q, e.noise_multiplier, steps);
      if (total_known) round.recomputed_total = total.Spent(e.delta, conversion).epsilon;

      const double round_diff = RelativeDifference(e.epsilon_round, round.recomputed_round);
      if (round_diff > kEpsilonRelativeTolerance) {
        round.flags.push_back("epsilon_round recorded " + Num(e.epsilon_round) +
                              " but recomputed " + Num(round.recomputed_round) +
                              " (relative difference " + Num(round_diff) + ")");
      }
      if (total_known) {
        const double total_diff = RelativeDifference(e.epsilon_total, round.recomputed_total);
        if (total_diff > kEpsilonRelativeTolerance) {
          round.flags.push_back("epsilon_total recorded " + Num(e.epsilon_total) +
                                " but recomputed " + Num(round.recomputed_total) +
                                " (relative difference " + Num(total_diff) + ")");
        }
        if (round.recomputed_total > e.budget_epsilon) {
          round.flags.push_back("budget exceeded: epsilon_total " +
                                Num(round.recomputed_total) + " > budget_epsilon " +
                                Num(e.budget_epsilon));
        }
      } else {
        round.flags.push_back("epsilon_total cannot be recomputed (an earlier round's "
                              "parameters are unusable)");
      }
    }
    for (const std::string& flag : round.flags) audit.flags.push_back(where + ": " + flag);
    audit.epsilon_total = round.recomputed_total;
    audit.rounds.push_back(std::move(round));
  }
  return audit;
}

json ToJson(const SiteLogAudit& audit) {
  json rounds = json::array();
  for (const TrainedRoundAudit& r : audit.rounds) {
    json round = ToJson(r.recorded);  // the entry's data as the log holds it (privacy_log.h)
    round["line"] = r.line;
    round["recomputed_epsilon_round"] = NumberOrNull(r.recomputed_round);
    round["recomputed_epsilon_total"] = NumberOrNull(r.recomputed_total);
    round["flags"] = r.flags;
    rounds.push_back(std::move(round));
  }
  json declined = json::array();
  for (const DeclinedRoundAudit& d : audit.declined) {
    declined.push_back(
        {{"line", d.line}, {"round", d.recorded.round}, {"reason", d.recorded.reason}});
  }
  return json{{"site", audit.site},
              {"log", audit.path},
              {"entries", audit.entries},
              {"is_coordinator", audit.is_coordinator},
              {"epsilon_total", NumberOrNull(audit.epsilon_total)},
              {"budget_epsilon", audit.budget_epsilon},
              {"delta", audit.delta},
              {"conversion", audit.conversion},
              {"ok", audit.ok()},
              {"flags", audit.flags},
              {"rounds", rounds},
              {"declined", declined}};
}

CrossCheckResult CrossCheckLogs(const std::vector<PrivacyLogEntry>& coordinator_log,
                                const std::vector<std::vector<PrivacyLogEntry>>& site_logs) {
  // What each site says: (site, round) -> digests it sent; (site, round) -> declined reason.
  std::map<std::pair<std::string, int>, std::vector<std::string>> sent;
  std::map<std::pair<std::string, int>, std::string> declined;
  std::set<std::string> sites;
  std::map<std::string, std::map<int64_t, std::string>> line_hashes;  // site -> seq -> hash
  for (const std::vector<PrivacyLogEntry>& log : site_logs) {
    for (const PrivacyLogEntry& entry : log) {
      const std::string what = entry.writer + "'s log: line " + std::to_string(entry.line);
      sites.insert(entry.writer);
      line_hashes[entry.writer][entry.seq] = entry.hash;
      if (entry.event == kEventTrained) {
        const TrainedEvent e = TrainedEventFromJson(entry.data, what);
        sent[{entry.writer, e.round}].push_back(e.update_sha256);
      } else if (entry.event == kEventDeclined) {
        const DeclinedEvent e = DeclinedEventFromJson(entry.data, what);
        declined[{entry.writer, e.round}] = e.reason;
      }
    }
  }

  CrossCheckResult result;
  // What the coordinator says, round by round.
  std::map<std::pair<std::string, int>, std::string> received_by_coordinator;
  std::set<int> coordinator_rounds;
  std::map<std::string, std::set<int>> unchecked;  // site without a log -> rounds used
  for (const PrivacyLogEntry& entry : coordinator_log) {
    if (entry.event != kEventRound) continue;
    const std::string what = "coordinator's log: line " + std::to_string(entry.line);
    const RoundEvent round = RoundEventFromJson(entry.data, what);
    coordinator_rounds.insert(round.round);
    const std::string prefix = "round " + std::to_string(round.round) + ", ";
    std::set<std::string> used(round.contributors.begin(), round.contributors.end());
    for (const auto& [site, digest] : round.received) used.insert(site);
    for (const std::string& site : used) {
      const auto got = round.received.find(site);
      const bool contributor = std::find(round.contributors.begin(), round.contributors.end(),
                                         site) != round.contributors.end();
      if (got == round.received.end()) {
        result.mismatches.push_back(prefix + site +
                                    ": listed as a contributor, but the coordinator recorded no "
                                    "digest received from it (" + what + ")");
        continue;
      }
      received_by_coordinator[{site, round.round}] = got->second;
      if (sites.count(site) == 0) {
        unchecked[site].insert(round.round);
        continue;
      }
      const auto it = sent.find({site, round.round});
      if (it == sent.end()) {
        const auto d = declined.find({site, round.round});
        result.mismatches.push_back(
            prefix + site + ": the coordinator " + (contributor ? "used" : "received") +
            " an update (sha256 " + got->second + "), but " + site +
            "'s log has no \"trained\" entry for this round" +
            (d != declined.end() ? " (it declined the round: " + d->second + ")" : "") + " (" +
            what + ")");
        continue;
      }
      const std::vector<std::string>& digests = it->second;
      if (std::find(digests.begin(), digests.end(), got->second) == digests.end()) {
        std::string said;
        for (const std::string& d : digests) said += (said.empty() ? "" : " or ") + d;
        result.mismatches.push_back(prefix + site + ": the site sent update sha256 " + said +
                                    ", but the coordinator recorded " + got->second +
                                    " as received (" + what + ")");
        continue;
      }
      ++result.matched;
    }
    for (const auto& [site, anchor] : round.log_heads) {
      if (sites.count(site) == 0) continue;  // reported as unchecked above
      const std::map<int64_t, std::string>& hashes = line_hashes[site];
      const auto it = hashes.find(anchor.seq);
      if (it == hashes.end()) {
        result.mismatches.push_back(
            prefix + site + ": with its update the coordinator saw entry seq " +
            std::to_string(anchor.seq) + " of " + site + "'s log (sha256 " + anchor.sha256 +
            "), but the log given has only " + std::to_string(hashes.size()) +
            " entries: entries were removed from its end (" + what + ")");
      } else if (it->second != anchor.sha256) {
        result.mismatches.push_back(
            prefix + site + ": entry seq " + std::to_string(anchor.seq) + " of " + site +
            "'s log (sha256 " + it->second + ") is not the one the coordinator saw with its "
            "update (sha256 " + anchor.sha256 + "): the log was rewritten (" + what + ")");
      } else {
        ++result.anchored;
      }
    }
  }

  // Updates the sites sent that the coordinator never recorded: not failures.
  for (const auto& [key, digests] : sent) {
    const auto& [site, round] = key;
    if (received_by_coordinator.count(key) != 0) continue;
    if (coordinator_rounds.count(round) == 0) {
      result.notes.push_back("round " + std::to_string(round) + ", " + site +
                             ": sent an update, but the coordinator's log has no record of "
                             "round " + std::to_string(round));
    } else {
      result.notes.push_back("round " + std::to_string(round) + ", " + site +
                             ": sent an update (sha256 " + digests.front() +
                             ") that the coordinator did not record as received (lost, late or "
                             "dropped)");
    }
  }
  for (const auto& [site, rounds] : unchecked) {
    std::string list;
    for (const int r : rounds) list += (list.empty() ? "" : ", ") + std::to_string(r);
    result.notes.push_back(site + ": no log given; the coordinator's record of its updates in "
                                  "round(s) " + list + " was not checked");
  }
  return result;
}

}  // namespace fedmed
