// RAII ownership of OpenSSL objects and OpenSSL error reporting.
//
// Every OpenSSL object fedmed allocates is held in one of the unique_ptr aliases below, so that it
// is freed on every path, exceptions included:
//
//   EvpPkeyPtr key(EVP_EC_gen("P-256"));
//   if (!key) ThrowOpenSslError("generating the CA key");
//
// ThrowOpenSslError drains OpenSSL's thread-local error queue into the message, so the operator
// sees both what fedmed was doing and OpenSSL's own reason ("...: error:0480006C:PEM routines::no
// start line"). Only the OpenSSL 3 library API is used; fedmed never implements a primitive itself.
#ifndef FEDMED_COMMON_CRYPTO_OPENSSL_UTIL_H_
#define FEDMED_COMMON_CRYPTO_OPENSSL_UTIL_H_

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/util/error.h"

namespace fedmed {

// Frees any OpenSSL object type fedmed holds; one overload per type.
struct OpenSslFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_NAME* p) const { X509_NAME_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
  void operator()(STACK_OF(X509) * p) const { sk_X509_pop_free(p, X509_free); }
  void operator()(GENERAL_NAME* p) const { GENERAL_NAME_free(p); }
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
  void operator()(EXTENDED_KEY_USAGE* p) const { sk_ASN1_OBJECT_pop_free(p, ASN1_OBJECT_free); }
  void operator()(ASN1_OBJECT* p) const { ASN1_OBJECT_free(p); }
  // ASN1_INTEGER, ASN1_OCTET_STRING, ASN1_TIME, ... are all ASN1_STRING.
  void operator()(ASN1_STRING* p) const { ASN1_STRING_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(BIO* p) const { BIO_free_all(p); }
  void operator()(unsigned char* p) const { OPENSSL_free(p); }
};

template <typename T>
using OpenSslPtr = std::unique_ptr<T, OpenSslFree>;

using EvpPkeyPtr = OpenSslPtr<EVP_PKEY>;
using EvpPkeyCtxPtr = OpenSslPtr<EVP_PKEY_CTX>;
using EvpMdCtxPtr = OpenSslPtr<EVP_MD_CTX>;
using X509Ptr = OpenSslPtr<X509>;
using X509NamePtr = OpenSslPtr<X509_NAME>;
using X509ExtensionPtr = OpenSslPtr<X509_EXTENSION>;
using X509StorePtr = OpenSslPtr<X509_STORE>;
using X509StoreCtxPtr = OpenSslPtr<X509_STORE_CTX>;
using X509StackPtr = OpenSslPtr<STACK_OF(X509)>;
using GeneralNamePtr = OpenSslPtr<GENERAL_NAME>;
using GeneralNamesPtr = OpenSslPtr<GENERAL_NAMES>;
using ExtendedKeyUsagePtr = OpenSslPtr<EXTENDED_KEY_USAGE>;
using Asn1ObjectPtr = OpenSslPtr<ASN1_OBJECT>;
using Asn1StringPtr = OpenSslPtr<ASN1_STRING>;  // also ASN1_INTEGER, ASN1_OCTET_STRING, ASN1_TIME
using BignumPtr = OpenSslPtr<BIGNUM>;
using BioPtr = OpenSslPtr<BIO>;
using OpenSslBytesPtr = OpenSslPtr<unsigned char>;  // buffers OpenSSL allocated (i2d_*, ...)

// Removes every entry from this thread's OpenSSL error queue and returns them joined by "; "
// (empty when the queue was empty).
inline std::string DrainOpenSslErrors() {
  std::string text;
  char buf[256];
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text;
}

// Throws CryptoError("<what>: <OpenSSL errors>"), or just `what` when OpenSSL queued no error.
[[noreturn]] inline void ThrowOpenSslError(const std::string& what) {
  const std::string errors = DrainOpenSslErrors();
  throw CryptoError(errors.empty() ? what : what + ": " + errors);
}

// A read-only memory BIO over `data` (which must outlive the BIO). Throws CryptoError.
inline BioPtr MemoryBio(std::string_view data) {
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) ThrowOpenSslError("allocating a memory BIO");
  return bio;
}

// The bytes written so far into a memory BIO created with BIO_new(BIO_s_mem()).
inline std::string MemoryBioContents(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, n > 0 ? static_cast<size_t>(n) : 0);
}

}  // namespace fedmed

#endif  // FEDMED_COMMON_CRYPTO_OPENSSL_UTIL_H_
