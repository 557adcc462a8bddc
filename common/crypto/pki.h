// The federation's public-key infrastructure: one CA, one certificate for the coordinator, one per
// site. Every connection is mutual TLS; a site's identity is the common name (CN) of its
// certificate, which the coordinator checks against its allow-list.
//
// Keys are ECDSA over NIST P-256 (secp256r1 / prime256v1). P-256 is the one curve every TLS 1.3
// stack fedmed meets supports for certificates: gRPC's BoringSSL and OpenSSL builds, Java, Go and
// the hospital proxies that inspect traffic (RFC 8446 §9.1 makes ecdsa_secp256r1_sha256 mandatory
// to implement). Its keys and signatures are small and fast, unlike RSA-3072 at the same
// strength (128 bits).
//
// Certificates are X.509 v3 (RFC 5280) signed with ECDSA-with-SHA256, with a random 128-bit
// serial number, SubjectKeyIdentifier and AuthorityKeyIdentifier, BasicConstraints (CA:TRUE,
// critical, on the CA; CA:FALSE on the others), a critical KeyUsage (keyCertSign + cRLSign on the
// CA, digitalSignature on the others) and an ExtendedKeyUsage on the others: serverAuth for the
// coordinator, clientAuth for sites. Names the coordinator is reached by go in the
// SubjectAltName extension (DNS names and IPv4/IPv6 addresses), which is what TLS clients check.
//
// Audit-log certificates (fedmed-pki writes one per party, beside its TLS files) are the one
// exception to P-256: they certify an Ed25519 key (RFC 8032) that signs the party's privacy log
// (common/audit/privacy_log.h), carry the subject OU "fedmed audit log", a critical KeyUsage
// digitalSignature + nonRepudiation and the ExtendedKeyUsage id-kp-documentSigning
// (1.3.6.1.5.5.7.3.36, RFC 9336) and nothing else, so they can never pass as TLS certificates.
//
// Operator certificates (fedmed-pki init writes one, DIR/operator/, for fedmed-admin) are P-256
// TLS client certificates with two role markers: the subject OU "fedmed operator"
// (kOperatorOrganizationalUnit) and, beside clientAuth, the ExtendedKeyUsage kOperatorOid. Only
// the CA's holder can put either into a certificate. VerifyPeerCertificate refuses a certificate
// with either marker as a site (kClientAuth), and one without both as an operator (kOperator), so
// a site's certificate can never administer the federation and an operator's can never train.
//
// Keys and certificates travel as PEM text (unencrypted PKCS#8 private keys; protect them with
// file permissions: WriteFileAtomically with FilePermissions::kOwnerOnly, common/util/file_io.h).
// Everything goes through the OpenSSL 3 library API.
#ifndef FEDMED_COMMON_CRYPTO_PKI_H_
#define FEDMED_COMMON_CRYPTO_PKI_H_

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <vector>


namespace fedmed {

// A private key and its certificate, both PEM.
struct KeyAndCert {
  std::string key_pem;
  std::string cert_pem;
};

// Creates a self-signed federation CA named CN=`common_name`, valid from 5 minutes ago (to absorb
// clock skew between machines) for `validity_days` days.
// Throws Error if common_name is empty or validity_days < 1, CryptoError if OpenSSL fails
// (e.g. a CN longer than 64 characters).
KeyAndCert CreateCa(const std::string& common_name, int validity_days);

// The key a certificate is issued for.
enum class CertificateKeyType {
  kEcdsaP256,  // ECDSA over P-256: every TLS certificate
  kEd25519,    // Ed25519 (RFC 8032): audit-log signing keys only
};

// The ExtendedKeyUsage of audit-log certificates: id-kp-documentSigning (RFC 9336).
inline constexpr const char* kDocumentSigningOid = "1.3.6.1.5.5.7.3.36";

// The ExtendedKeyUsage of operator certificates (fedmed-admin): an OID under the UUID arc 2.25
// (ITU-T X.667 / RFC 4122 section 1: an OID from a random UUID, unique without registration).
inline constexpr const char* kOperatorOid = "2.25.31034729592642097293936983788914872069";
// The subject OU of operator certificates.
inline constexpr const char* kOperatorOrganizationalUnit = "fedmed operator";

// What IssueCertificate puts into a certificate.
struct CertificateRequest {
  std::string common_name;                // the party's identity; a site's name
  std::vector<std::string> dns_names;     // SubjectAltName DNS entries
  std::vector<std::string> ip_addresses;  // SubjectAltName IP entries, IPv4 or IPv6 text
  bool server_auth = false;               // ExtendedKeyUsage serverAuth (the coordinator)
  bool client_auth = true;                // ExtendedKeyUsage clientAuth (sites)
  // ExtendedKeyUsage id-kp-documentSigning and KeyUsage digitalSignature + nonRepudiation: an
  // audit-log certificate. Excludes server_auth and client_auth (set both to false).
  bool document_signing = false;
  // An operator certificate: ExtendedKeyUsage clientAuth + kOperatorOid and the subject OU
  // kOperatorOrganizationalUnit (set when organizational_unit is empty). Requires client_auth
  // and no server_auth.
  bool operator_role = false;
  CertificateKeyType key_type = CertificateKeyType::kEcdsaP256;
  // Subject organizationalUnitName (placed before the CN), e.g. "fedmed audit log"; "" for none.
  std::string organizational_unit;
  int validity_days = 365;
  // notBefore = now + not_before_offset_seconds (default: 5 minutes ago, for clock skew).
  int64_t not_before_offset_seconds = -300;
  // When set, notAfter = now + *not_after_offset_seconds instead of now + validity_days; tests
  // use it to make certificates that have already expired.
  std::optional<int64_t> not_after_offset_seconds;
};

// Issues a certificate for `request` with a fresh key of request.key_type (P-256 by default),
// signed by `ca` (ECDSA-with-SHA256).
// Throws Error if the request is malformed (empty CN, empty DNS name, IP text that is not an
// IPv4/IPv6 address, none of server_auth, client_auth and document_signing, document_signing
// together with server_auth or client_auth, operator_role without client_auth, with
// server_auth or with another OU, validity_days < 1, notAfter not after
// notBefore, notAfter more than kCaExpirySlackSeconds later than the CA's own notAfter: a
// certificate may not outlive its CA); CryptoError if the CA key or certificate cannot be
// parsed or do not match each other, or OpenSSL fails. A notAfter later than the CA's by at most
// kCaExpirySlackSeconds (a certificate issued moments after a CA of the same validity) is set to
// the CA's notAfter instead.
KeyAndCert IssueCertificate(const KeyAndCert& ca, const CertificateRequest& request);

// 1 hour, in seconds (provisioning a federation takes far less): see IssueCertificate.
inline constexpr int64_t kCaExpirySlackSeconds = 3600;

// What a certificate says, for logs, the status page and fedmed-pki's output.
struct CertificateInfo {
  std::string common_name;
  std::string issuer_common_name;
  std::vector<std::string> dns_names;     // SubjectAltName DNS entries, in order
  std::vector<std::string> ip_addresses;  // SubjectAltName IP entries, canonical text ("::1")
  std::string organizational_unit;        // the subject OU, "" when none
  bool operator_role = false;             // ExtendedKeyUsage kOperatorOid present
  std::time_t not_before = 0;             // seconds since the Unix epoch, UTC
  std::time_t not_after = 0;
  // SHA-256 of the DER certificate as uppercase hex pairs separated by colons, the way
  // `openssl x509 -noout -fingerprint -sha256` prints it, so operators can compare the two.
  std::string sha256_fingerprint;
};

// Reads the first certificate of `cert_pem`. Throws CryptoError if it holds no PEM certificate.
CertificateInfo InspectCertificate(const std::string& cert_pem);

// Which use of a certificate VerifyPeerCertificate checks (its ExtendedKeyUsage).
enum class CertificatePurpose {
  kClientAuth,  // the peer is a site (checked by the coordinator): not an operator certificate
  kOperator,    // the peer is an operator (fedmed-admin): clientAuth and both operator markers
  kServerAuth,  // the peer is the coordinator (checked by a site)
  // an audit-log certificate (checked by fedmed-audit): an Ed25519 key and the ExtendedKeyUsage
  // id-kp-documentSigning; the chain is checked without a TLS purpose.
  kAuditLog,
};

// Outcome of VerifyPeerCertificate.
struct PeerCheck {
  bool ok = false;
  std::string common_name;  // CN of the peer's certificate, whenever it could be parsed
  std::string reason;       // empty when ok; otherwise one line for the operator
};

// Checks that `peer_cert_pem` (the peer's certificate first, optionally followed by intermediate
// certificates) chains to the federation CA in `ca_pem` at time `now` (X509_verify_cert) and is
// valid for `purpose`. Never throws for a bad peer certificate; returns ok = false with a reason
// such as
//   certificate CN=site-9 is not issued by the federation CA (CN=fedmed-ca): unable to get
//     local issuer certificate (it was issued by CN=other-ca)
//   certificate CN=site-1 expired on 2026-01-01 00:00:00 UTC
//   certificate CN=site-1 is not valid before 2026-01-01 00:00:00 UTC (check both machines' clocks)
//   certificate CN=coordinator is not valid for client authentication (extended key usage)
//   certificate CN=site-1 is not an audit-log certificate (no extended key usage
//     id-kp-documentSigning)
//   certificate CN=fedmed-operator is an operator certificate (OU=fedmed operator): it cannot
//     act as a site
//   certificate CN=site-1 is not an operator certificate (no OU=fedmed operator ...)
// Throws CryptoError if `ca_pem` holds no certificate (that is fedmed's own configuration).
PeerCheck VerifyPeerCertificate(const std::string& peer_cert_pem, const std::string& ca_pem,
                                std::time_t now,
                                CertificatePurpose purpose = CertificatePurpose::kClientAuth);

// Throws CryptoError naming `what` (e.g. "[tls] key of site.toml") if `key_pem` is not a PEM
// private key, `cert_pem` not a PEM certificate, or the key does not belong to the certificate.
void CheckKeyMatchesCertificate(const std::string& key_pem, const std::string& cert_pem,
                                const std::string& what);

// `t` as "YYYY-MM-DD HH:MM:SS UTC".
std::string FormatUtc(std::time_t t);

}  // namespace fedmed

#endif  // FEDMED_COMMON_CRYPTO_PKI_H_
