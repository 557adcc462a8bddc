#include "common/crypto/sha256.h"

namespace fedmed {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_) ThrowOpenSslError("SHA-256: allocating the digest context");
  if (EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) {
    ThrowOpenSslError("SHA-256: initialising the digest");
  }
}

void Sha256::Update(const void* data, size_t n) {
  if (finished_) throw CryptoError("SHA-256: Update called after Finish");
  if (EVP_DigestUpdate(ctx_.get(), data, n) != 1) ThrowOpenSslError("SHA-256: hashing data");
}

std::array<uint8_t, 32> Sha256::Finish() {
  if (finished_) throw CryptoError("SHA-256: Finish called twice");
  finished_ = true;
  std::array<uint8_t, 32> digest{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), digest.data(), &len) != 1 || len != digest.size()) {
    ThrowOpenSslError("SHA-256: finishing the digest");
  }
  return digest;
}

std::string Sha256::FinishHex() {
  const std::array<uint8_t, 32> digest = Finish();
  return ToHex(digest.data(), digest.size());
}

std::string Sha256Hex(std::string_view data) {
  Sha256 sha;
  sha.Update(data);
  return sha.FinishHex();
}

std::string ToHex(const void* data, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const auto* bytes = static_cast<const uint8_t*>(data);
  std::string hex(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    hex[2 * i] = kDigits[bytes[i] >> 4];
    hex[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
  return hex;
}

}  // namespace fedmed
