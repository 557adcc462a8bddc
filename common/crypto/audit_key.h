// Ed25519 keys that sign and verify privacy-log entries (common/audit/privacy_log.h) and the
// secure-aggregation key advertisements (common/secagg/protocol.h).
//
// Every writer of a privacy log (a site or the coordinator) holds one Ed25519 key (RFC 8032),
// written by fedmed-pki as audit.key (unencrypted PKCS#8 PEM, mode 0600) beside audit.pem, an
// X.509 certificate for it issued by the federation CA with the writer's name as CN (see
// common/crypto/pki.h). Signatures are pure Ed25519 (no pre-hash) over the message bytes, made
// and checked through OpenSSL 3's EVP interface (EVP_DigestSign / EVP_DigestVerify with a NULL
// digest); a signature is 64 bytes.
//
// Both classes are cheap to copy (copies share one reference-counted EVP_PKEY) and safe to use
// from several threads at once (each call uses its own EVP_MD_CTX; the key is only read).
#ifndef FEDMED_COMMON_CRYPTO_AUDIT_KEY_H_
#define FEDMED_COMMON_CRYPTO_AUDIT_KEY_H_

#include <openssl/evp.h>

#include <ctime>
#include <memory>
#include <string>
#include <string_view>

namespace fedmed {

// Size of an Ed25519 signature in bytes.
inline constexpr size_t kEd25519SignatureSize = 64;

// Checks Ed25519 signatures with the public key of an audit-log certificate.
class AuditVerifyingKey {
 public:
  // The public key of the first certificate in `cert_pem`, with the certificate's CN and
  // validity. Throws CryptoError naming `what` (e.g. "audit certificate 'sites/site-1/audit.pem'")
  // if `cert_pem` holds no PEM certificate or its key is not Ed25519 (e.g. a TLS certificate
  // given by mistake).
  static AuditVerifyingKey FromCertificate(const std::string& cert_pem, const std::string& what);

  // True when `signature` (64 raw bytes) is a valid Ed25519 signature of `message`. Never
  // throws for a bad signature (wrong length, altered bytes, another key): returns false.
  bool Verify(std::string_view message, std::string_view signature) const;

  // The certificate's subject CN: the name of the log's writer.
  const std::string& common_name() const { return common_name_; }
  // The certificate's validity, seconds since the Unix epoch (UTC).
  std::time_t not_before() const { return not_before_; }
  std::time_t not_after() const { return not_after_; }

 private:
  std::shared_ptr<EVP_PKEY> key_;
  std::string common_name_;
  std::time_t not_before_ = 0;
  std::time_t not_after_ = 0;
};

// Makes Ed25519 signatures with a writer's private audit key.
class AuditSigningKey {
 public:
  // Parses `key_pem`, an unencrypted PEM private key (PKCS#8 "BEGIN PRIVATE KEY"), which must
  // be Ed25519. Throws CryptoError naming `what` (e.g. "audit key 'sites/site-1/audit.key'") if
  // it is not a PEM private key or not Ed25519.
  static AuditSigningKey FromPem(const std::string& key_pem, const std::string& what);

  // The 64-byte Ed25519 signature of `message`. Throws CryptoError if OpenSSL fails.
  std::string Sign(std::string_view message) const;

 private:
  std::shared_ptr<EVP_PKEY> key_;
};

}  // namespace fedmed

#endif  // FEDMED_COMMON_CRYPTO_AUDIT_KEY_H_
