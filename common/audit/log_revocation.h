// Privacy logs signed by a revoked audit-log certificate (fedmed-pki revoke puts a site's audit
// certificate on the federation CA's CRL together with its TLS certificate; common/crypto/crl.h).
//
// A revoked key may be in someone else's hands: entries it signed before its revocation time stay
// valid (they were written while the key was trusted), entries dated after it are not. The check
// runs after VerifyLog (privacy_log.h) has accepted the log's signatures and chain: each entry's
// "time" is then the writer's own signed claim. (A thief could backdate entries; the
// coordinator's audit log, which records the log heads sites sent with each update, and
// fedmed-audit cross-check are what bound that.)
#ifndef FEDMED_COMMON_AUDIT_LOG_REVOCATION_H_
#define FEDMED_COMMON_AUDIT_LOG_REVOCATION_H_

#include <string>

#include "common/audit/privacy_log.h"
#include "common/crypto/crl.h"

namespace fedmed {

// Checks the log at `path`, already verified under `cert_pem` (VerifyLog), against `crl`: when
// the certificate is on it, the first entry whose time is later than the revocation time makes
// ok = false, with first_bad_line and a `what` that says "revoked", names the certificate
// (CN, serial), the entry's time and the revocation's time and reason. Entries up to the
// revocation time, and every entry of a certificate not on `crl`, pass. Returns `verified`
// unchanged when it is already a failure. Throws Error naming the path if the log cannot be
// read, CryptoError if `cert_pem` holds no certificate.
LogVerification CheckRevokedSigner(const LogVerification& verified, const std::string& path,
                                   const std::string& cert_pem, const CrlContents& crl);

}  // namespace fedmed

#endif  // FEDMED_COMMON_AUDIT_LOG_REVOCATION_H_
