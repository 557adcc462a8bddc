#include "common/data/npz.h"

#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "common/util/error.h"
#include "tests/data/npz_test_util.h"

namespace fedmed {
namespace {

using test_util::DataErrorMessage;
using test_util::NpyBytes;
using test_util::NpzEntry;
using test_util::TempDir;
using test_util::WriteNpz;

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

}  // namespace
}  // namespace fedmed
