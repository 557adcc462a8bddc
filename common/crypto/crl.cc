#include "common/crypto/crl.h"

#include <openssl/pem.h>
#include <sys/stat.h>

#include <algorithm>

#include "common/crypto/openssl_util.h"
#include "common/util/file_io.h"

namespace fedmed {

namespace {

struct CrlFree {
  void operator()(X509_CRL* p) const { X509_CRL_free(p); }
  void operator()(X509_REVOKED* p) const { X509_REVOKED_free(p); }
};
using X509CrlPtr = std::unique_ptr<X509_CRL, CrlFree>;
using X509RevokedPtr = std::unique_ptr<X509_REVOKED, CrlFree>;
struct OpenSslCharFree {
  void operator()(char* p) const { OPENSSL_free(p); }
};

// CRLReason codes (RFC 5280 5.3.1) by name; 6 (certificateHold) and 8 (removeFromCRL) left out.
const std::vector<std::pair<std::string, int>>& ReasonCodes() {
  static const std::vector<std::pair<std::string, int>> codes = {
      {"unspecified", 0},        {"keyCompromise", 1},        {"cACompromise", 2},
      {"affiliationChanged", 3}, {"superseded", 4},           {"cessationOfOperation", 5},
      {"privilegeWithdrawn", 9},
  };
  return codes;
}

std::string ReasonName(int code) {
  for (const auto& [name, c] : ReasonCodes()) {
    if (c == code) return name;
  }
  return "reason code " + std::to_string(code);
}

X509Ptr ParseOneCertificate(const std::string& pem, const std::string& what) {
  BioPtr bio = MemoryBio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) ThrowOpenSslError(what + ": no PEM certificate");
  return cert;
}

std::time_t ToTimeT(const ASN1_TIME* t, const std::string& what) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) ThrowOpenSslError(what + ": unreadable time");
  return timegm(&tm);
}

std::string SerialHex(const ASN1_INTEGER* serial) {
  BignumPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) ThrowOpenSslError("reading a serial number");
  std::unique_ptr<char, OpenSslCharFree> hex(BN_bn2hex(bn.get()));
  if (!hex) ThrowOpenSslError("printing a serial number");
  return hex.get();
}

void AddRevoked(X509_CRL* crl, const RevokedCertificate& entry) {
  BIGNUM* raw = nullptr;
  if (entry.serial.empty() || BN_hex2bn(&raw, entry.serial.c_str()) !=
                                  static_cast<int>(entry.serial.size())) {
    BN_free(raw);
    ERR_clear_error();
    throw Error("CRL entry: serial \"" + entry.serial + "\" is not a hexadecimal number");
  }
  BignumPtr bn(raw);
  const auto code = std::find_if(ReasonCodes().begin(), ReasonCodes().end(),
                                 [&](const auto& r) { return r.first == entry.reason; });
  if (!entry.reason.empty() && code == ReasonCodes().end()) {
    throw Error("CRL entry " + entry.serial + ": revocation reason \"" + entry.reason +
                "\" is not one of RFC 5280's (unspecified, keyCompromise, cACompromise, "
                "affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn)");
  }
  X509RevokedPtr revoked(X509_REVOKED_new());
  Asn1StringPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  Asn1StringPtr date(ASN1_TIME_set(nullptr, entry.revoked_at));
  if (!revoked || !serial || !date || X509_REVOKED_set_serialNumber(revoked.get(), serial.get()) != 1 ||
      X509_REVOKED_set_revocationDate(revoked.get(), date.get()) != 1) {
    ThrowOpenSslError("building a CRL entry");
  }
  if (!entry.reason.empty()) {
    Asn1StringPtr reason(ASN1_ENUMERATED_new());
    if (!reason || ASN1_ENUMERATED_set(reason.get(), code->second) != 1 ||
        X509_REVOKED_add1_ext_i2d(revoked.get(), NID_crl_reason, reason.get(), 0, 0) != 1) {
      ThrowOpenSslError("adding a CRL entry's reason");
    }
  }
  if (X509_CRL_add0_revoked(crl, revoked.get()) != 1) ThrowOpenSslError("adding a CRL entry");
  revoked.release();  // the CRL owns it now
}

}  // namespace

const RevokedCertificate* CrlContents::Find(const std::string& serial) const {
  for (const RevokedCertificate& entry : revoked) {
    if (entry.serial == serial) return &entry;
  }
  return nullptr;
}

const std::vector<std::string>& RevocationReasons() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& [name, code] : ReasonCodes()) n.push_back(name);
    return n;
  }();
  return names;
}

std::string CertificateSerial(const std::string& cert_pem) {
  const X509Ptr cert = ParseOneCertificate(cert_pem, "reading a certificate's serial number");
  return SerialHex(X509_get0_serialNumber(cert.get()));
}

std::string CreateCrl(const KeyAndCert& ca, const std::vector<RevokedCertificate>& revoked,
                      int64_t number, int next_update_days) {
  if (next_update_days < 1) {
    throw Error("CRL: the next update must be at least 1 day away, not " +
                std::to_string(next_update_days));
  }
  const X509Ptr ca_cert = ParseOneCertificate(ca.cert_pem, "federation CA certificate");
  BioPtr key_bio = MemoryBio(ca.key_pem);
  EvpPkeyPtr ca_key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!ca_key) ThrowOpenSslError("federation CA key: no PEM private key");
  if (X509_check_private_key(ca_cert.get(), ca_key.get()) != 1) {
    ThrowOpenSslError("federation CA key does not belong to the CA certificate");
  }
  X509CrlPtr crl(X509_CRL_new());
  if (!crl || X509_CRL_set_version(crl.get(), 1) != 1 ||  // 1 = v2
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca_cert.get())) != 1) {
    ThrowOpenSslError("creating a CRL");
  }
  const std::time_t now = std::time(nullptr);
  Asn1StringPtr this_update(ASN1_TIME_set(nullptr, now));
  Asn1StringPtr next_update(ASN1_TIME_adj(nullptr, now, next_update_days, 0));
  if (!this_update || !next_update || X509_CRL_set1_lastUpdate(crl.get(), this_update.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next_update.get()) != 1) {
    ThrowOpenSslError("setting the CRL's update times");
  }
  for (const RevokedCertificate& entry : revoked) AddRevoked(crl.get(), entry);
  Asn1StringPtr crl_number(ASN1_INTEGER_new());
  if (!crl_number || ASN1_INTEGER_set_int64(crl_number.get(), number) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, crl_number.get(), 0, 0) != 1) {
    ThrowOpenSslError("adding the CRL number");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca_cert.get(), nullptr, nullptr, crl.get(), 0);
  X509ExtensionPtr aki(
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (!aki || X509_CRL_add_ext(crl.get(), aki.get(), -1) != 1) {
    ThrowOpenSslError("adding the CRL's authority key identifier");
  }
  if (X509_CRL_sort(crl.get()) != 1 || X509_CRL_sign(crl.get(), ca_key.get(), EVP_sha256()) <= 0) {
    ThrowOpenSslError("signing the CRL");
  }
  BioPtr out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_X509_CRL(out.get(), crl.get()) != 1) ThrowOpenSslError("writing the CRL");
  return MemoryBioContents(out.get());
}

CrlContents ReadCrl(const std::string& crl_pem, const std::string& ca_pem,
                    const std::string& what) {
  BioPtr bio = MemoryBio(crl_pem);
  X509CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  if (!crl) ThrowOpenSslError(what + ": not a PEM certificate revocation list (X509 CRL)");
  const X509Ptr ca = ParseOneCertificate(ca_pem, "federation CA certificate");
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(ca.get())) != 0) {
    throw CryptoError(what + ": the CRL was not issued by the federation CA (its issuer differs "
                             "from the CA certificate's subject)");
  }
  if (X509_CRL_verify(crl.get(), X509_get0_pubkey(ca.get())) != 1) {
    ERR_clear_error();
    throw CryptoError(what + ": the CRL's signature does not verify with the federation CA's key "
                             "(altered, or signed by another key)");
  }
  CrlContents contents;
  contents.this_update = ToTimeT(X509_CRL_get0_lastUpdate(crl.get()), what + " thisUpdate");
  const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
  contents.next_update = next != nullptr ? ToTimeT(next, what + " nextUpdate") : 0;
  int critical = 0;
  Asn1StringPtr number(static_cast<ASN1_INTEGER*>(
      X509_CRL_get_ext_d2i(crl.get(), NID_crl_number, &critical, nullptr)));
  if (number) ASN1_INTEGER_get_int64(&contents.number, number.get());
  STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(crl.get());
  for (int i = 0; i < sk_X509_REVOKED_num(entries); ++i) {
    const X509_REVOKED* entry = sk_X509_REVOKED_value(entries, i);
    RevokedCertificate r;
    r.serial = SerialHex(X509_REVOKED_get0_serialNumber(entry));
    r.revoked_at = ToTimeT(X509_REVOKED_get0_revocationDate(entry), what + " revocationDate");
    Asn1StringPtr reason(static_cast<ASN1_ENUMERATED*>(
        X509_REVOKED_get_ext_d2i(entry, NID_crl_reason, &critical, nullptr)));
    if (reason) r.reason = ReasonName(static_cast<int>(ASN1_ENUMERATED_get(reason.get())));
    contents.revoked.push_back(std::move(r));
  }
  return contents;
}

CrlWatcher::CrlWatcher(std::string path, std::string ca_pem,
                       std::function<void(bool, const std::string&)> report)
    : path_(std::move(path)), ca_pem_(std::move(ca_pem)), report_(std::move(report)) {
  LoadIfChanged(/*initial=*/true);
}

CrlWatcher::FileStamp CrlWatcher::Stamp() const {
  struct stat st {};
  FileStamp stamp;
  if (::stat(path_.c_str(), &st) != 0) return stamp;
  stamp.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  stamp.inode = static_cast<int64_t>(st.st_ino);
  stamp.size = static_cast<int64_t>(st.st_size);
  return stamp;
}

void CrlWatcher::LoadIfChanged(bool initial) {
  MutexLock lock(&mu_);
  last_check_ = std::chrono::steady_clock::now();
  const FileStamp stamp = Stamp();
  if (!initial && stamp == stamp_) return;
  std::shared_ptr<CrlContents> loaded;
  try {
    loaded = std::make_shared<CrlContents>(
        ReadCrl(ReadFile(path_, "[tls] crl"), ca_pem_, "[tls] crl " + path_));
  } catch (const std::exception& e) {
    if (initial) throw;
    stamp_ = stamp;  // reported once per change of the file, not on every call
    if (report_) report_(true, std::string(e.what()) + "; the CRL loaded before stays in force");
    return;
  }
  stamp_ = stamp;
  current_ = loaded;
  if (!report_) return;
  report_(false, "loaded the CRL " + path_ + ": number " + std::to_string(loaded->number) +
                     ", " + std::to_string(loaded->revoked.size()) +
                     " revoked certificate(s), next update " + FormatUtc(loaded->next_update));
  if (loaded->next_update != 0 && loaded->next_update < std::time(nullptr)) {
    report_(true, "the CRL " + path_ + " is past its next update (" +
                      FormatUtc(loaded->next_update) +
                      "): re-sign it with fedmed-pki crl; it stays in "
                      "force until then");
  }
}

std::shared_ptr<const CrlContents> CrlWatcher::Current() {
  bool due = false;
  {
    MutexLock lock(&mu_);
    due = std::chrono::steady_clock::now() - last_check_ >= std::chrono::seconds(1);
    if (!due) return current_;
  }
  try {
    LoadIfChanged(false);
  } catch (...) {
    // LoadIfChanged reports rather than throws after the first load.
  }
  MutexLock lock(&mu_);
  return current_;
}

void CrlWatcher::Reload() {
  try {
    LoadIfChanged(false);
  } catch (...) {
  }
}

}  // namespace fedmed
