// The site's signed privacy log (common/audit/privacy_log.h; docs/PRIVACY.md): opening it beside
// the site's keys, and the "trained" entry of a round's spend.
#ifndef FEDMED_SITE_AGENT_SITE_PRIVACY_LOG_H_
#define FEDMED_SITE_AGENT_SITE_PRIVACY_LOG_H_

#include <memory>
#include <string>

#include "common/audit/privacy_log.h"
#include "common/config/site_config.h"
#include "common/privacy/privacy_spend.h"

namespace spdlog {
class logger;
}

namespace fedmed {

class RoundPrivacy;

// Opens <output_dir>/privacy_log.jsonl (kSitePrivacyLogFile) with the audit key and certificate
// that sit beside the site's TLS key (fedmed-pki writes them there), appends its "start" entry
// (the [privacy] settings) and, when `privacy`'s budget changed since the last run, a "budget"
// entry; logs a repaired torn last line. Returns null, with a warning, when the audit key or
// certificate is missing and `privacy` is null (a site without DP need not keep the log).
// Throws ConfigError naming the missing files when `privacy` is set (a DP site must keep it), and
// what PrivacyLogWriter::OpenWithFiles throws.
std::unique_ptr<PrivacyLogWriter> OpenSitePrivacyLog(const SiteConfig& config,
                                                     const RoundPrivacy* privacy,
                                                     spdlog::logger& log);

// The "trained" entry of a round's spend `spend` (as RoundPrivacy::Commit returned it), for the
// update whose encoding has SHA-256 (hex) `update_sha256`; `conversion`: [privacy] conversion.
TrainedEvent TrainedEventFor(int round, const PrivacySpend& spend, const std::string& conversion,
                             std::string update_sha256);

}  // namespace fedmed

#endif  // FEDMED_SITE_AGENT_SITE_PRIVACY_LOG_H_
