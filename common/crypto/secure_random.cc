#include "common/crypto/secure_random.h"

#include <openssl/rand.h>

#include "common/util/error.h"

namespace fedmed {

uint64_t SecureRandomUint64() {
  unsigned char bytes[8];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    throw CryptoError("OpenSSL RAND_bytes failed: no secure random numbers available");
  }
  uint64_t v = 0;
  for (const unsigned char b : bytes) v = (v << 8) | b;
  return v;
}

}  // namespace fedmed
