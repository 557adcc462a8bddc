// fedmed-site check: what a hospital can verify before go-live, in one report, without joining a
// round (issue 16 item 3; docs/OPERATIONS.md, "Before go-live"). Each check says what it found
// and, when it fails, what to fix:
//
//   config   site.toml loads and validates (every key, every path resolved)
//   data     the train and test splits load with the site's [data] settings: images per class,
//            files skipped and why, the preprocessing the site will announce
//   tls      the certificate chains to the CA the site holds, is valid for client
//            authentication now, its expiry in days; the key matches the certificate
//   privacy  with [privacy] on: the audit key and certificate beside site.toml (they sign the
//            privacy log), and the budget left in the ledger (output_dir/privacy_ledger.json);
//            a budget already spent fails
//   network  the coordinator's name resolves, a TCP connection opens, the TLS handshake (with
//            the site's certificate) completes with the coordinator's certificate verified
//            against the CA and the dialled name, and the coordinator's gRPC server answers
//            HTTP/2 over it; then, with SiteCheckOptions::hello, the authenticated call: the
//            Hello RPC (proto/fedmed.proto), which registers nothing, answers that the
//            coordinator accepts this site's certificate and name ([tls] allowed_sites), with the
//            federation's name, the coordinator's version and its clock; a clock more than 60 s
//            off the coordinator's fails ("clock skew").
//
// Pure C++ over OpenSSL and the project's loaders: no gRPC (the Hello call is handed in by
// fedmed-site, through site_agent/connection.h), no LibTorch.
#ifndef FEDMED_SITE_AGENT_SITE_CHECK_H_
#define FEDMED_SITE_AGENT_SITE_CHECK_H_

#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "common/transport/messages.h"

namespace fedmed {

struct SiteCheck {
  std::string area;    // "config", "data", "tls", "privacy", "network"
  std::string name;    // what was checked, e.g. "certificate chain"
  bool ok = false;
  std::string detail;  // what was found; when !ok, what is wrong and what to fix
};

struct SiteConfig;

struct SiteCheckOptions {
  std::string data_root;            // as fedmed-site --data
  std::time_t now = 0;              // 0 = the current time (tests move it)
  double network_timeout_seconds = 5;
  // The Hello call to the coordinator of `site` within `timeout_seconds`, throwing an exception
  // whose what() says why it failed (fedmed-site passes CoordinatorConnection::Hello). Unset:
  // the authenticated call and the clock skew are not checked.
  std::function<HelloAnswer(const SiteConfig& site, double timeout_seconds)> hello;
};

// Runs every check of the site whose config is `config_path`, in the order above. A config that
// does not load ends the report there (nothing else can be checked). Never throws: every
// failure is a check with ok = false.
std::vector<SiteCheck> CheckSite(const std::string& config_path, const SiteCheckOptions& options);

// The report as text: one line per check, "[ ok ]" or "[FAIL]", area, name, detail; then a
// summary line. Never throws.
std::string FormatSiteChecks(const std::vector<SiteCheck>& checks);

// True when every check passed. Never throws.
bool SiteReady(const std::vector<SiteCheck>& checks);

}  // namespace fedmed

#endif  // FEDMED_SITE_AGENT_SITE_CHECK_H_
