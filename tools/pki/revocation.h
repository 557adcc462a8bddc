// Revocation in a federation directory written by ProvisionFederation (provision.h):
//
//   OUT/ca/crl.pem            the federation CA's certificate revocation list (CRL v2, RFC 5280
//                             section 5, signed by ca.key; common/crypto/crl.h)
//   OUT/coordinator/crl.pem   a copy for the coordinator ([tls] crl = "crl.pem" in the
//                             coordinator.toml that fedmed-pki init writes)
//   OUT/revoked/<name>-<serial>/  a revoked site's directory, moved aside when add-site reissues it
//
// fedmed-pki init writes an empty CRL; `fedmed-pki revoke` adds a site's TLS certificate and its
// audit-log certificate (a stolen machine holds both keys), or with --operator the operator's; `fedmed-pki crl` re-signs the list
// with a new nextUpdate. Each write replaces both copies atomically (WriteFileAtomically), so a
// running coordinator that watches OUT/coordinator/crl.pem sees the old or the new list, never a
// torn one. Where the coordinator runs on another machine, copy OUT/ca/crl.pem over its [tls] crl
// file after each change.
#ifndef FEDMED_TOOLS_PKI_REVOCATION_H_
#define FEDMED_TOOLS_PKI_REVOCATION_H_

#include <string>
#include <vector>

#include "common/crypto/crl.h"
#include "common/crypto/pki.h"

namespace fedmed {

// Days until a CRL's nextUpdate, unless --crl-days says otherwise.
inline constexpr int kDefaultCrlDays = 30;

struct RevocationResult {
  std::string crl;               // OUT/ca/crl.pem
  std::string coordinator_crl;   // OUT/coordinator/crl.pem; "" when OUT/coordinator is absent
  int64_t number = 0;            // the new CRL's cRLNumber
  std::vector<RevokedCertificate> added;  // with common_name set; empty for WriteCrl
  CrlContents contents;          // the new CRL
};

// Writes the CRL of `revoked` (numbered `number`, next update in `crl_days`) signed by `ca` to
// OUT/ca/crl.pem and, when OUT/coordinator exists, OUT/coordinator/crl.pem.
// Throws as CreateCrl, and Error naming the file when one cannot be written.
RevocationResult WriteCrl(const std::string& out_dir, const KeyAndCert& ca,
                          const std::vector<RevokedCertificate>& revoked, int64_t number,
                          int crl_days);

// Revokes site `name` of the federation in `out_dir`: the serials of
// OUT/sites/<name>/<name>.pem and OUT/sites/<name>/audit.pem join the entries of the current
// OUT/ca/crl.pem (revoked now, with `reason`, one of RevocationReasons()), and the CRL is written
// with the next number. A certificate already on the list keeps its entry.
// Throws ConfigError for an invalid name or reason, or crl_days < 1; Error when the site's
// certificates or the CA files cannot be read, or every certificate of the site is already
// revoked; CryptoError when the existing CRL is not the CA's.
RevocationResult RevokeSite(const std::string& out_dir, const std::string& name,
                            const std::string& reason, int crl_days);

// Revokes the operator certificate OUT/operator/operator.pem (fedmed-admin's) the same way.
// Throws as RevokeSite. (fedmed-pki has no command yet that issues a new operator certificate.)
RevocationResult RevokeOperator(const std::string& out_dir, const std::string& reason,
                                int crl_days);

// Re-signs the current OUT/ca/crl.pem with the same entries, the next number and a nextUpdate
// `crl_days` from now (run it before the CRL's nextUpdate). Throws as RevokeSite.
RevocationResult RenewCrl(const std::string& out_dir, int crl_days);

// Whether `cert_pem` is on OUT/ca/crl.pem (false when there is no CRL). Throws CryptoError when
// the CRL is not the CA's.
bool IsRevokedInFederation(const std::string& out_dir, const std::string& cert_pem);

}  // namespace fedmed

#endif  // FEDMED_TOOLS_PKI_REVOCATION_H_
