// Key agreement and authenticated encryption for secure aggregation (Bonawitz et al., "Practical
// Secure Aggregation for Privacy-Preserving Machine Learning", CCS 2017, section 4), all through
// OpenSSL 3's EVP API:
//
//   - X25519 (RFC 7748) key pairs: each site makes two per round, c (for encrypting the Shamir
//     shares it sends to each peer) and s (for the pairwise mask seeds);
//   - AgreeKey: X25519 Diffie-Hellman followed by HKDF-SHA256 (RFC 5869), so the 32-byte output
//     is a uniformly distributed key bound to its purpose (the HKDF info string);
//   - AES-256-GCM (NIST SP 800-38D) with a fresh random 96-bit nonce per message, which
//     encrypts and authenticates the shares the coordinator relays between sites.
//
// Private keys and agreed keys are held in SecretBytes, which wipes its memory
// (OPENSSL_cleanse) when destroyed.
#ifndef FEDMED_COMMON_SECAGG_KEY_AGREEMENT_H_
#define FEDMED_COMMON_SECAGG_KEY_AGREEMENT_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "common/secagg/masking.h"

namespace fedmed {

// Size of an X25519 public or private key in bytes.
inline constexpr size_t kX25519KeyBytes = 32;
// AES-256-GCM framing of AeadSeal: nonce and tag sizes in bytes.
inline constexpr size_t kAeadNonceBytes = 12;
inline constexpr size_t kAeadTagBytes = 16;

// Bytes that must not outlive their use: wiped with OPENSSL_cleanse on destruction and on
// reassignment. Move-only.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::string bytes) : bytes_(std::move(bytes)) {}
  SecretBytes(const MaskSeed& seed) : bytes_(seed.begin(), seed.end()) {}  // NOLINT: implicit
  ~SecretBytes() { Wipe(); }
  SecretBytes(SecretBytes&& other) noexcept : bytes_(std::move(other.bytes_)) { other.Wipe(); }
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  std::string_view view() const { return bytes_; }
  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  // The first 32 bytes as a mask seed. Throws FormatError unless size() == kMaskSeedBytes.
  MaskSeed AsSeed() const;
  // Overwrites the bytes with zeros and empties the object.
  void Wipe();

 private:
  std::string bytes_;
};

// One X25519 key pair.
struct X25519KeyPair {
  std::string public_key;   // kX25519KeyBytes raw bytes (RFC 7748 u-coordinate)
  SecretBytes private_key;  // kX25519KeyBytes raw bytes
};

// A fresh key pair from OpenSSL's CSPRNG. Throws CryptoError if OpenSSL fails.
X25519KeyPair GenerateX25519KeyPair();

// The 32-byte key HKDF-SHA256(salt = "fedmed-secagg-v1", IKM = X25519(private_key, peer_public),
// info = `info`). Both ends of a pair get the same key from their own private key and the other's
// public key. Throws CryptoError naming `what` (e.g. "the public key of site-2") when
// peer_public is not 32 bytes or the agreement fails (OpenSSL refuses low-order points, whose
// shared secret would be all zeros), and when private_key is not 32 bytes.
SecretBytes AgreeKey(const SecretBytes& private_key, std::string_view peer_public,
                     std::string_view info, const std::string& what);

// AES-256-GCM encryption of `plaintext` under `key` (32 bytes) with additional authenticated data
// `aad`: returns nonce (12 random bytes) || ciphertext (plaintext.size() bytes) || tag (16 bytes).
// Throws CryptoError if the key is not 32 bytes or OpenSSL fails.
std::string AeadSeal(const SecretBytes& key, std::string_view plaintext, std::string_view aad);

// Decrypts what AeadSeal made under the same key and aad. Returns false (and leaves *plaintext
// empty) when `sealed` is too short or fails authentication (altered bytes, another key or aad);
// never throws for that. Throws CryptoError if the key is not 32 bytes or OpenSSL fails.
bool AeadOpen(const SecretBytes& key, std::string_view sealed, std::string_view aad,
              SecretBytes* plaintext);

}  // namespace fedmed

#endif  // FEDMED_COMMON_SECAGG_KEY_AGREEMENT_H_
