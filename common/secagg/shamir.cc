#include "common/secagg/shamir.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <set>
#include <string>

#include "common/util/byte_order.h"
#include "common/util/error.h"

namespace fedmed {
namespace {

using u128 = unsigned __int128;
using u64 = uint64_t;

// p = 2^127 - 1.
constexpr u128 kP = (static_cast<u128>(1) << 127) - 1;

// Wipes a vector of field elements (they hold secret material).
void Cleanse(std::vector<u128>& v) {
  if (!v.empty()) OPENSSL_cleanse(v.data(), v.size() * sizeof(u128));
}

// Holds field elements and wipes them on every path out of scope.
struct SecretElements {
  std::vector<u128> v;
  explicit SecretElements(size_t n) : v(n, 0) {}
  ~SecretElements() { Cleanse(v); }
  SecretElements(const SecretElements&) = delete;
  SecretElements& operator=(const SecretElements&) = delete;
};

u128 Add(u128 a, u128 b) {  // a, b < p, so a + b < 2^128
  u128 r = a + b;
  return r >= kP ? r - kP : r;
}

u128 Sub(u128 a, u128 b) { return a >= b ? a - b : a + (kP - b); }

// a * b mod p with a 128x128 -> 256-bit product and the Mersenne reduction 2^127 = 1 (mod p).
u128 Mul(u128 a, u128 b) {
  const u64 a0 = static_cast<u64>(a), a1 = static_cast<u64>(a >> 64);
  const u64 b0 = static_cast<u64>(b), b1 = static_cast<u64>(b >> 64);
  const u128 p00 = static_cast<u128>(a0) * b0;
  const u128 p01 = static_cast<u128>(a0) * b1;
  const u128 p10 = static_cast<u128>(a1) * b0;
  const u128 p11 = static_cast<u128>(a1) * b1;
  const u128 mid = (p00 >> 64) + static_cast<u64>(p01) + static_cast<u64>(p10);
  const u128 lo = (mid << 64) | static_cast<u64>(p00);
  const u128 hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);  // < 2^126 since a, b < 2^127
  // x = hi * 2^128 + lo = (x mod 2^127) + (x >> 127) * 2^127 = (x & p) + (x >> 127)  (mod p)
  u128 r = (lo & kP) + ((hi << 1) | (lo >> 127));
  r = (r & kP) + (r >> 127);
  return r >= kP ? r - kP : r;
}

u128 Pow(u128 base, u128 e) {
  u128 result = 1;
  while (e != 0) {
    if (e & 1) result = Mul(result, base);
    base = Mul(base, base);
    e >>= 1;
  }
  return result;
}

// a^(p-2) = a^-1 (mod p) for a != 0 (Fermat).
u128 Inverse(u128 a) { return Pow(a, kP - 2); }

// Field elements as kShamirElementBytes = 16 little-endian bytes.
void StoreElement(u128 v, uint8_t* out) {
  StoreLittleEndian64(out, static_cast<uint64_t>(v));
  StoreLittleEndian64(out + 8, static_cast<uint64_t>(v >> 64));
}

u128 LoadElement(const uint8_t* in) {
  return u128{LoadLittleEndian64(in + 8)} << 64 | LoadLittleEndian64(in);
}

// A uniform element of [0, p): 127 random bits, rejecting the single value p.
u128 RandomElement() {
  unsigned char bytes[16];
  u128 v;
  do {
    if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
      OPENSSL_cleanse(bytes, sizeof(bytes));
      throw CryptoError("OpenSSL RAND_bytes failed while sharing a secret");
    }
    v = LoadElement(bytes) & kP;
  } while (v == kP);
  OPENSSL_cleanse(bytes, sizeof(bytes));
  return v;
}

void CheckThreshold(int threshold) {
  if (threshold < 1) {
    throw ConfigError("Shamir threshold must be at least 1, got " + std::to_string(threshold));
  }
}

void CheckSecretSize(size_t size) {
  if (size > kShamirMaxSecretBytes) {
    throw ConfigError("Shamir secret of " + std::to_string(size) + " bytes is larger than the " +
                      std::to_string(kShamirMaxSecretBytes) + "-byte limit");
  }
}

size_t ChunkLength(size_t secret_size, size_t chunk) {
  return std::min(kShamirChunkBytes, secret_size - chunk * kShamirChunkBytes);
}

}  // namespace

size_t ShamirNumChunks(size_t secret_size) {
  return (secret_size + kShamirChunkBytes - 1) / kShamirChunkBytes;
}

std::vector<ShamirShare> ShamirSplit(std::string_view secret, int threshold, int num_shares) {
  CheckThreshold(threshold);
  if (num_shares < threshold || num_shares > kShamirMaxShares) {
    throw ConfigError("Shamir sharing needs threshold <= number of shares <= " +
                      std::to_string(kShamirMaxShares) + ", got threshold " +
                      std::to_string(threshold) + " and " + std::to_string(num_shares) +
                      " shares");
  }
  CheckSecretSize(secret.size());
  const size_t chunks = ShamirNumChunks(secret.size());
  const size_t t = static_cast<size_t>(threshold);

  // coeffs[c * t + k]: coefficient of x^k of chunk c's polynomial; k = 0 is the chunk itself.
  SecretElements coeffs(chunks * t);
  for (size_t c = 0; c < chunks; ++c) {
    u128 chunk = 0;
    const size_t len = ChunkLength(secret.size(), c);
    for (size_t b = 0; b < len; ++b) {
      chunk = (chunk << 8) | static_cast<uint8_t>(secret[c * kShamirChunkBytes + b]);
    }
    coeffs.v[c * t] = chunk;
    chunk = 0;
    for (size_t k = 1; k < t; ++k) coeffs.v[c * t + k] = RandomElement();
  }

  std::vector<ShamirShare> shares(static_cast<size_t>(num_shares));
  for (int i = 0; i < num_shares; ++i) {
    ShamirShare& share = shares[static_cast<size_t>(i)];
    share.x = static_cast<uint32_t>(i + 1);
    share.y.resize(chunks * kShamirElementBytes);
    const u128 x = share.x;
    for (size_t c = 0; c < chunks; ++c) {
      u128 y = 0;  // Horner
      for (size_t k = t; k-- > 0;) y = Add(Mul(y, x), coeffs.v[c * t + k]);
      StoreElement(y, share.y.data() + c * kShamirElementBytes);
      y = 0;
    }
  }
  return shares;
}

std::string ShamirCombine(const std::vector<ShamirShare>& shares, int threshold,
                          size_t secret_size) {
  CheckThreshold(threshold);
  CheckSecretSize(secret_size);
  const size_t t = static_cast<size_t>(threshold);
  if (shares.size() < t) {
    throw FormatError("Shamir reconstruction needs at least " + std::to_string(threshold) +
                      " shares, got " + std::to_string(shares.size()));
  }
  const size_t chunks = ShamirNumChunks(secret_size);
  std::set<uint32_t> seen;
  for (const ShamirShare& s : shares) {
    if (s.x == 0) throw FormatError("Shamir share with x = 0 (x must be 1..n)");
    if (!seen.insert(s.x).second) {
      throw FormatError("two Shamir shares with the same x = " + std::to_string(s.x));
    }
    if (s.y.size() != chunks * kShamirElementBytes) {
      throw FormatError("Shamir share x = " + std::to_string(s.x) + " has " +
                        std::to_string(s.y.size()) + " value bytes, expected " +
                        std::to_string(chunks * kShamirElementBytes) + " for a " +
                        std::to_string(secret_size) + "-byte secret");
    }
    for (size_t c = 0; c < chunks; ++c) {
      if (LoadElement(s.y.data() + c * kShamirElementBytes) >= kP) {
        throw FormatError("Shamir share x = " + std::to_string(s.x) +
                          " holds a value outside the field");
      }
    }
  }

  // Lagrange basis at 0: L_i = prod_{j != i} x_j / (x_j - x_i).
  std::vector<u128> lagrange(t);
  for (size_t i = 0; i < t; ++i) {
    u128 num = 1, den = 1;
    const u128 xi = shares[i].x;
    for (size_t j = 0; j < t; ++j) {
      if (j == i) continue;
      const u128 xj = shares[j].x;
      num = Mul(num, xj);
      den = Mul(den, Sub(xj, xi));
    }
    lagrange[i] = Mul(num, Inverse(den));
  }

  std::string secret(secret_size, '\0');
  SecretElements value(1);
  for (size_t c = 0; c < chunks; ++c) {
    u128& v = value.v[0];
    v = 0;
    for (size_t i = 0; i < t; ++i) {
      u128 y = LoadElement(shares[i].y.data() + c * kShamirElementBytes);
      v = Add(v, Mul(lagrange[i], y));
      y = 0;
    }
    const size_t len = ChunkLength(secret_size, c);
    if ((v >> (8 * len)) != 0) {
      OPENSSL_cleanse(&secret[0], secret.size());
      throw FormatError("Shamir shares do not rebuild a valid " + std::to_string(secret_size) +
                        "-byte secret: a share is wrong or was tampered with");
    }
    for (size_t b = len; b-- > 0;) {
      secret[c * kShamirChunkBytes + b] = static_cast<char>(static_cast<uint8_t>(v));
      v >>= 8;
    }
  }
  return secret;
}

std::string EncodeShamirShare(const ShamirShare& share) {
  std::string out(4 + share.y.size(), '\0');
  StoreBigEndian32(&out[0], share.x);
  std::copy(share.y.begin(), share.y.end(), out.begin() + 4);
  return out;
}

ShamirShare DecodeShamirShare(std::string_view bytes) {
  if (bytes.size() < 4 || (bytes.size() - 4) % kShamirElementBytes != 0) {
    throw FormatError("an encoded Shamir share must be 4 bytes of x plus a multiple of " +
                      std::to_string(kShamirElementBytes) + " bytes, got " +
                      std::to_string(bytes.size()) + " bytes");
  }
  ShamirShare share;
  share.x = LoadBigEndian32(bytes.data());
  if (share.x == 0 || share.x > static_cast<uint32_t>(kShamirMaxShares)) {
    throw FormatError("encoded Shamir share has x = " + std::to_string(share.x) +
                      ", expected 1.." + std::to_string(kShamirMaxShares));
  }
  share.y.assign(bytes.begin() + 4, bytes.end());
  for (size_t off = 0; off < share.y.size(); off += kShamirElementBytes) {
    if (LoadElement(share.y.data() + off) >= kP) {
      OPENSSL_cleanse(share.y.data(), share.y.size());
      throw FormatError("encoded Shamir share x = " + std::to_string(share.x) +
                        " holds a value outside the field");
    }
  }
  return share;
}

}  // namespace fedmed
