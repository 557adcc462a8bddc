// SHA-256 (FIPS 180-4) through OpenSSL's EVP interface.
//
// Used for the digests that travel with every model and update (see fedmed.proto) and for
// certificate fingerprints. Digests are shown as 64 lowercase hex characters.
#ifndef FEDMED_COMMON_CRYPTO_SHA256_H_
#define FEDMED_COMMON_CRYPTO_SHA256_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/crypto/openssl_util.h"

namespace fedmed {

// Incremental SHA-256: feed the message in any number of pieces, then call Finish (or FinishHex)
// once. Not copyable; movable. Not thread-safe (one instance per stream).
class Sha256 {
 public:
  // Throws CryptoError if OpenSSL cannot set up the digest.
  Sha256();

  // Appends `n` bytes at `data` to the message. Throws CryptoError after Finish.
  void Update(const void* data, size_t n);
  void Update(std::string_view s) { Update(s.data(), s.size()); }

  // Returns the 32-byte digest of everything passed to Update. Call at most once; a second call
  // (or Update afterwards) throws CryptoError.
  std::array<uint8_t, 32> Finish();
  // Finish() as 64 lowercase hex characters.
  std::string FinishHex();

 private:
  EvpMdCtxPtr ctx_;
  bool finished_ = false;
};

// SHA-256 of `data` as 64 lowercase hex characters, e.g.
// Sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".
std::string Sha256Hex(std::string_view data);

// `n` bytes at `data` as 2n lowercase hex characters.
std::string ToHex(const void* data, size_t n);

}  // namespace fedmed

#endif  // FEDMED_COMMON_CRYPTO_SHA256_H_
