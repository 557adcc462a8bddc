#include "common/crypto/secure_random.h"

#include <openssl/rand.h>

#include "common/util/byte_order.h"
#include "common/util/error.h"

namespace fedmed {

uint64_t SecureRandomUint64() {
  unsigned char bytes[8];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    throw CryptoError("OpenSSL RAND_bytes failed: no secure random numbers available");
  }
  return LoadLittleEndian64(bytes);
}

}  // namespace fedmed
