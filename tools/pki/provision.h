// Provisioning of a federation: the CA, the coordinator's and every site's certificate and key,
// and ready-to-run configuration files, laid out so that each party gets one directory:
//
//   OUT/ca/ca.pem, ca.key            the federation CA; ca.key (0600) never leaves this machine
//   OUT/ca/crl.pem                   its revocation list, empty at first (tools/pki/revocation.h);
//                                    a copy in OUT/coordinator/crl.pem is the [tls] crl
//   OUT/coordinator/ca.pem, coordinator.pem, coordinator.key, coordinator.toml,
//                   audit.pem, audit.key, status.token (0600: the status page's token,
//                   [status] token_file; the page itself is off until [status] listen is set)
//   OUT/sites/<name>/ca.pem, <name>.pem, <name>.key, site.toml, audit.pem, audit.key
//   OUT/operator/ca.pem, operator.pem, operator.key (0600), coordinator_address: fedmed-admin's
//                   (an operator certificate, CN "<federation>-operator": common/crypto/pki.h)
//
// Copy OUT/coordinator/ to the coordinator and OUT/sites/<name>/ to hospital <name>; the configs
// name their files relative to their own directory, so the directories can be moved as they are.
// The coordinator certificate is valid for TLS server authentication under every name sites may
// dial (DNS and IP subjectAltNames, always including the host of coordinator_address: a name
// mismatch is the most common failed TLS setup). Site certificates are valid for client
// authentication with the site name as CN, which is the site's identity in the federation.
//
// audit.key (Ed25519, PKCS#8 PEM, mode 0600) signs the party's privacy log and audit.pem is its
// certificate from the federation CA: CN = the site's name (the coordinator's: its TLS CN,
// "<federation>-coordinator"), OU "fedmed audit log", ExtendedKeyUsage id-kp-documentSigning
// only, so it is not valid for TLS (see common/crypto/pki.h and common/audit/privacy_log.h).
// They sit at these fixed names beside the party's config; the configs do not name them.
#ifndef FEDMED_TOOLS_PKI_PROVISION_H_
#define FEDMED_TOOLS_PKI_PROVISION_H_

#include <map>
#include <string>
#include <vector>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"

namespace fedmed {

// PneumoniaMNIST (MedMNIST v2), relative to the data root (common/util/data_path.h).
inline constexpr const char* kDefaultDataFile = "medmnist/pneumoniamnist.npz";
// The status page's token file beside coordinator.toml (coordinator/status/status_token.h).
inline constexpr const char* kStatusTokenFile = "status.token";
// fedmed-admin's files in OUT/operator/ (tools/admin/admin_client.h reads them).
inline constexpr const char* kOperatorCertFile = "operator.pem";
inline constexpr const char* kOperatorKeyFile = "operator.key";
inline constexpr const char* kOperatorAddressFile = "coordinator_address";  // host:port + "\n"

struct ProvisionOptions {
  std::string out_dir;                  // new or empty directory
  std::string federation = "fedmed";    // CA CN "<federation>-ca", "<federation>-coordinator"
  std::vector<std::string> site_names;  // non-empty, unique, IsValidSiteName
  std::vector<std::string> coordinator_dns = {"localhost"};  // subjectAltName DNS entries
  std::vector<std::string> coordinator_ips = {"127.0.0.1"};  // subjectAltName IP entries
  std::string coordinator_address = "localhost:7443";  // host:port the sites dial (see SiteConfig)
  int validity_days = 365;       // of the coordinator's and sites' certificates, >= 1
  int ca_validity_days = 3650;   // of the CA, >= validity_days
  // Settings for the written configs. ProvisionFederation fills in: federation, the [tls] files
  // and allowed_sites (= site_names), the listen port (from coordinator_address), and min_sites
  // lowered to the number of sites when it is larger.
  CoordinatorConfig coordinator_template;
  // Fills in: name, coordinator address, the [tls] files, and the shard: 1 of 1 with
  // data.partition "none"; otherwise (one data file split for a demonstration) shard i for the
  // i-th site, of max(data.num_shards, #sites) shards.
  SiteConfig site_template;

  // The templates start with the project's standard data file, kDefaultDataFile, as
  // [evaluation] data and [data] path (looked up under the data root), so that the defaults
  // alone give loadable configs.
  ProvisionOptions();
};

struct ProvisionResult {
  std::string ca_cert;                             // paths, under out_dir
  std::string ca_key;
  std::string coordinator_config;                  // "" if AddSite found none
  std::string status_token_file;                   // ProvisionFederation: status.token
  std::string operator_cert;                       // ProvisionFederation: operator/operator.pem
  std::map<std::string, std::string> site_configs;  // site name -> site.toml
  // AddSite only: the [tls] allowed_sites line coordinator.toml needs for the new site to join
  // (its current allow-list plus the new name); "" when out_dir has no coordinator.toml.
  std::string allowed_sites_line;
  // Audit-log certificates (audit.pem; audit.key lies beside each): the coordinator's ("" if
  // AddSite) and each site's (name -> path).
  std::string coordinator_audit_cert;
  std::map<std::string, std::string> site_audit_certs;
};

// Creates the CA and every party's key, certificate and config under options.out_dir.
// All settings are checked before anything is written. Throws ConfigError for invalid options
// or templates (naming the option, or the config file and key); Error naming the path if
// out_dir is not new or empty (an existing CA is never overwritten; use AddSite) or a file
// cannot be written; CryptoError if OpenSSL fails.
ProvisionResult ProvisionFederation(const ProvisionOptions& options);

// Issues one more site, `name`, from the CA in out_dir (as written by ProvisionFederation):
// OUT/sites/<name>/{ca.pem, <name>.pem, <name>.key, site.toml, audit.pem, audit.key}. The site's
// coordinator address is site_template.coordinator_address, or when that is empty, the one in
// the existing sites' configs. Does not edit coordinator.toml; returns the allow-list line to put
// there.
// A site whose certificate is on OUT/ca/crl.pem (fedmed-pki revoke) is reissued under the same
// name with new keys: its old directory moves to OUT/revoked/<name>-<serial>/.
// Throws ConfigError for an invalid name or template, or when no coordinator address is known;
// Error if OUT/sites/<name> exists and is not revoked, or the CA files cannot be read; CryptoError if the CA key does
// not match the CA certificate or the certificate would outlive the CA.
ProvisionResult AddSite(const std::string& out_dir, const std::string& name,
                        const SiteConfig& site_template, int validity_days);

}  // namespace fedmed

#endif  // FEDMED_TOOLS_PKI_PROVISION_H_
