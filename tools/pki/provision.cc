#include "tools/pki/provision.h"

#include <arpa/inet.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <system_error>

#include "common/audit/privacy_log.h"
#include "common/config/toml_util.h"
#include "common/crypto/pki.h"
#include "common/util/error.h"
#include "common/util/file_io.h"
#include "coordinator/status/status_token.h"
#include "tools/pki/revocation.h"

namespace fedmed {

namespace fs = std::filesystem;

namespace {

bool IsIpAddress(const std::string& text) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

void AppendUnique(std::vector<std::string>* items, const std::string& item) {
  if (std::find(items->begin(), items->end(), item) == items->end()) items->push_back(item);
}

void CreateDirectory(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create directory '" + dir.string() + "': " + ec.message());
}

// Writes one party's directory: the CA certificate, its TLS certificate and key, its audit-log
// certificate and key, and its config. Returns the path of the audit certificate.
std::string WriteParty(const fs::path& dir, const std::string& stem, const KeyAndCert& party,
                       const KeyAndCert& audit, const std::string& ca_cert_pem,
                       const std::string& config_name, const std::string& config_text) {
  CreateDirectory(dir);
  WriteFileAtomically((dir / "ca.pem").string(), ca_cert_pem, "CA certificate");
  WriteFileAtomically((dir / (stem + ".pem")).string(), party.cert_pem, "TLS certificate");
  WriteFileAtomically((dir / (stem + ".key")).string(), party.key_pem, "TLS key",
                      FilePermissions::kOwnerOnly);
  WriteFileAtomically((dir / kAuditCertFile).string(), audit.cert_pem, "audit certificate");
  WriteFileAtomically((dir / kAuditKeyFile).string(), audit.key_pem, "audit key",
                      FilePermissions::kOwnerOnly);
  WriteFileAtomically((dir / config_name).string(), config_text, "configuration");
  return (dir / kAuditCertFile).string();
}

// An Ed25519 audit-log key and its certificate for the party named `common_name`.
KeyAndCert IssueAudit(const KeyAndCert& ca, const std::string& common_name, int validity_days) {
  return IssueCertificate(ca, AuditCertificateRequest(common_name, validity_days));
}

// The operator's directory (fedmed-admin): the CA certificate, an operator certificate and key
// (CertificateRequest::operator_role), and the address the coordinator is dialled at.
void WriteOperator(const fs::path& dir, const KeyAndCert& ca, const std::string& common_name,
                   const std::string& coordinator_address, int validity_days,
                   ProvisionResult* result) {
  CertificateRequest request;
  request.common_name = common_name;
  request.client_auth = true;
  request.operator_role = true;
  request.validity_days = validity_days;
  const KeyAndCert cert = IssueCertificate(ca, request);
  CreateDirectory(dir);
  WriteFileAtomically((dir / "ca.pem").string(), ca.cert_pem, "CA certificate");
  result->operator_cert = (dir / kOperatorCertFile).string();
  WriteFileAtomically(result->operator_cert, cert.cert_pem, "operator certificate");
  WriteFileAtomically((dir / kOperatorKeyFile).string(), cert.key_pem, "operator key",
                      FilePermissions::kOwnerOnly);
  WriteFileAtomically((dir / kOperatorAddressFile).string(), coordinator_address + "\n",
                      "coordinator address");
}

// The config of site `name` from the template; its files are relative to its directory.
SiteConfig MakeSiteConfig(const SiteConfig& site_template, const fs::path& site_dir,
                          const std::string& name, const std::string& coordinator_address) {
  SiteConfig site = site_template;
  site.config_path = (site_dir / "site.toml").string();
  site.name = name;
  site.coordinator_address = coordinator_address;
  site.tls = TlsFiles{"ca.pem", name + ".pem", name + ".key"};
  return site;
}

KeyAndCert IssueSite(const KeyAndCert& ca, const std::string& name, int validity_days) {
  CertificateRequest request;
  request.common_name = name;
  request.client_auth = true;
  request.server_auth = false;
  request.validity_days = validity_days;
  return IssueCertificate(ca, request);
}

void CheckSiteName(const std::string& name) {
  if (!IsValidSiteName(name)) {
    throw ConfigError("site name " + TomlString(name) + ": expected " + kSiteNameRule);
  }
}

// The coordinator address in the first existing site config under out/sites, or "".
std::string CoordinatorAddressOfExistingSites(const fs::path& sites_dir) {
  std::error_code ec;
  if (!fs::is_directory(sites_dir, ec)) return "";
  std::vector<fs::path> configs;
  for (const fs::directory_entry& entry : fs::directory_iterator(sites_dir, ec)) {
    if (fs::exists(entry.path() / "site.toml")) configs.push_back(entry.path() / "site.toml");
  }
  std::sort(configs.begin(), configs.end());
  return configs.empty() ? "" : LoadSiteConfig(configs.front().string()).coordinator_address;
}

}  // namespace

ProvisionOptions::ProvisionOptions() {
  coordinator_template.eval_data = kDefaultDataFile;
  site_template.data.path = kDefaultDataFile;
}

ProvisionResult ProvisionFederation(const ProvisionOptions& options) {
  // --- check everything before writing anything ---
  if (options.out_dir.empty()) throw ConfigError("output directory: expected a path, got \"\"");
  // The federation name prefixes the CNs "<federation>-ca" and "<federation>-coordinator",
  // which X.509 limits to 64 characters.
  if (options.federation.empty() || options.federation.size() > 52) {
    throw ConfigError("federation name " + TomlString(options.federation) +
                      ": expected 1 to 52 characters");
  }
  if (options.site_names.empty()) throw ConfigError("sites: expected at least one site name");
  std::set<std::string> seen;
  for (const std::string& name : options.site_names) {
    CheckSiteName(name);
    if (!seen.insert(name).second) {
      throw ConfigError("sites: expected unique site names, got " + TomlString(name) + " twice");
    }
  }
  std::string dial_host;
  int port = 0;
  if (!ParseHostPort(options.coordinator_address, &dial_host, &port)) {
    throw ConfigError("coordinator address " + TomlString(options.coordinator_address) +
                      ": expected host:port with a port between 0 and 65535");
  }
  if (options.validity_days < 1 || options.ca_validity_days < options.validity_days) {
    throw ConfigError("validity: expected 1 <= certificate days (" +
                      std::to_string(options.validity_days) + ") <= CA days (" +
                      std::to_string(options.ca_validity_days) + ")");
  }

  const fs::path out(options.out_dir);
  const fs::path ca_dir = out / "ca";
  const fs::path coordinator_dir = out / "coordinator";
  for (const fs::path& ca_file : {ca_dir / "ca.pem", ca_dir / "ca.key"}) {
    if (fs::exists(ca_file)) {
      throw Error(ca_file.string() +
                  ": a federation CA already exists here and is never overwritten; add sites "
                  "with `fedmed-pki add-site`, or provision into a new directory");
    }
  }
  std::error_code ec;
  if (fs::exists(out) && !(fs::is_directory(out) && fs::is_empty(out, ec))) {
    throw Error(out.string() + ": not a new or empty directory; fedmed-pki never overwrites files");
  }

  CoordinatorConfig coordinator = options.coordinator_template;
  coordinator.config_path = (coordinator_dir / "coordinator.toml").string();
  coordinator.federation = options.federation;
  coordinator.tls = TlsFiles{"ca.pem", "coordinator.pem", "coordinator.key"};
  coordinator.allowed_sites = options.site_names;
  coordinator.crl = "crl.pem";  // the empty CRL written below (revocation.h)
  coordinator.min_sites =
      std::min(coordinator.min_sites, static_cast<int>(options.site_names.size()));
  std::string listen_host;
  int template_port = 0;
  if (!ParseHostPort(coordinator.listen_address, &listen_host, &template_port)) {
    ThrowBadSetting(coordinator.config_path, "coordinator", "listen", "host:port",
                    TomlString(coordinator.listen_address));
  }
  if (listen_host.find(':') != std::string::npos) listen_host = "[" + listen_host + "]";
  coordinator.listen_address = listen_host + ":" + std::to_string(port);
  // The status page's token (written below); [status] listen stays as the template has it.
  if (coordinator.status.token_file.empty()) coordinator.status.token_file = kStatusTokenFile;
  ValidateCoordinatorConfig(coordinator);

  const int num_sites = static_cast<int>(options.site_names.size());
  std::vector<SiteConfig> sites;
  for (int i = 0; i < num_sites; ++i) {
    const std::string& name = options.site_names[i];
    SiteConfig site = MakeSiteConfig(options.site_template, out / "sites" / name, name,
                                     options.coordinator_address);
    const bool split = site.data.partition != "none";
    site.data.shard = split ? i + 1 : 1;
    site.data.num_shards = split ? std::max(site.data.num_shards, num_sites) : 1;
    ValidateSiteConfig(site);
    sites.push_back(site);
  }

  CertificateRequest coordinator_request;
  coordinator_request.common_name = options.federation + "-coordinator";
  coordinator_request.dns_names = options.coordinator_dns;
  coordinator_request.ip_addresses = options.coordinator_ips;
  AppendUnique(IsIpAddress(dial_host) ? &coordinator_request.ip_addresses
                                      : &coordinator_request.dns_names,
               dial_host);
  coordinator_request.server_auth = true;
  coordinator_request.client_auth = false;
  coordinator_request.validity_days = options.validity_days;

  // --- issue and write ---
  const KeyAndCert ca = CreateCa(options.federation + "-ca", options.ca_validity_days);
  const KeyAndCert coordinator_cert = IssueCertificate(ca, coordinator_request);
  CreateDirectory(ca_dir);
  fs::permissions(ca_dir, fs::perms::owner_all, ec);  // 0700: the CA key stays with its owner
  if (ec) throw Error("cannot set mode 0700 on '" + ca_dir.string() + "': " + ec.message());
  ProvisionResult result;
  result.ca_cert = (ca_dir / "ca.pem").string();
  result.ca_key = (ca_dir / "ca.key").string();
  WriteFileAtomically(result.ca_cert, ca.cert_pem, "federation CA certificate");
  WriteFileAtomically(result.ca_key, ca.key_pem, "federation CA key",
                      FilePermissions::kOwnerOnly);
  result.coordinator_audit_cert = WriteParty(
      coordinator_dir, "coordinator", coordinator_cert,
      IssueAudit(ca, coordinator_request.common_name, options.validity_days), ca.cert_pem,
      "coordinator.toml", RenderCoordinatorConfig(coordinator));
  result.coordinator_config = coordinator.config_path;
  WriteCrl(out.string(), ca, {}, 1, kDefaultCrlDays);
  result.status_token_file = (coordinator_dir / kStatusTokenFile).string();
  WriteStatusTokenFile(result.status_token_file);
  WriteOperator(out / "operator", ca, options.federation + "-operator",
                options.coordinator_address, options.validity_days, &result);
  for (const SiteConfig& site : sites) {
    result.site_audit_certs[site.name] = WriteParty(
        fs::path(site.config_path).parent_path(), site.name,
        IssueSite(ca, site.name, options.validity_days),
        IssueAudit(ca, site.name, options.validity_days), ca.cert_pem, "site.toml",
        RenderSiteConfig(site));
    result.site_configs[site.name] = site.config_path;
  }
  return result;
}

ProvisionResult AddSite(const std::string& out_dir, const std::string& name,
                        const SiteConfig& site_template, int validity_days) {
  CheckSiteName(name);
  const fs::path out(out_dir);
  const fs::path site_dir = out / "sites" / name;
  if (fs::exists(site_dir)) {
    // A revoked site is reissued under its name: its old directory is kept aside.
    const fs::path old_cert = site_dir / (name + ".pem");
    const std::string old_pem =
        fs::exists(old_cert) ? ReadFile(old_cert.string(), "site certificate") : "";
    if (old_pem.empty() || !IsRevokedInFederation(out_dir, old_pem)) {
      throw Error(site_dir.string() + ": site " + TomlString(name) +
                  " already exists; choose another name, or revoke it first (fedmed-pki "
                  "revoke) to reissue it under the same name");
    }
    const fs::path aside = out / "revoked" / (name + "-" + CertificateSerial(old_pem));
    CreateDirectory(aside.parent_path());
    std::error_code ec;
    fs::rename(site_dir, aside, ec);
    if (ec) {
      throw Error("cannot move the revoked site's directory " + site_dir.string() + " to " +
                  aside.string() + ": " + ec.message());
    }
  }
  ProvisionResult result;
  result.ca_cert = (out / "ca" / "ca.pem").string();
  result.ca_key = (out / "ca" / "ca.key").string();
  const KeyAndCert ca{ReadFile(result.ca_key, "federation CA key"),
                      ReadFile(result.ca_cert, "federation CA certificate")};
  CheckKeyMatchesCertificate(ca.key_pem, ca.cert_pem, result.ca_key);

  std::string address = site_template.coordinator_address;
  if (address.empty()) address = CoordinatorAddressOfExistingSites(out / "sites");
  if (address.empty()) {
    throw ConfigError("site " + TomlString(name) + ": no coordinator address given and no site "
                      "config under " + (out / "sites").string() + " to take it from");
  }
  const SiteConfig site = MakeSiteConfig(site_template, site_dir, name, address);
  ValidateSiteConfig(site);

  const fs::path coordinator_config = out / "coordinator" / "coordinator.toml";
  if (fs::exists(coordinator_config)) {
    result.coordinator_config = coordinator_config.string();
    std::vector<std::string> allowed =
        LoadCoordinatorConfig(result.coordinator_config).allowed_sites;
    AppendUnique(&allowed, name);
    result.allowed_sites_line = "allowed_sites = " + TomlStringArray(allowed);
  }

  result.site_audit_certs[name] =
      WriteParty(site_dir, name, IssueSite(ca, name, validity_days),
                 IssueAudit(ca, name, validity_days), ca.cert_pem, "site.toml",
                 RenderSiteConfig(site));
  result.site_configs[name] = site.config_path;
  return result;
}

}  // namespace fedmed
