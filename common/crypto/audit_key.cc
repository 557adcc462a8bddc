#include "common/crypto/audit_key.h"

#include <openssl/pem.h>

#include "common/crypto/openssl_util.h"
#include "common/crypto/pki.h"
#include "common/util/error.h"

namespace fedmed {
namespace {

// Refuses passphrase prompts: audit keys are unencrypted.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) { return -1; }

std::shared_ptr<EVP_PKEY> Share(EvpPkeyPtr key) {
  return std::shared_ptr<EVP_PKEY>(key.release(), OpenSslFree());
}

void CheckEd25519(const EVP_PKEY* key, const std::string& what) {
  if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
    throw CryptoError(what + ": the key is " + OBJ_nid2sn(EVP_PKEY_get_id(key)) +
                      ", not Ed25519 (is this a TLS key or certificate instead of the audit "
                      "key audit.key / certificate audit.pem?)");
  }
}

}  // namespace

AuditVerifyingKey AuditVerifyingKey::FromCertificate(const std::string& cert_pem,
                                                     const std::string& what) {
  BioPtr bio = MemoryBio(cert_pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
  if (!cert) ThrowOpenSslError(what + ": not a PEM certificate");
  EvpPkeyPtr key(X509_get_pubkey(cert.get()));
  if (!key) ThrowOpenSslError(what + ": the certificate's public key cannot be read");
  CheckEd25519(key.get(), what);
  const CertificateInfo info = InspectCertificate(cert_pem);
  AuditVerifyingKey result;
  result.key_ = Share(std::move(key));
  result.common_name_ = info.common_name;
  result.not_before_ = info.not_before;
  result.not_after_ = info.not_after;
  return result;
}

bool AuditVerifyingKey::Verify(std::string_view message, std::string_view signature) const {
  if (signature.size() != kEd25519SignatureSize || !key_) return false;
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) ThrowOpenSslError("allocating a signature context");
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) {
    ThrowOpenSslError("initialising Ed25519 verification");
  }
  const int rc = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
      reinterpret_cast<const unsigned char*>(message.data()), message.size());
  if (rc != 1) ERR_clear_error();  // a bad signature is an answer, not an error
  return rc == 1;
}

AuditSigningKey AuditSigningKey::FromPem(const std::string& key_pem, const std::string& what) {
  BioPtr bio = MemoryBio(key_pem);
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (!key) ThrowOpenSslError(what + ": not an unencrypted PEM private key");
  CheckEd25519(key.get(), what);
  AuditSigningKey result;
  result.key_ = Share(std::move(key));
  return result;
}

std::string AuditSigningKey::Sign(std::string_view message) const {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) ThrowOpenSslError("allocating a signature context");
  if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) {
    ThrowOpenSslError("initialising Ed25519 signing");
  }
  std::string signature(kEd25519SignatureSize, '\0');
  size_t length = signature.size();
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      length != kEd25519SignatureSize) {
    ThrowOpenSslError("signing a privacy-log entry with Ed25519");
  }
  return signature;
}

}  // namespace fedmed
