// Byte-order helpers: the exact bytes of each width and order, and round trips.
#include "common/util/byte_order.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace fedmed {
namespace {

TEST(ByteOrderTest, LittleEndianBytes) {
  unsigned char b4[4];
  StoreLittleEndian32(b4, 0x01020304u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(b4), 4), std::string("\x04\x03\x02\x01", 4));
  char b8[8];
  StoreLittleEndian64(b8, 0x0102030405060708ull);
  EXPECT_EQ(std::string(b8, 8), std::string("\x08\x07\x06\x05\x04\x03\x02\x01", 8));

  std::string s = "x";
  AppendLittleEndian32(&s, 0xA1B2C3D4u);
  AppendLittleEndian64(&s, 0xFFull);
  AppendLittleEndian(&s, 0x0304, 2);
  EXPECT_EQ(s, std::string("x\xD4\xC3\xB2\xA1\xFF\0\0\0\0\0\0\0\x04\x03", 1 + 4 + 8 + 2));
}

TEST(ByteOrderTest, LittleEndianLoads) {
  const std::string s("\xD4\xC3\xB2\xA1\xFF\xEE\xDD\xCC", 8);
  EXPECT_EQ(LoadLittleEndian32(s.data()), 0xA1B2C3D4u);
  EXPECT_EQ(LoadLittleEndian64(s.data()), 0xCCDDEEFFA1B2C3D4ull);
  EXPECT_EQ(LoadLittleEndian32(reinterpret_cast<const unsigned char*>(s.data()) + 4),
            0xCCDDEEFFu);
  EXPECT_EQ(LoadLittleEndian(s.data(), 1), 0xD4u);
  EXPECT_EQ(LoadLittleEndian(s.data(), 2), 0xC3D4u);
  EXPECT_EQ(LoadLittleEndian(s.data(), 3), 0xB2C3D4u);  // zero extended
  EXPECT_EQ(LoadLittleEndian(s.data(), 8), 0xCCDDEEFFA1B2C3D4ull);
}

TEST(ByteOrderTest, BigEndian) {
  std::string s;
  AppendBigEndian32(&s, 0x01020304u);
  EXPECT_EQ(s, std::string("\x01\x02\x03\x04", 4));
  unsigned char b[4];
  StoreBigEndian32(b, 0xA1B2C3D4u);
  EXPECT_EQ(b[0], 0xA1);
  EXPECT_EQ(b[3], 0xD4);
  EXPECT_EQ(LoadBigEndian32(b), 0xA1B2C3D4u);
  EXPECT_EQ(LoadBigEndian32(s.data()), 0x01020304u);
}

TEST(ByteOrderTest, RoundTrips) {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{0x80}, uint64_t{0xFFFFFFFF},
                     uint64_t{0x8000000000000000}, ~uint64_t{0}, uint64_t{0x0123456789ABCDEF}}) {
    unsigned char b[8];
    StoreLittleEndian64(b, v);
    EXPECT_EQ(LoadLittleEndian64(b), v);
    StoreLittleEndian32(b, static_cast<uint32_t>(v));
    EXPECT_EQ(LoadLittleEndian32(b), static_cast<uint32_t>(v));
    StoreBigEndian32(b, static_cast<uint32_t>(v));
    EXPECT_EQ(LoadBigEndian32(b), static_cast<uint32_t>(v));
    for (size_t width = 1; width <= 8; ++width) {
      std::string s;
      AppendLittleEndian(&s, v, width);
      ASSERT_EQ(s.size(), width);
      const uint64_t mask = width == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * width)) - 1;
      EXPECT_EQ(LoadLittleEndian(s.data(), width), v & mask) << width;
    }
  }
}

}  // namespace
}  // namespace fedmed
