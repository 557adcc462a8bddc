#include "common/crypto/pki.h"

#include <arpa/inet.h>
#include <openssl/pem.h>

#include <cctype>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/crypto/openssl_util.h"
#include "common/util/error.h"

namespace fedmed {
namespace {

constexpr int64_t kSecondsPerDay = 86400;
constexpr int64_t kCaNotBeforeOffsetSeconds = -300;

// Passphrase callback that refuses: fedmed keys are unencrypted, and OpenSSL's default callback
// would otherwise prompt on the terminal.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) { return -1; }

EvpPkeyPtr GenerateP256Key() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) ThrowOpenSslError("generating an ECDSA P-256 key");
  return key;
}

EvpPkeyPtr GenerateKey(CertificateKeyType type) {
  if (type == CertificateKeyType::kEcdsaP256) return GenerateP256Key();
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) ThrowOpenSslError("generating an Ed25519 key");
  return key;
}

std::string KeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    ThrowOpenSslError("encoding a private key as PEM");
  }
  return MemoryBioContents(bio.get());
}

std::string CertToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
    ThrowOpenSslError("encoding a certificate as PEM");
  }
  return MemoryBioContents(bio.get());
}

EvpPkeyPtr ParsePrivateKey(const std::string& pem, const std::string& what) {
  BioPtr bio = MemoryBio(pem);
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (!key) ThrowOpenSslError(what + ": not an unencrypted PEM private key");
  return key;
}

// Every certificate in `pem`, in order. Throws CryptoError naming `what` if there is none or a
// PEM block is malformed.
std::vector<X509Ptr> ParseCertificates(const std::string& pem, const std::string& what) {
  ERR_clear_error();
  BioPtr bio = MemoryBio(pem);
  std::vector<X509Ptr> certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr)) {
    certs.emplace_back(cert);
  }
  // Running out of PEM blocks ends the loop with PEM_R_NO_START_LINE; anything else is damage.
  const unsigned long last = ERR_peek_last_error();
  const bool clean_end =
      ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE;
  if (certs.empty() || !clean_end) ThrowOpenSslError(what + ": not a PEM certificate");
  ERR_clear_error();
  return certs;
}

X509Ptr ParseCertificate(const std::string& pem, const std::string& what) {
  return std::move(ParseCertificates(pem, what).front());
}

// The first entry of kind `nid` (e.g. NID_commonName) in `name`, as UTF-8; "" if none.
std::string NameEntry(const X509_NAME* name, int nid) {
  const int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return "";
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, data);
  if (n < 0) {
    ERR_clear_error();
    return "";
  }
  OpenSslBytesPtr owner(utf8);
  return std::string(reinterpret_cast<const char*>(utf8), static_cast<size_t>(n));
}

std::string SubjectCn(const X509* cert) {
  return NameEntry(X509_get_subject_name(cert), NID_commonName);
}
std::string IssuerCn(const X509* cert) {
  return NameEntry(X509_get_issuer_name(cert), NID_commonName);
}

std::time_t ToTimeT(const ASN1_TIME* t) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) ThrowOpenSslError("reading a certificate validity time");
  return timegm(&tm);
}

// notBefore = now + not_before, notAfter = now + not_after (seconds), 128-bit random serial,
// subject [OU=organizational_unit,] CN=common_name, public key.
X509Ptr NewCertificate(const std::string& common_name, EVP_PKEY* key, std::time_t now,
                       int64_t not_before, int64_t not_after,
                       const std::string& organizational_unit = "") {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) {
    ThrowOpenSslError("creating a certificate");
  }
  BignumPtr serial(BN_new());
  if (!serial || BN_rand(serial.get(), 128, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    ThrowOpenSslError("drawing a random serial number");
  }
  if (!organizational_unit.empty() &&
      X509_NAME_add_entry_by_NID(
          X509_get_subject_name(cert.get()), NID_organizationalUnitName, MBSTRING_UTF8,
          reinterpret_cast<const unsigned char*>(organizational_unit.c_str()), -1, -1, 0) != 1) {
    ThrowOpenSslError("setting the organizational unit OU=" + organizational_unit);
  }
  if (X509_NAME_add_entry_by_NID(X509_get_subject_name(cert.get()), NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                 -1, 0) != 1) {
    ThrowOpenSslError("setting the common name CN=" + common_name);
  }
  std::time_t t = now;
  if (X509_time_adj_ex(X509_getm_notBefore(cert.get()), 0, static_cast<long>(not_before), &t) ==
          nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert.get()), 0, static_cast<long>(not_after), &t) ==
          nullptr) {
    ThrowOpenSslError("setting the validity of CN=" + common_name);
  }
  if (X509_set_pubkey(cert.get(), key) != 1) ThrowOpenSslError("setting the public key");
  return cert;
}

void AddExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    ThrowOpenSslError(std::string("adding the ") + OBJ_nid2sn(nid) + " extension '" + value + "'");
  }
}

// Throws Error unless `name` is a plausible DNS name (or wildcard).
void CheckDnsName(const std::string& name, const std::string& cn) {
  bool ok = !name.empty();
  for (const char c : name) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '*' ||
                c == '_');
  }
  if (!ok) {
    throw Error("certificate request for CN=" + cn + ": DNS name '" + name +
                "' is not a DNS name (expected letters, digits, '-', '.', '_', '*')");
  }
}

void AddSubjectAltNames(X509* cert, const CertificateRequest& request) {
  if (request.dns_names.empty() && request.ip_addresses.empty()) return;
  GeneralNamesPtr names(GENERAL_NAMES_new());
  if (!names) ThrowOpenSslError("allocating subjectAltName");
  for (const std::string& dns : request.dns_names) {
    CheckDnsName(dns, request.common_name);
    GeneralNamePtr name(GENERAL_NAME_new());
    Asn1StringPtr ia5(ASN1_IA5STRING_new());
    if (!name || !ia5 ||
        ASN1_STRING_set(ia5.get(), dns.data(), static_cast<int>(dns.size())) != 1) {
      ThrowOpenSslError("encoding DNS name " + dns);
    }
    GENERAL_NAME_set0_value(name.get(), GEN_DNS, ia5.release());
    if (sk_GENERAL_NAME_push(names.get(), name.get()) == 0) ThrowOpenSslError("adding " + dns);
    name.release();
  }
  for (const std::string& ip : request.ip_addresses) {
    Asn1StringPtr octets(a2i_IPADDRESS(ip.c_str()));
    if (!octets) {
      ERR_clear_error();
      throw Error("certificate request for CN=" + request.common_name + ": IP address '" + ip +
                  "' is not an IPv4 or IPv6 address");
    }
    GeneralNamePtr name(GENERAL_NAME_new());
    if (!name) ThrowOpenSslError("allocating a subjectAltName entry");
    GENERAL_NAME_set0_value(name.get(), GEN_IPADD, octets.release());
    if (sk_GENERAL_NAME_push(names.get(), name.get()) == 0) ThrowOpenSslError("adding " + ip);
    name.release();
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    ThrowOpenSslError("adding the subjectAltName extension");
  }
}

void Sign(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, EVP_sha256()) <= 0) ThrowOpenSslError("signing a certificate");
}

std::string IpToText(const ASN1_OCTET_STRING* octets) {
  const int len = ASN1_STRING_length(octets);
  const int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : -1;
  char text[INET6_ADDRSTRLEN] = {0};
  if (family < 0 ||
      inet_ntop(family, ASN1_STRING_get0_data(octets), text, sizeof(text)) == nullptr) {
    return "<invalid IP address of " + std::to_string(len) + " bytes>";
  }
  return text;
}

std::string Fingerprint(const X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) != 1) ThrowOpenSslError("fingerprinting");
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string text;
  for (unsigned int i = 0; i < len; ++i) {
    if (i > 0) text += ':';
    text += kDigits[md[i] >> 4];
    text += kDigits[md[i] & 0xf];
  }
  return text;
}

// Why `cert` is not an audit-log certificate (an Ed25519 key and the ExtendedKeyUsage
// id-kp-documentSigning), or "" when it is one.
std::string AuditCertificateProblem(X509* cert) {
  const std::string subject = "certificate CN=" + SubjectCn(cert);
  const EVP_PKEY* key = X509_get0_pubkey(cert);
  if (key == nullptr || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
    ERR_clear_error();
    return subject + " is not an audit-log certificate (its key is " +
           (key != nullptr ? std::string(OBJ_nid2sn(EVP_PKEY_get_id(key))) : "unreadable") +
           ", not Ed25519)";
  }
  ExtendedKeyUsagePtr eku(static_cast<EXTENDED_KEY_USAGE*>(
      X509_get_ext_d2i(cert, NID_ext_key_usage, nullptr, nullptr)));
  Asn1ObjectPtr document_signing(OBJ_txt2obj(kDocumentSigningOid, 1));
  if (!document_signing) ThrowOpenSslError("encoding the id-kp-documentSigning OID");
  for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku.get()); ++i) {
    if (OBJ_cmp(sk_ASN1_OBJECT_value(eku.get(), i), document_signing.get()) == 0) return "";
  }
  ERR_clear_error();
  return subject + " is not an audit-log certificate (no extended key usage "
                   "id-kp-documentSigning)";
}

std::string SubjectOu(const X509* cert) {
  return NameEntry(X509_get_subject_name(cert), NID_organizationalUnitName);
}

// Whether `cert`'s ExtendedKeyUsage lists `oid`.
bool HasExtendedKeyUsage(const X509* cert, const char* oid) {
  ExtendedKeyUsagePtr eku(static_cast<EXTENDED_KEY_USAGE*>(
      X509_get_ext_d2i(cert, NID_ext_key_usage, nullptr, nullptr)));
  Asn1ObjectPtr wanted(OBJ_txt2obj(oid, 1));
  if (!wanted) ThrowOpenSslError(std::string("encoding the OID ") + oid);
  bool found = false;
  for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku.get()); ++i) {
    if (OBJ_cmp(sk_ASN1_OBJECT_value(eku.get(), i), wanted.get()) == 0) found = true;
  }
  ERR_clear_error();
  return found;
}

// The role check after a verified chain: a site's certificate carries neither operator marker,
// an operator's both. "" when `cert` fits `purpose`.
std::string RoleProblem(const X509* cert, CertificatePurpose purpose) {
  const bool ou = SubjectOu(cert) == kOperatorOrganizationalUnit;
  const bool eku = HasExtendedKeyUsage(cert, kOperatorOid);
  const std::string subject = "certificate CN=" + SubjectCn(cert);
  if (purpose == CertificatePurpose::kClientAuth && (ou || eku)) {
    return subject + " is an operator certificate (OU=" + kOperatorOrganizationalUnit +
           "): it cannot act as a site";
  }
  if (purpose == CertificatePurpose::kOperator && !(ou && eku)) {
    return subject + " is not an operator certificate (" +
           (ou ? std::string("no extended key usage ") + kOperatorOid
               : std::string("no OU=") + kOperatorOrganizationalUnit) +
           "): only the operator certificate from fedmed-pki init (DIR/operator/) may "
           "administer the federation";
  }
  return "";
}

std::string DescribeCa(const std::vector<X509Ptr>& cas) {
  std::string text;
  for (const X509Ptr& ca : cas) text += (text.empty() ? "CN=" : ", CN=") + SubjectCn(ca.get());
  return text;
}

// One line for the operator explaining why X509_verify_cert rejected `failing`.
std::string VerifyFailureReason(int error, const X509* failing, const std::vector<X509Ptr>& cas,
                                CertificatePurpose purpose) {
  const std::string subject = "certificate CN=" + SubjectCn(failing);
  const std::string detail = X509_verify_cert_error_string(error);
  switch (error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return subject + " expired on " + FormatUtc(ToTimeT(X509_get0_notAfter(failing)));
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return subject + " is not valid before " +
             FormatUtc(ToTimeT(X509_get0_notBefore(failing))) + " (check both machines' clocks)";
    case X509_V_ERR_INVALID_PURPOSE:
      return subject + " is not valid for " +
             (purpose == CertificatePurpose::kServerAuth ? "server" : "client") +
             " authentication (extended key usage)";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED: {
      const bool self_signed =
          X509_check_issued(const_cast<X509*>(failing), const_cast<X509*>(failing)) == X509_V_OK;
      return subject + " is not issued by the federation CA (" + DescribeCa(cas) + "): " +
             detail + (self_signed ? " (it is self-signed)"
                                   : " (it was issued by CN=" + IssuerCn(failing) + ")");
    }
    default:
      return subject + " failed verification against the federation CA (" + DescribeCa(cas) +
             "): " + detail;
  }
}

}  // namespace

KeyAndCert CreateCa(const std::string& common_name, int validity_days) {
  if (common_name.empty()) throw Error("creating the federation CA: the common name is empty");
  if (validity_days < 1) {
    throw Error("creating the federation CA CN=" + common_name +
                ": validity must be at least 1 day, got " + std::to_string(validity_days));
  }
  EvpPkeyPtr key = GenerateP256Key();
  X509Ptr cert = NewCertificate(common_name, key.get(), std::time(nullptr),
                                kCaNotBeforeOffsetSeconds, validity_days * kSecondsPerDay);
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) != 1) {
    ThrowOpenSslError("setting the CA's issuer name");
  }
  X509V3_CTX ctx{};
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  // pathlen:0 — the federation CA signs end-entity certificates only, never another CA.
  AddExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  AddExtension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  AddExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  Sign(cert.get(), key.get());
  return KeyAndCert{KeyToPem(key.get()), CertToPem(cert.get())};
}

KeyAndCert IssueCertificate(const KeyAndCert& ca, const CertificateRequest& request) {
  const std::string what = "certificate request for CN=" + request.common_name;
  if (request.common_name.empty()) throw Error("certificate request: the common name is empty");
  if (!request.server_auth && !request.client_auth && !request.document_signing) {
    throw Error(what + ": none of server_auth, client_auth and document_signing is set");
  }
  if (request.operator_role &&
      (!request.client_auth || request.server_auth ||
       !(request.organizational_unit.empty() ||
         request.organizational_unit == kOperatorOrganizationalUnit))) {
    throw Error(what + ": an operator certificate is a client certificate (client_auth, not "
                "server_auth) with OU=" + kOperatorOrganizationalUnit);
  }
  if (request.document_signing && (request.server_auth || request.client_auth)) {
    throw Error(what + ": a document-signing (audit-log) certificate must not also be valid for "
                "TLS (server_auth or client_auth)");
  }
  int64_t not_after = 0;
  if (request.not_after_offset_seconds.has_value()) {
    not_after = *request.not_after_offset_seconds;
  } else if (request.validity_days < 1) {
    throw Error(what + ": validity must be at least 1 day, got " +
                std::to_string(request.validity_days));
  } else {
    not_after = request.validity_days * kSecondsPerDay;
  }
  if (not_after <= request.not_before_offset_seconds) {
    throw Error(what + ": notAfter (now + " + std::to_string(not_after) +
                " s) is not after notBefore (now + " +
                std::to_string(request.not_before_offset_seconds) + " s)");
  }

  EvpPkeyPtr ca_key = ParsePrivateKey(ca.key_pem, "federation CA key");
  X509Ptr ca_cert = ParseCertificate(ca.cert_pem, "federation CA certificate");
  if (X509_check_private_key(ca_cert.get(), ca_key.get()) != 1) {
    ThrowOpenSslError("federation CA key does not belong to the CA certificate CN=" +
                      SubjectCn(ca_cert.get()));
  }

  EvpPkeyPtr key = GenerateKey(request.key_type);
  X509Ptr cert = NewCertificate(request.common_name, key.get(), std::time(nullptr),
                                request.not_before_offset_seconds, not_after,
                                request.operator_role ? std::string(kOperatorOrganizationalUnit)
                                                      : request.organizational_unit);
  const std::time_t ca_not_after = ToTimeT(X509_get0_notAfter(ca_cert.get()));
  const std::time_t cert_not_after = ToTimeT(X509_get0_notAfter(cert.get()));
  if (cert_not_after > ca_not_after && cert_not_after - ca_not_after <= kCaExpirySlackSeconds) {
    // Issued moments after a CA of the same validity (fedmed-pki init --days = --ca-days): end
    // with the CA rather than refuse over the seconds between the two.
    if (X509_set1_notAfter(cert.get(), X509_get0_notAfter(ca_cert.get())) != 1) {
      ThrowOpenSslError("setting notAfter to the CA's");
    }
  } else if (cert_not_after > ca_not_after) {
    throw Error(what + ": it would outlive the federation CA CN=" + SubjectCn(ca_cert.get()) +
                ", which expires on " + FormatUtc(ca_not_after) +
                "; shorten the validity or create a new CA");
  }
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get())) != 1) {
    ThrowOpenSslError("setting the issuer name");
  }
  X509V3_CTX ctx{};
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, ca_cert.get(), cert.get(), nullptr, nullptr, 0);
  AddExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
  if (request.document_signing) {
    // RFC 9336: id-kp-documentSigning with digitalSignature and/or nonRepudiation.
    AddExtension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature,nonRepudiation");
    AddExtension(cert.get(), &ctx, NID_ext_key_usage, kDocumentSigningOid);
  } else {
    AddExtension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature");
    const std::string eku = request.operator_role ? std::string("clientAuth,") + kOperatorOid
                            : request.server_auth && request.client_auth ? "serverAuth,clientAuth"
                            : request.server_auth                        ? "serverAuth"
                                                                         : "clientAuth";
    AddExtension(cert.get(), &ctx, NID_ext_key_usage, eku.c_str());
  }
  AddExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  AddExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  AddSubjectAltNames(cert.get(), request);
  Sign(cert.get(), ca_key.get());
  return KeyAndCert{KeyToPem(key.get()), CertToPem(cert.get())};
}

CertificateInfo InspectCertificate(const std::string& cert_pem) {
  X509Ptr cert = ParseCertificate(cert_pem, "inspecting a certificate");
  CertificateInfo info;
  info.common_name = SubjectCn(cert.get());
  info.issuer_common_name = IssuerCn(cert.get());
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    int type = 0;
    void* value = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(names.get(), i), &type);
    const auto* s = static_cast<const ASN1_STRING*>(value);
    if (type == GEN_DNS) {
      info.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                  static_cast<size_t>(ASN1_STRING_length(s)));
    } else if (type == GEN_IPADD) {
      info.ip_addresses.push_back(IpToText(s));
    }
  }
  ERR_clear_error();  // X509_get_ext_d2i leaves no error for a missing extension; be sure.
  info.organizational_unit = SubjectOu(cert.get());
  info.operator_role = HasExtendedKeyUsage(cert.get(), kOperatorOid);
  info.not_before = ToTimeT(X509_get0_notBefore(cert.get()));
  info.not_after = ToTimeT(X509_get0_notAfter(cert.get()));
  info.sha256_fingerprint = Fingerprint(cert.get());
  return info;
}

PeerCheck VerifyPeerCertificate(const std::string& peer_cert_pem, const std::string& ca_pem,
                                std::time_t now, CertificatePurpose purpose) {
  const std::vector<X509Ptr> cas = ParseCertificates(ca_pem, "federation CA certificate");
  PeerCheck check;
  std::vector<X509Ptr> peer;
  try {
    peer = ParseCertificates(peer_cert_pem, "peer certificate");
  } catch (const CryptoError& e) {
    check.reason = e.what();
    return check;
  }
  X509* leaf = peer.front().get();
  check.common_name = SubjectCn(leaf);

  X509StorePtr store(X509_STORE_new());
  X509StackPtr untrusted(sk_X509_new_null());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !untrusted || !ctx) ThrowOpenSslError("allocating a certificate store");
  for (const X509Ptr& ca : cas) {
    if (X509_STORE_add_cert(store.get(), ca.get()) != 1) ThrowOpenSslError("loading the CA");
  }
  for (size_t i = 1; i < peer.size(); ++i) {
    if (sk_X509_push(untrusted.get(), peer[i].get()) == 0) ThrowOpenSslError("building a chain");
    X509_up_ref(peer[i].get());  // the stack's deleter frees its own reference
  }
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf, untrusted.get()) != 1) {
    ThrowOpenSslError("initialising certificate verification");
  }
  X509_STORE_CTX_set_time(ctx.get(), 0, now);
  // An audit-log certificate has no TLS purpose: its chain is checked without one, its
  // ExtendedKeyUsage and key type below.
  if (purpose != CertificatePurpose::kAuditLog &&
      X509_STORE_CTX_set_purpose(ctx.get(), purpose == CertificatePurpose::kServerAuth
                                                ? X509_PURPOSE_SSL_SERVER
                                                : X509_PURPOSE_SSL_CLIENT) != 1) {
    ThrowOpenSslError("setting the verification purpose");
  }
  if (X509_verify_cert(ctx.get()) == 1) {
    if (purpose == CertificatePurpose::kAuditLog) {
      check.reason = AuditCertificateProblem(leaf);
      check.ok = check.reason.empty();
      return check;
    }
    check.reason = RoleProblem(leaf, purpose);
    check.ok = check.reason.empty();
    return check;
  }
  const int error = X509_STORE_CTX_get_error(ctx.get());
  const X509* failing = X509_STORE_CTX_get_current_cert(ctx.get());
  if (error == X509_V_OK) {
    check.reason = "certificate CN=" + check.common_name +
                   " could not be verified: " + DrainOpenSslErrors();
    return check;
  }
  ERR_clear_error();
  check.reason = VerifyFailureReason(error, failing != nullptr ? failing : leaf, cas, purpose);
  return check;
}

void CheckKeyMatchesCertificate(const std::string& key_pem, const std::string& cert_pem,
                                const std::string& what) {
  EvpPkeyPtr key = ParsePrivateKey(key_pem, what);
  X509Ptr cert = ParseCertificate(cert_pem, what);
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    throw CryptoError(what + ": the private key does not belong to certificate CN=" +
                      SubjectCn(cert.get()) +
                      " (key and certificate files come from different issuances)");
  }
}

std::string FormatUtc(std::time_t t) {
  std::tm tm{};
  char text[64];
  if (gmtime_r(&t, &tm) == nullptr ||
      std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) {
    return std::to_string(static_cast<long long>(t)) + " (seconds since 1970, UTC)";
  }
  return text;
}

}  // namespace fedmed
