// Certificate revocation for the federation: an X.509 v2 certificate revocation list (CRL,
// RFC 5280 section 5) signed by the federation CA, and a watcher that keeps the coordinator's
// copy of it current without a restart.
//
// fedmed-pki revoke writes the CRL (CreateCrl); the coordinator reads it from [tls] crl
// (CrlWatcher) and refuses a revoked certificate in the TLS handshake and at every call
// (common/transport/client_auth.h); fedmed-audit refuses privacy-log entries that a revoked
// audit-log certificate signed after its revocation (common/audit/privacy_log.h).
//
// Entries are looked up by the certificate's serial number (fedmed's serials are random 128-bit
// numbers, so the serial names one issuance: a site re-issued under the same name after its
// revocation has a new serial and is not revoked). Everything goes through OpenSSL 3's X509_CRL
// API; no gRPC here.
#ifndef FEDMED_COMMON_CRYPTO_CRL_H_
#define FEDMED_COMMON_CRYPTO_CRL_H_

#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/crypto/pki.h"
#include "common/util/mutex.h"

namespace fedmed {

// One revoked certificate of a CRL.
struct RevokedCertificate {
  std::string serial;           // uppercase hex, no leading zeros (CertificateSerial)
  std::time_t revoked_at = 0;   // revocationDate, seconds since the Unix epoch (UTC)
  std::string reason;           // CRLReason name (RFC 5280 5.3.1), "" when the entry has none
  std::string common_name;      // CN of the certificate; not in the CRL itself ("" when read)
};

// A verified CRL.
struct CrlContents {
  std::time_t this_update = 0;  // thisUpdate (seconds since the Unix epoch, UTC)
  std::time_t next_update = 0;  // nextUpdate; when it has passed, a newer CRL is due
  int64_t number = 0;           // the cRLNumber extension, 0 when absent
  std::vector<RevokedCertificate> revoked;

  // The entry for `serial` (as CertificateSerial writes it), or nullptr.
  const RevokedCertificate* Find(const std::string& serial) const;
};

// The CRLReason names fedmed-pki revoke accepts (RFC 5280 5.3.1, without certificateHold and
// removeFromCRL, which only make sense for suspensions): unspecified, keyCompromise,
// cACompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn.
const std::vector<std::string>& RevocationReasons();

// The serial number of the first certificate in `cert_pem` as uppercase hex without leading
// zeros (OpenSSL's BN_bn2hex). Throws CryptoError if `cert_pem` holds no certificate.
std::string CertificateSerial(const std::string& cert_pem);

// Creates a CRL v2 signed by `ca` (ECDSA-with-SHA256) listing `revoked` (common_name is not
// stored), with thisUpdate = now, nextUpdate = now + next_update_days, the cRLNumber `number`
// and the CA's AuthorityKeyIdentifier. Returns it as PEM.
// Throws Error if next_update_days < 1, a serial is not hex or a reason not in
// RevocationReasons(); CryptoError if the CA key or certificate cannot be parsed or OpenSSL fails.
std::string CreateCrl(const KeyAndCert& ca, const std::vector<RevokedCertificate>& revoked,
                      int64_t number, int next_update_days);

// Parses the CRL in `crl_pem` and checks that the federation CA in `ca_pem` issued it (issuer
// name) and signed it (X509_CRL_verify). Throws CryptoError naming `what` (e.g. the file) and
// the problem when it is not a PEM CRL, another CA's, or its signature does not verify.
CrlContents ReadCrl(const std::string& crl_pem, const std::string& ca_pem,
                    const std::string& what);

// The coordinator's view of the CRL file [tls] crl: read and verified at construction, then
// re-read whenever the file changes (its modification time, inode or size; looked at on a
// Current() call at most once a second) or Reload() is called (SIGHUP). A file that cannot be
// read or verified later keeps the last good CRL in force (and is reported through `report`);
// a CRL past its nextUpdate stays in force and is reported once per load.
// Thread-safe.
class CrlWatcher {
 public:
  // `report(is_error, message)` receives one line per load and per problem (from the thread
  // that noticed the change). Throws Error / CryptoError naming `path` when the file cannot be
  // read or verified now: a coordinator does not start with a broken [tls] crl.
  CrlWatcher(std::string path, std::string ca_pem,
             std::function<void(bool is_error, const std::string& message)> report);

  // The CRL in force, re-read first if the file changed (checked at most once a second).
  // Never throws.
  std::shared_ptr<const CrlContents> Current() EXCLUDES(mu_);
  // Re-reads the file now if it changed (a SIGHUP). Never throws.
  void Reload() EXCLUDES(mu_);

  const std::string& path() const { return path_; }

 private:
  struct FileStamp {
    int64_t mtime_ns = 0, inode = 0, size = -1;
    bool operator==(const FileStamp& o) const {
      return mtime_ns == o.mtime_ns && inode == o.inode && size == o.size;
    }
  };
  FileStamp Stamp() const;
  void LoadIfChanged(bool initial) EXCLUDES(mu_);

  const std::string path_;
  const std::string ca_pem_;
  std::function<void(bool, const std::string&)> report_;
  Mutex mu_;
  std::shared_ptr<const CrlContents> current_ GUARDED_BY(mu_);
  FileStamp stamp_ GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point last_check_ GUARDED_BY(mu_);
};

}  // namespace fedmed

#endif  // FEDMED_COMMON_CRYPTO_CRL_H_
