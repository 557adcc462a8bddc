// Unpredictable random numbers from OpenSSL's CSPRNG (RAND_bytes), for every random choice that
// protects privacy: the seeds of DP-SGD's Poisson sampling and noise, and of the noise added to
// an update. These must stay secret to the site: an adversary who knew the seed could regenerate
// the noise and subtract it.
#ifndef FEDMED_COMMON_CRYPTO_SECURE_RANDOM_H_
#define FEDMED_COMMON_CRYPTO_SECURE_RANDOM_H_

#include <cstdint>

namespace fedmed {

// 64 uniformly random bits from RAND_bytes. Throws CryptoError if OpenSSL's generator fails
// (it is not seeded, which does not happen on Linux with getrandom()).
uint64_t SecureRandomUint64();

}  // namespace fedmed

#endif  // FEDMED_COMMON_CRYPTO_SECURE_RANDOM_H_
