#include "common/transport/chunking.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/util/error.h"

namespace fedmed {
namespace {

TEST(ChunkingTest, SplitsIntoPiecesOfAtMostTheLimitAndReassembles) {
  std::string data(3 * kMaxChunkBytes + 123, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  std::vector<std::size_t> sizes;
  ChunkAssembler assembler(static_cast<int64_t>(data.size()), Sha256Hex(data), "test model");
  EXPECT_TRUE(ForEachChunk(data, [&](std::string_view piece) {
    sizes.push_back(piece.size());
    assembler.Append(piece);
    return true;
  }));
  EXPECT_EQ(sizes, (std::vector<std::size_t>{kMaxChunkBytes, kMaxChunkBytes, kMaxChunkBytes, 123}));
  EXPECT_EQ(assembler.Finish(), data);
}

// A stream cut after two chunks: the receiver keeps what it has, a second stream resumes from
// there, and the digest of the whole is checked; a wrong prefix fails that check.
TEST(ChunkingTest, ResumesATransferCutPartWay) {
  std::string data(3 * kMaxChunkBytes + 5, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 13);
  const auto size = static_cast<int64_t>(data.size());
  ChunkAssembler first(size, Sha256Hex(data), "update");
  first.Append(std::string_view(data).substr(0, kMaxChunkBytes));
  first.Append(std::string_view(data).substr(kMaxChunkBytes, kMaxChunkBytes));
  std::string kept = first.TakeReceived();
  ASSERT_EQ(kept.size(), 2 * kMaxChunkBytes);
  ChunkAssembler second(size, Sha256Hex(data), "update");
  second.Resume(kept);
  EXPECT_EQ(second.received(), static_cast<int64_t>(kept.size()));
  ForEachChunk(std::string_view(data).substr(kept.size()), [&](std::string_view piece) {
    second.Append(piece);
    return true;
  });
  EXPECT_EQ(second.Finish(), data);

  kept[7] ^= 1;  // a prefix that is not the update's
  ChunkAssembler wrong(size, Sha256Hex(data), "update");
  wrong.Resume(kept);
  ForEachChunk(std::string_view(data).substr(kept.size()), [&](std::string_view piece) {
    wrong.Append(piece);
    return true;
  });
  EXPECT_THROW(wrong.Finish(), FormatError);
  ChunkAssembler longer(4, Sha256Hex("abcd"), "update");
  EXPECT_THROW(longer.Resume("abcde"), FormatError);
}

TEST(ChunkingTest, StopsWhenTheStreamBreaks) {
  int calls = 0;
  EXPECT_FALSE(ForEachChunk(std::string(5, 'x'), [&](std::string_view) { return ++calls < 2; }, 2));
  EXPECT_EQ(calls, 2);
}

TEST(ChunkingTest, DetectsEveryWayATransferCanBeWrong) {
  const std::string data = "model bytes";
  const std::string digest = Sha256Hex(data);
  {  // one flipped byte
    ChunkAssembler a(static_cast<int64_t>(data.size()), digest, "update from site-2");
    std::string bad = data;
    bad[3] ^= 1;
    a.Append(bad);
    try {
      a.Finish();
      FAIL();
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("update from site-2: SHA-256 mismatch"),
                std::string::npos);
    }
  }
  {  // truncated
    ChunkAssembler a(static_cast<int64_t>(data.size()), digest, "x");
    a.Append(data.substr(0, 4));
    EXPECT_THROW(a.Finish(), FormatError);
  }
  {  // more than announced
    ChunkAssembler a(4, digest, "x");
    EXPECT_THROW(a.Append(data), FormatError);
  }
  // An oversized chunk, an absurd size, a malformed digest.
  ChunkAssembler big(kMaxTransferBytes, digest, "x");
  EXPECT_THROW(big.Append(std::string(kMaxChunkBytes + 1, 'a')), FormatError);
  EXPECT_THROW(ChunkAssembler(kMaxTransferBytes + 1, digest, "x"), FormatError);
  EXPECT_THROW(ChunkAssembler(-1, digest, "x"), FormatError);
  EXPECT_THROW(ChunkAssembler(4, "ABC", "x"), FormatError);
}

// Empty chunks, and more chunks than the size allows, are refused at once (a peer cannot keep
// the receiver reading 200,000 empty chunks); an empty transfer is its one empty chunk.
TEST(ChunkingTest, EmptyAndTooManyChunksAreRefused) {
  const std::string data(200 * 1024, 'd');
  const std::string digest = Sha256Hex(data);
  ChunkAssembler empty_chunk(static_cast<int64_t>(data.size()), digest, "update from site-9");
  try {
    empty_chunk.Append("");
    FAIL() << "an empty chunk was taken";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("update from site-9: an empty chunk"), std::string::npos)
        << e.what();
  }
  // 200 KiB may come in 1 + ceil(200 / 64) = 5 chunks, not 6.
  ChunkAssembler five(static_cast<int64_t>(data.size()), digest, "x");
  for (int i = 0; i < 5; ++i) five.Append(data.substr(0, 1));
  EXPECT_THROW(five.Append(data.substr(0, 1)), FormatError);
  ChunkAssembler nothing(0, Sha256Hex(""), "x");
  EXPECT_TRUE(ForEachChunk("", [&](std::string_view piece) {
    nothing.Append(piece);
    return true;
  }));
  EXPECT_EQ(nothing.Finish(), "");
}

}  // namespace
}  // namespace fedmed
