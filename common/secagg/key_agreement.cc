#include "common/secagg/key_agreement.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <algorithm>
#include <memory>

#include "common/crypto/openssl_util.h"
#include "common/util/error.h"

namespace fedmed {
namespace {

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

constexpr std::string_view kHkdfSalt = "fedmed-secagg-v1";

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

void CheckKey(const SecretBytes& key, const char* what) {
  if (key.size() != 32) {
    throw CryptoError(std::string(what) + ": expected a 32-byte key, got " +
                      std::to_string(key.size()) + " bytes");
  }
}

}  // namespace

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Wipe();
    bytes_ = std::move(other.bytes_);
    other.Wipe();
  }
  return *this;
}

MaskSeed SecretBytes::AsSeed() const {
  if (bytes_.size() != kMaskSeedBytes) {
    throw FormatError("expected a " + std::to_string(kMaskSeedBytes) + "-byte seed, got " +
                      std::to_string(bytes_.size()) + " bytes");
  }
  MaskSeed seed;
  std::copy(bytes_.begin(), bytes_.end(), seed.begin());
  return seed;
}

void SecretBytes::Wipe() {
  if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
  bytes_.clear();
}

X25519KeyPair GenerateX25519KeyPair() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
  if (!key) ThrowOpenSslError("generating an X25519 key pair");
  X25519KeyPair pair;
  std::string pub(kX25519KeyBytes, '\0'), priv(kX25519KeyBytes, '\0');
  size_t pub_len = pub.size(), priv_len = priv.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), reinterpret_cast<unsigned char*>(pub.data()),
                                  &pub_len) != 1 ||
      EVP_PKEY_get_raw_private_key(key.get(), reinterpret_cast<unsigned char*>(priv.data()),
                                   &priv_len) != 1 ||
      pub_len != kX25519KeyBytes || priv_len != kX25519KeyBytes) {
    OPENSSL_cleanse(priv.data(), priv.size());
    ThrowOpenSslError("reading an X25519 key pair");
  }
  pair.public_key = std::move(pub);
  pair.private_key = SecretBytes(std::move(priv));
  return pair;
}

SecretBytes AgreeKey(const SecretBytes& private_key, std::string_view peer_public,
                     std::string_view info, const std::string& what) {
  if (private_key.size() != kX25519KeyBytes) {
    throw CryptoError("key agreement with " + what + ": the private key is " +
                      std::to_string(private_key.size()) + " bytes, expected 32");
  }
  if (peer_public.size() != kX25519KeyBytes) {
    throw CryptoError(what + ": expected a 32-byte X25519 public key, got " +
                      std::to_string(peer_public.size()) + " bytes");
  }
  EvpPkeyPtr own(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr,
                                              Bytes(private_key.view()), kX25519KeyBytes));
  EvpPkeyPtr peer(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, Bytes(peer_public), kX25519KeyBytes));
  if (!own || !peer) ThrowOpenSslError("loading X25519 keys for " + what);
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(own.get(), nullptr));
  std::string shared(kX25519KeyBytes, '\0');
  size_t shared_len = shared.size();
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) != 1 ||
      EVP_PKEY_derive(ctx.get(), reinterpret_cast<unsigned char*>(shared.data()), &shared_len) !=
          1 ||
      shared_len != kX25519KeyBytes) {
    OPENSSL_cleanse(shared.data(), shared.size());
    ThrowOpenSslError("X25519 key agreement with " + what);
  }
  SecretBytes ikm(std::move(shared));
  EvpPkeyCtxPtr kdf(EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr));
  std::string out(32, '\0');
  size_t out_len = out.size();
  if (!kdf || EVP_PKEY_derive_init(kdf.get()) != 1 ||
      EVP_PKEY_CTX_set_hkdf_md(kdf.get(), EVP_sha256()) != 1 ||
      EVP_PKEY_CTX_set1_hkdf_salt(kdf.get(), Bytes(kHkdfSalt), static_cast<int>(kHkdfSalt.size())) !=
          1 ||
      EVP_PKEY_CTX_set1_hkdf_key(kdf.get(), Bytes(ikm.view()), static_cast<int>(ikm.size())) != 1 ||
      EVP_PKEY_CTX_add1_hkdf_info(kdf.get(), Bytes(info), static_cast<int>(info.size())) != 1 ||
      EVP_PKEY_derive(kdf.get(), reinterpret_cast<unsigned char*>(out.data()), &out_len) != 1 ||
      out_len != 32) {
    OPENSSL_cleanse(out.data(), out.size());
    ThrowOpenSslError("HKDF-SHA256 of the key agreed with " + what);
  }
  return SecretBytes(std::move(out));
}

std::string AeadSeal(const SecretBytes& key, std::string_view plaintext, std::string_view aad) {
  CheckKey(key, "AES-256-GCM encryption");
  std::string out(kAeadNonceBytes + plaintext.size() + kAeadTagBytes, '\0');
  unsigned char* nonce = reinterpret_cast<unsigned char*>(out.data());
  if (RAND_bytes(nonce, static_cast<int>(kAeadNonceBytes)) != 1) {
    ThrowOpenSslError("drawing an AES-GCM nonce");
  }
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  unsigned char* body = nonce + kAeadNonceBytes;
  if (!ctx || EVP_EncryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), Bytes(key.view()), nonce, nullptr) != 1 ||
      (!aad.empty() &&
       EVP_EncryptUpdate(ctx.get(), nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) != 1) ||
      EVP_EncryptUpdate(ctx.get(), body, &len, Bytes(plaintext), static_cast<int>(plaintext.size())) !=
          1 ||
      EVP_EncryptFinal_ex(ctx.get(), body + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kAeadTagBytes),
                          body + plaintext.size()) != 1) {
    ThrowOpenSslError("AES-256-GCM encryption");
  }
  return out;
}

bool AeadOpen(const SecretBytes& key, std::string_view sealed, std::string_view aad,
              SecretBytes* plaintext) {
  CheckKey(key, "AES-256-GCM decryption");
  plaintext->Wipe();
  if (sealed.size() < kAeadNonceBytes + kAeadTagBytes) return false;
  const size_t n = sealed.size() - kAeadNonceBytes - kAeadTagBytes;
  const unsigned char* nonce = Bytes(sealed);
  const unsigned char* body = nonce + kAeadNonceBytes;
  std::string out(n, '\0');
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_DecryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), Bytes(key.view()), nonce, nullptr) != 1 ||
      (!aad.empty() &&
       EVP_DecryptUpdate(ctx.get(), nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) != 1) ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, body,
                        static_cast<int>(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kAeadTagBytes),
                          const_cast<unsigned char*>(body + n)) != 1) {
    OPENSSL_cleanse(out.data(), out.size());
    ThrowOpenSslError("AES-256-GCM decryption");
  }
  if (EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &len) != 1) {
    ERR_clear_error();
    OPENSSL_cleanse(out.data(), out.size());
    return false;  // authentication failed
  }
  *plaintext = SecretBytes(std::move(out));
  return true;
}

}  // namespace fedmed
