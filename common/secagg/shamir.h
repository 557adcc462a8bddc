// Shamir secret sharing (A. Shamir, "How to share a secret", CACM 1979) over the prime field
// GF(p), p = 2^127 - 1 (a Mersenne prime), for the secure-aggregation protocol of Bonawitz et al.,
// "Practical Secure Aggregation for Privacy-Preserving Machine Learning" (CCS 2017): each site
// shares its self-mask seed and its masking private key among the other sites, so that any t
// survivors can rebuild what a dropped (or surviving) site held, and t-1 learn nothing.
//
// A byte-string secret (at most kShamirMaxSecretBytes) is cut into 15-byte chunks (the last may be
// shorter); each chunk, read as a big-endian integer (< 2^120 < p), is the constant term of its own
// random polynomial of degree t-1 whose other coefficients are uniform in [0, p) from OpenSSL's
// RAND_bytes (rejection sampling). Share i (x = i, 1 <= i <= n) holds the polynomials' values at x.
// Reconstruction is Lagrange interpolation at 0 (inverses by Fermat's little theorem).
//
// Shares are not authenticated here: the protocol encrypts each one with AES-256-GCM. A tampered
// or wrong share makes ShamirCombine return a different secret or, most of the time, throw
// FormatError (a rebuilt chunk that does not fit its byte length).
//
//   auto shares = ShamirSplit(seed, /*threshold=*/3, /*num_shares=*/5);
//   std::string again = ShamirCombine({shares[4], shares[0], shares[2]}, 3, seed.size());
#ifndef FEDMED_COMMON_SECAGG_SHAMIR_H_
#define FEDMED_COMMON_SECAGG_SHAMIR_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fedmed {

// Largest secret ShamirSplit accepts, in bytes.
inline constexpr size_t kShamirMaxSecretBytes = 1024;
// Secret bytes per field element (15 bytes = 120 bits < 127).
inline constexpr size_t kShamirChunkBytes = 15;
// Bytes of one field element in ShamirShare::y (little-endian, value < 2^127 - 1).
inline constexpr size_t kShamirElementBytes = 16;
// Largest number of shares (and so of sites sharing with each other).
inline constexpr int kShamirMaxShares = 1 << 16;

// One share of a secret: the evaluation point x (1..n) and, for each 15-byte chunk of the secret,
// the value of that chunk's polynomial at x as kShamirElementBytes little-endian bytes. The y bytes
// are as secret as the secret itself; callers wipe them (OPENSSL_cleanse) when done.
struct ShamirShare {
  uint32_t x = 0;
  std::vector<uint8_t> y;  // kShamirElementBytes * ShamirNumChunks(secret size) bytes
};

// Number of field elements (chunks) a secret of `secret_size` bytes is shared as:
// ceil(secret_size / 15).
size_t ShamirNumChunks(size_t secret_size);

// Splits `secret` (0..1024 bytes) into `num_shares` shares with x = 1..num_shares, any `threshold`
// of which rebuild it with ShamirCombine and any threshold-1 of which reveal nothing about it
// (information-theoretically). Throws ConfigError unless 1 <= threshold <= num_shares <= 2^16 and
// secret.size() <= 1024; CryptoError if RAND_bytes fails. Random coefficients are wiped before
// returning.
std::vector<ShamirShare> ShamirSplit(std::string_view secret, int threshold, int num_shares);

// Rebuilds a secret of `secret_size` bytes from shares made by ShamirSplit with this `threshold`.
// Uses the first `threshold` entries of `shares` (any order, any subset of x values); extra entries
// are only checked for format. Throws ConfigError if threshold < 1 or secret_size > 1024;
// FormatError if fewer than `threshold` shares are given, an x is 0 or repeated, a share's y length
// is not kShamirElementBytes * ShamirNumChunks(secret_size), a y element is not below p, or a
// rebuilt chunk does not fit its byte length (wrong or tampered shares). Without an error, the
// result equals the secret exactly when the shares are genuine.
std::string ShamirCombine(const std::vector<ShamirShare>& shares, int threshold,
                          size_t secret_size);

// A share as bytes for encryption and transport: x as 4 big-endian bytes, then y.
std::string EncodeShamirShare(const ShamirShare& share);

// Inverse of EncodeShamirShare. Throws FormatError if `bytes` is shorter than 4 bytes, the y part
// is not a whole number of field elements, x is 0 or above 2^16, or an element is not below p.
ShamirShare DecodeShamirShare(std::string_view bytes);

}  // namespace fedmed

#endif  // FEDMED_COMMON_SECAGG_SHAMIR_H_
