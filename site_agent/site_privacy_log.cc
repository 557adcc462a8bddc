#include "site_agent/site_privacy_log.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "common/util/error.h"
#include "site_agent/round_privacy.h"

namespace fedmed {

std::unique_ptr<PrivacyLogWriter> OpenSitePrivacyLog(const SiteConfig& config,
                                                     const RoundPrivacy* privacy,
                                                     spdlog::logger& log) {
  const std::filesystem::path dir = std::filesystem::path(config.tls.key).parent_path();
  const std::filesystem::path key = dir / kAuditKeyFile, cert = dir / kAuditCertFile;
  if (!std::filesystem::exists(key) || !std::filesystem::exists(cert)) {
    if (privacy) {
      throw ConfigError(config.config_path + ": [privacy] mode \"" + config.privacy.mode +
                        "\" needs the site's signed privacy log, but its audit key " +
                        key.string() + " or certificate " + cert.string() +
                        " is missing (provision the site again with fedmed-pki add-site)");
    }
    log.warn("no audit key ({}): this site keeps no signed privacy log", key.string());
    return nullptr;
  }
  std::unique_ptr<PrivacyLogWriter> writer = PrivacyLogWriter::OpenWithFiles(
      config.output_dir + "/" + kSitePrivacyLogFile, key.string(), cert.string());
  if (writer->recovery()) {
    log.warn("privacy log {}: repaired a torn last line after a crash ({} bytes dropped)",
             writer->path(), writer->recovery()->dropped_bytes);
  }
  const SitePrivacyConfig& p = config.privacy;
  writer->Append(kEventStart, {{"role", "site"},
                                {"privacy_mode", p.mode},
                                {"budget_epsilon", p.budget_epsilon},
                                {"delta", p.delta},
                                {"conversion", p.conversion},
                                {"clipping_norm", p.clipping_norm},
                                {"noise_multiplier", p.noise_multiplier},
                                {"target_epsilon", p.target_epsilon}});
  if (privacy && privacy->budget().previous_budget_epsilon() > 0 &&
      privacy->budget().previous_budget_epsilon() != p.budget_epsilon) {
    BudgetEvent e;
    e.budget_epsilon = p.budget_epsilon;
    e.previous_budget_epsilon = privacy->budget().previous_budget_epsilon();
    e.delta = p.delta;
    e.epsilon_spent = privacy->budget().spent();
    writer->AppendBudget(e);
    log.warn("privacy: the budget changed from {} to {} (recorded in the privacy log)",
             e.previous_budget_epsilon, e.budget_epsilon);
  }
  log.info("privacy log: {} (signed by {}, {} entries)", writer->path(), writer->writer(),
           writer->entries());
  return writer;
}

TrainedEvent TrainedEventFor(int round, const PrivacySpend& spend, const std::string& conversion,
                             std::string update_sha256) {
  TrainedEvent e;
  e.round = round;
  e.mechanism = spend.mechanism.mode;
  e.clipping_norm = spend.mechanism.clipping_norm;
  e.noise_multiplier = spend.mechanism.noise_multiplier;
  e.sampling_rate = spend.mechanism.sampling_rate;
  e.steps = spend.mechanism.steps;
  e.delta = spend.delta;
  e.conversion = conversion;
  e.epsilon_round = spend.epsilon_round;
  e.epsilon_total = spend.epsilon_total;
  e.budget_epsilon = spend.budget_epsilon;
  e.update_sha256 = std::move(update_sha256);
  return e;
}

}  // namespace fedmed
