// SHA-256 against the FIPS 180-2 (Appendix B) test vectors.
#include "common/crypto/sha256.h"

#include <gtest/gtest.h>

#include <string>

#include "common/util/error.h"

namespace fedmed {
namespace {

TEST(Sha256Test, OneBlockMessageAbc) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, EmptyMessage) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256Test, MultiBlockMessage448Bits) {
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Test, OneMillionAFedInUnevenPieces) {
  Sha256 sha;
  const std::string piece(997, 'a');  // a prime, so pieces straddle the 64-byte blocks
  size_t fed = 0;
  while (fed + piece.size() <= 1000000) {
    sha.Update(piece);
    fed += piece.size();
  }
  sha.Update(piece.data(), 1000000 - fed);
  EXPECT_EQ(sha.FinishHex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, FinishReturnsRawBytes) {
  Sha256 sha;
  sha.Update("abc");
  const std::array<uint8_t, 32> digest = sha.Finish();
  EXPECT_EQ(digest[0], 0xba);
  EXPECT_EQ(digest[31], 0xad);
  EXPECT_EQ(ToHex(digest.data(), digest.size()), Sha256Hex("abc"));
}

TEST(Sha256Test, UseAfterFinishThrows) {
  Sha256 sha;
  sha.Update("abc");
  sha.Finish();
  EXPECT_THROW(sha.Finish(), CryptoError);
  EXPECT_THROW(sha.Update("more"), CryptoError);
}

}  // namespace
}  // namespace fedmed
