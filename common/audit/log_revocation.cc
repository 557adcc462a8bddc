#include "common/audit/log_revocation.h"

#include "common/crypto/pki.h"

namespace fedmed {

LogVerification CheckRevokedSigner(const LogVerification& verified, const std::string& path,
                                   const std::string& cert_pem, const CrlContents& crl) {
  if (!verified.ok) return verified;
  const std::string serial = CertificateSerial(cert_pem);
  const RevokedCertificate* revoked = crl.Find(serial);
  if (revoked == nullptr) return verified;
  const std::string cn = InspectCertificate(cert_pem).common_name;
  LogVerification result = verified;
  for (const PrivacyLogEntry& entry : ReadLog(path)) {
    const std::optional<std::time_t> t = ParseLogTime(entry.time);
    // ParseLogTime drops the milliseconds: an entry in the revocation's own second is later
    // than it unless it is at exactly .000.
    const bool after = !t.has_value() || *t > revoked->revoked_at ||
                       (*t == revoked->revoked_at && entry.time.find(".000Z") == std::string::npos);
    if (!after) continue;
    result.ok = false;
    result.entries = entry.line - 1;
    result.first_bad_line = entry.line;
    result.what = "signed at " + entry.time + " by audit certificate CN=" + cn + " (serial " +
                  serial + "), which was revoked on " + FormatUtc(revoked->revoked_at) +
                  (revoked->reason.empty() ? "" : " (" + revoked->reason + ")") +
                  ": entries after the revocation are not trusted";
    return result;
  }
  return result;
}

}  // namespace fedmed
