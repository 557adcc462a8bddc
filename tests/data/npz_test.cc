#include "common/data/npz.h"

#include <sys/resource.h>
#include <zip.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <functional>
#include <string>
#include <vector>

#include "common/util/error.h"
#include "tests/data/npz_test_util.h"

namespace fedmed {
namespace {

using namespace test_util;  // DataErrorMessage, NpyBytes, NpzEntry, TempDir, WriteNpz

TEST(NpzTest, ReadsStoredAndDeflatedEntries) {
  TempDir dir("npz");
  const std::string path = dir.File("small.npz");
  // 1000 bytes of a repeating pattern: deflate really compresses it.
  std::string pixels;
  for (int i = 0; i < 1000; ++i) pixels += static_cast<char>(i % 7);
  const std::string labels("\x00\x01\x01\x00", 4);
  WriteNpz(path, {{"images.npy", NpyBytes("|u1", {10, 10, 10}, pixels), /*deflate=*/true},
                  {"labels.npy", NpyBytes("|u1", {4, 1}, labels), /*deflate=*/false},
                  {"README.txt", "not an array", false}});

  NpzFile npz = NpzFile::Open(path);
  EXPECT_EQ(npz.Names(), (std::vector<std::string>{"images", "labels"}));
  EXPECT_TRUE(npz.Has("images"));
  EXPECT_TRUE(npz.Has("labels"));
  EXPECT_FALSE(npz.Has("README"));
  EXPECT_FALSE(npz.Has("images.npy"));

  const NpyArray images = npz.Read("images");
  EXPECT_EQ(images.shape, (std::vector<int64_t>{10, 10, 10}));
  EXPECT_EQ(images.data, pixels);
  const NpyArray l = npz.Read("labels");
  EXPECT_EQ(l.shape, (std::vector<int64_t>{4, 1}));
  EXPECT_EQ(NpyToInt64(l, "labels"), (std::vector<int64_t>{0, 1, 1, 0}));

  // Moving keeps the archive usable.
  NpzFile moved = std::move(npz);
  EXPECT_EQ(moved.Read("labels").data, labels);
}

TEST(NpzTest, MissingArrayNamesFileArrayAndWhatIsPresent) {
  TempDir dir("npz");
  const std::string path = dir.File("one.npz");
  WriteNpz(path, {{"train_images.npy", NpyBytes("|u1", {1}, "x")}});
  const NpzFile npz = NpzFile::Open(path);
  const std::string message = DataErrorMessage([&] { npz.Read("train_labels"); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("'train_labels'"), std::string::npos) << message;
  EXPECT_NE(message.find("train_images"), std::string::npos) << message;
}

TEST(NpzTest, CorruptArrayNamesFileAndArray) {
  TempDir dir("npz");
  const std::string path = dir.File("bad.npz");
  WriteNpz(path, {{"labels.npy", NpyBytes("|u1", {8}, "abc")}});  // 3 of 8 bytes
  const NpzFile npz = NpzFile::Open(path);
  const std::string message = DataErrorMessage([&] { npz.Read("labels"); });
  EXPECT_NE(message.find(path + ":labels.npy"), std::string::npos) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
}

TEST(NpzTest, DamagedDeflateStreamIsRefused) {
  TempDir dir("npz");
  const std::string path = dir.File("damaged.npz");
  std::string payload;
  for (int i = 0; i < 4000; ++i) payload += static_cast<char>((i * 37) % 251);
  WriteNpz(path, {{"a.npy", NpyBytes("|u1", {4000}, payload), true}});
  // Overwrite bytes in the middle of the compressed data (the file starts with a 30-byte local
  // header and the entry name). Inflating still succeeds; the CRC-32 check catches it.
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(200);
  f.write("\xde\xad\xbe\xef\xde\xad\xbe\xef", 8);
  f.close();
  const NpzFile npz = NpzFile::Open(path);
  const std::string message = DataErrorMessage([&] { npz.Read("a"); });
  EXPECT_NE(message.find(path + ":a.npy"), std::string::npos) << message;
  EXPECT_NE(message.find("corrupt"), std::string::npos) << message;  // here: a CRC mismatch
}

TEST(NpzTest, MissingFileNamesPath) {
  TempDir dir("npz");
  const std::string path = dir.File("nowhere.npz");
  const std::string message = DataErrorMessage([&] { NpzFile::Open(path); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("does not exist"), std::string::npos) << message;
}

TEST(NpzTest, NonZipFileNamesPath) {
  TempDir dir("npz");
  const std::string path = dir.File("text.npz");
  std::ofstream(path) << "this is a text file, not a zip archive\n";
  const std::string message = DataErrorMessage([&] { NpzFile::Open(path); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("zip"), std::string::npos) << message;
}

// Rewrites the uncompressed size recorded for every entry of the zip archive at `path` (local and
// central headers) to `size`: an archive that lies about its entries.
void ForgeUncompressedSize(const std::string& path, uint32_t size) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string bytes = buffer.str();
  const auto put32 = [&bytes](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) bytes[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
  };
  for (size_t at = 0; (at = bytes.find("PK\x03\x04", at)) != std::string::npos; at += 4) {
    put32(at + 22, size);
  }
  for (size_t at = 0; (at = bytes.find("PK\x01\x02", at)) != std::string::npos; at += 4) {
    put32(at + 24, size);
  }
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

int64_t PeakRssKb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

TEST(NpzLimitsTest, EntriesDeclaringGigabytesTheirBytesCannotHoldAreRefusedBeforeAllocating) {
  TempDir dir("npz");
  const std::string stored = dir.File("stored.npz");
  const std::string deflated = dir.File("deflated.npz");
  const std::string tiny = NpyBytes("|u1", {2}, std::string("\x01\x02", 2));
  WriteNpz(stored, {{"x.npy", tiny, /*deflate=*/false}});
  WriteNpz(deflated, {{"x.npy", tiny, /*deflate=*/true}});
  ForgeUncompressedSize(stored, 0xF0000000u);    // 3.75 GiB
  ForgeUncompressedSize(deflated, 0xF0000000u);
  const int64_t rss_before = PeakRssKb();
  const auto start = std::chrono::steady_clock::now();
  const std::string m1 = DataErrorMessage([&] { NpzFile::Open(stored).Read("x"); });
  const std::string m2 = DataErrorMessage([&] { NpzFile::Open(deflated).Read("x"); });
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.0);
  EXPECT_LT(PeakRssKb() - rss_before, 100 * 1024) << "peak RSS grew by more than 100 MB";
  EXPECT_NE(m1.find(stored + ":x.npy: stored (uncompressed) entry whose sizes differ (declares "
                    "4026531840 bytes uncompressed"),
            std::string::npos)
      << m1;
  EXPECT_NE(m2.find(deflated + ":x.npy: entry declares more bytes than deflate can produce"),
            std::string::npos)
      << m2;
}

TEST(NpzLimitsTest, AnEntryAboveTheConfiguredMaximumIsRefused) {
  TempDir dir("npz");
  const std::string path = dir.File("a.npz");
  WriteNpz(path, {{"x.npy", NpyBytes("|u1", {100}, std::string(100, 'a')), /*deflate=*/true}});
  const NpzFile npz = NpzFile::Open(path);
  EXPECT_EQ(npz.Read("x").data.size(), 100u);
  const std::string message = DataErrorMessage([&] { npz.Read("x", 64); });
  EXPECT_NE(message.find("x.npy: entry of "), std::string::npos) << message;
  EXPECT_NE(message.find("bytes is larger than the limit of 64 bytes"), std::string::npos)
      << message;
}

}  // namespace
}  // namespace fedmed
