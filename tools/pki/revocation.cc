#include "tools/pki/revocation.h"

#include <algorithm>
#include <filesystem>

#include "common/config/site_config.h"
#include "common/config/toml_util.h"
#include "common/util/error.h"
#include "common/util/file_io.h"
#include "tools/pki/provision.h"

namespace fedmed {

namespace fs = std::filesystem;

namespace {

KeyAndCert ReadCa(const fs::path& out) {
  const std::string key_path = (out / "ca" / "ca.key").string();
  KeyAndCert ca{ReadFile(key_path, "federation CA key"),
                ReadFile((out / "ca" / "ca.pem").string(), "federation CA certificate")};
  CheckKeyMatchesCertificate(ca.key_pem, ca.cert_pem, key_path);
  return ca;
}

// The current OUT/ca/crl.pem, verified against the CA; an empty list when there is none yet
// (a federation provisioned before fedmed-pki wrote CRLs).
CrlContents ReadCurrentCrl(const fs::path& out, const std::string& ca_pem) {
  const fs::path path = out / "ca" / "crl.pem";
  if (!fs::exists(path)) return CrlContents{};
  return ReadCrl(ReadFile(path.string(), "federation CRL"), ca_pem, path.string());
}

void CheckCrlDays(int crl_days) {
  if (crl_days < 1) {
    throw ConfigError("--crl-days: expected at least 1 day, not " + std::to_string(crl_days));
  }
}

}  // namespace

RevocationResult WriteCrl(const std::string& out_dir, const KeyAndCert& ca,
                          const std::vector<RevokedCertificate>& revoked, int64_t number,
                          int crl_days) {
  const fs::path out(out_dir);
  const std::string pem = CreateCrl(ca, revoked, number, crl_days);
  RevocationResult result;
  result.crl = (out / "ca" / "crl.pem").string();
  WriteFileAtomically(result.crl, pem, "federation CRL");
  if (fs::is_directory(out / "coordinator")) {
    result.coordinator_crl = (out / "coordinator" / "crl.pem").string();
    WriteFileAtomically(result.coordinator_crl, pem, "coordinator's copy of the CRL");
  }
  result.number = number;
  result.contents = ReadCrl(pem, ca.cert_pem, result.crl);
  return result;
}

namespace {

void CheckReason(const std::string& reason) {
  const std::vector<std::string>& reasons = RevocationReasons();
  if (std::find(reasons.begin(), reasons.end(), reason) == reasons.end()) {
    std::string list;
    for (const std::string& r : reasons) list += (list.empty() ? "" : ", ") + r;
    throw ConfigError("--reason " + TomlString(reason) + ": expected one of " + list +
                      " (RFC 5280 CRLReason)");
  }
}

// Adds the certificates in `files` (of `party`, for messages; `already` is said when all of
// them are on the CRL) to the CRL of out_dir.
RevocationResult RevokeFiles(const std::string& out_dir, const std::vector<fs::path>& files,
                             const std::string& party, const std::string& already,
                             const std::string& reason, int crl_days) {
  CheckReason(reason);
  CheckCrlDays(crl_days);
  const fs::path out(out_dir);
  const KeyAndCert ca = ReadCa(out);
  const CrlContents crl = ReadCurrentCrl(out, ca.cert_pem);

  std::vector<RevokedCertificate> added;
  const std::time_t now = std::time(nullptr);
  for (const fs::path& path : files) {
    const std::string cert = ReadFile(path.string(), party + " certificate");
    RevokedCertificate entry;
    entry.serial = CertificateSerial(cert);
    entry.revoked_at = now;
    entry.reason = reason;
    entry.common_name = InspectCertificate(cert).common_name;
    if (crl.Find(entry.serial) != nullptr) continue;
    added.push_back(entry);
  }
  if (added.empty()) throw Error(party + ": " + already);
  std::vector<RevokedCertificate> all = crl.revoked;
  all.insert(all.end(), added.begin(), added.end());
  RevocationResult result = WriteCrl(out_dir, ca, all, crl.number + 1, crl_days);
  result.added = std::move(added);
  return result;
}

}  // namespace

RevocationResult RevokeSite(const std::string& out_dir, const std::string& name,
                            const std::string& reason, int crl_days) {
  if (!IsValidSiteName(name)) {
    throw ConfigError("site name " + TomlString(name) + ": expected " + kSiteNameRule);
  }
  const fs::path site_dir = fs::path(out_dir) / "sites" / name;
  return RevokeFiles(out_dir, {site_dir / (name + ".pem"), site_dir / "audit.pem"},
                     "site " + name,
                     "its certificates in " + site_dir.string() +
                         " are already revoked (reissue it with fedmed-pki add-site)",
                     reason, crl_days);
}

RevocationResult RevokeOperator(const std::string& out_dir, const std::string& reason,
                                int crl_days) {
  const fs::path dir = fs::path(out_dir) / "operator";
  return RevokeFiles(out_dir, {dir / kOperatorCertFile}, "operator",
                     "its certificate in " + dir.string() + " is already revoked", reason,
                     crl_days);
}

RevocationResult RenewCrl(const std::string& out_dir, int crl_days) {
  CheckCrlDays(crl_days);
  const KeyAndCert ca = ReadCa(out_dir);
  const CrlContents crl = ReadCurrentCrl(out_dir, ca.cert_pem);
  return WriteCrl(out_dir, ca, crl.revoked, crl.number + 1, crl_days);
}

bool IsRevokedInFederation(const std::string& out_dir, const std::string& cert_pem) {
  const fs::path out(out_dir);
  const std::string ca_pem =
      ReadFile((out / "ca" / "ca.pem").string(), "federation CA certificate");
  return ReadCurrentCrl(out, ca_pem).Find(CertificateSerial(cert_pem)) != nullptr;
}

}  // namespace fedmed
