#include "common/data/npy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/util/error.h"
#include "tests/data/npz_test_util.h"

namespace fedmed {
namespace {

using test_util::NpyBytes;

// Expects `f` to throw DataError whose message contains every one of `parts`.
template <typename F>
void ExpectDataError(F f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    for (const std::string& part : parts) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "message '" << e.what() << "' lacks '" << part << "'";
    }
  }
}

TEST(NpyTest, ParsesVersion1Uint8Matrix) {
  const std::string data = {1, 2, 3, 4, 5, static_cast<char>(255)};
  const NpyArray a = ParseNpy(NpyBytes("|u1", {2, 3}, data), "a.npy");
  EXPECT_EQ(a.dtype, "|u1");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.NumElements(), 6);
  EXPECT_EQ(a.data, data);
  EXPECT_EQ(NpyToInt64(a, "a.npy"), (std::vector<int64_t>{1, 2, 3, 4, 5, 255}));
}

TEST(NpyTest, ParsesVersion2SignedInt64WithHandWrittenHeader) {
  // A 2.0 header built byte by byte: 4-byte little-endian header length, double-quoted strings,
  // keys in an unusual order, no trailing comma.
  const std::string header = "{\"shape\": (3,), \"fortran_order\": False, \"descr\": \"<i8\"}\n";
  std::string bytes = std::string("\x93NUMPY\x02\x00", 8);
  bytes += static_cast<char>(header.size());
  bytes += std::string(3, '\0');
  bytes += header;
  for (int64_t v : {int64_t{-1}, int64_t{7}, int64_t{1} << 40}) {
    for (int i = 0; i < 8; ++i) {
      bytes += static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff);
    }
  }
  const NpyArray a = ParseNpy(bytes, "v2.npy");
  EXPECT_EQ(a.dtype, "<i8");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(NpyToInt64(a, "v2.npy"), (std::vector<int64_t>{-1, 7, int64_t{1} << 40}));
}

TEST(NpyTest, ParsesVersion3ScalarAndSignExtendsSmallInts) {
  const NpyArray scalar = ParseNpy(NpyBytes("<f8", {}, std::string(8, '\0'), 3), "s.npy");
  EXPECT_TRUE(scalar.shape.empty());
  EXPECT_EQ(scalar.NumElements(), 1);

  const NpyArray i2 = ParseNpy(NpyBytes("<i2", {2}, std::string("\xfe\xff\x05\x00", 4)), "i2");
  EXPECT_EQ(NpyToInt64(i2, "i2"), (std::vector<int64_t>{-2, 5}));
  const NpyArray i1 = ParseNpy(NpyBytes("|i1", {1}, "\x80"), "i1");
  EXPECT_EQ(NpyToInt64(i1, "i1"), (std::vector<int64_t>{-128}));
}

TEST(NpyTest, ZeroSizedArray) {
  const NpyArray a = ParseNpy(NpyBytes("<i4", {0, 5}, ""), "empty.npy");
  EXPECT_EQ(a.NumElements(), 0);
  EXPECT_TRUE(NpyToInt64(a, "empty.npy").empty());
}

TEST(NpyTest, TruncatedDataNamesArrayAndByteCounts) {
  // (2, 3) int32 needs 24 bytes; give 20.
  const std::string bytes = NpyBytes("<i4", {2, 3}, std::string(20, '\0'));
  ExpectDataError([&] { ParseNpy(bytes, "x.npz:train_labels.npy"); },
                  {"x.npz:train_labels.npy", "24", "20", "truncated"});
}

TEST(NpyTest, TruncatedHeaderIsRefused) {
  const std::string bytes = NpyBytes("|u1", {4}, "abcd");
  ExpectDataError([&] { ParseNpy(bytes.substr(0, 30), "cut.npy"); }, {"cut.npy", "header"});
}

TEST(NpyTest, FortranOrderIsRefused) {
  const std::string bytes = NpyBytes("|u1", {2, 2}, "abcd", 1, /*fortran_order=*/true);
  ExpectDataError([&] { ParseNpy(bytes, "f.npy"); }, {"f.npy", "Fortran"});
}

TEST(NpyTest, UnsupportedDtypesAreRefused) {
  ExpectDataError([] { ParseNpy(NpyBytes(">i4", {1}, "abcd"), "big.npy"); },
                  {"big.npy", "unsupported dtype '>i4'"});
  ExpectDataError([] { ParseNpy(NpyBytes("<U3", {1}, std::string(12, 'a')), "str.npy"); },
                  {"str.npy", "'<U3'"});
  ExpectDataError([] { ParseNpy(NpyBytes("<c16", {1}, std::string(16, 'a')), "c.npy"); },
                  {"c.npy", "'<c16'"});
}

TEST(NpyTest, MalformedFilesAreRefused) {
  ExpectDataError([] { ParseNpy("PK\x03\x04 not npy", "zip.npy"); }, {"zip.npy", "magic"});
  std::string v4 = NpyBytes("|u1", {1}, "a");
  v4[6] = 4;
  ExpectDataError([&] { ParseNpy(v4, "v4.npy"); }, {"v4.npy", "version 4.0"});
  std::string bad_shape = NpyBytes("|u1", {1}, "a");
  bad_shape.replace(bad_shape.find("(1,)"), 4, "(-1)");  // same length: the header stays valid
  ExpectDataError([&] { ParseNpy(bad_shape, "neg.npy"); }, {"neg.npy", "malformed"});
}

TEST(NpyTest, NonIntegerArraysAreNotConvertedToInt64) {
  const NpyArray f = ParseNpy(NpyBytes("<f4", {1}, std::string(4, '\0')), "f.npy");
  ExpectDataError([&] { NpyToInt64(f, "labels.npy"); }, {"labels.npy", "<f4"});
  const NpyArray b = ParseNpy(NpyBytes("|b1", {1}, std::string(1, '\1')), "b.npy");
  ExpectDataError([&] { NpyToInt64(b, "mask.npy"); }, {"mask.npy", "|b1"});
}

TEST(NpyTest, FormatShapeLikeNumPy) {
  EXPECT_EQ(FormatShape({}), "()");
  EXPECT_EQ(FormatShape({5}), "(5,)");
  EXPECT_EQ(FormatShape({4708, 28, 28}), "(4708, 28, 28)");
}

}  // namespace
}  // namespace fedmed
