#include "common/model/model_state.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "common/util/error.h"

namespace fedmed {
namespace {

// Expects `f` to throw FormatError whose message contains every one of `parts`.
template <typename F>
void ExpectFormatError(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "expected FormatError";
  } catch (const FormatError& e) {
    for (const std::string& part : parts) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "message \"" << e.what() << "\" lacks \"" << part << "\"";
    }
  }
}

// A string literal's bytes, embedded NULs included.
template <size_t N>
std::string Raw(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

ModelState SmallState() {
  ModelState s;
  s.tensors.push_back({"a", {2}, {1.0f, -2.0f}});
  s.tensors.push_back({"b", {}, {0.5f}});
  return s;
}

// A state with awkward values (denormals, -0, extremes), seeded.
ModelState RandomState() {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  ModelState s;
  s.tensors.push_back({"conv1.weight", {4, 1, 3, 3}, {}});
  s.tensors.push_back({"conv1.bias", {4}, {}});
  s.tensors.push_back({"fc.weight", {2, 0}, {}});
  s.tensors.push_back({"layer1.0.gn1.weight", {5}, {}});
  for (NamedTensor& t : s.tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    for (int64_t i = 0; i < n; ++i) t.values.push_back(normal(rng));
  }
  s.tensors[3].values = {-0.0f, std::numeric_limits<float>::denorm_min(),
                         std::numeric_limits<float>::max(), std::numeric_limits<float>::lowest(),
                         std::numeric_limits<float>::min()};
  return s;
}

void ExpectBitIdentical(const ModelState& a, const ModelState& b) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].name, b.tensors[i].name);
    EXPECT_EQ(a.tensors[i].shape, b.tensors[i].shape);
    ASSERT_EQ(a.tensors[i].values.size(), b.tensors[i].values.size());
    EXPECT_EQ(0, std::memcmp(a.tensors[i].values.data(), b.tensors[i].values.data(),
                             a.tensors[i].values.size() * sizeof(float)))
        << a.tensors[i].name;
  }
}

TEST(ModelStateTest, EncodesTheDocumentedBytes) {
  const std::string expected(
      "FMST"
      "\x01\x00\x00\x00"  // version
      "\x02\x00\x00\x00"  // tensor count
      "\x01\x00\x00\x00"
      "a"
      "\x01\x00\x00\x00"                  // rank
      "\x02\x00\x00\x00\x00\x00\x00\x00"  // dim
      "\x01"                              // float32
      "\x00\x00\x80\x3f"                  // 1.0f
      "\x00\x00\x00\xc0"                  // -2.0f
      "\x01\x00\x00\x00"
      "b"
      "\x00\x00\x00\x00"  // rank 0
      "\x01"
      "\x00\x00\x00\x3f",  // 0.5f
      52);
  EXPECT_EQ(EncodeModelState(SmallState()), expected);
}

TEST(ModelStateTest, RoundTripIsBitIdentical) {
  const ModelState state = RandomState();
  const std::string bytes = EncodeModelState(state);
  const ModelState decoded = DecodeModelState(bytes, "test state");
  ExpectBitIdentical(state, decoded);
  EXPECT_EQ(EncodeModelState(decoded), bytes);
  EXPECT_EQ(EncodeModelState(RandomState()), bytes);  // deterministic
  EXPECT_TRUE(DecodeModelState(EncodeModelState(ModelState{}), "empty").tensors.empty());
}

// Found by fuzz/fuzz_model_state: a tensor with a 0 dim has no values, and decoding it passed the
// empty vector's null data pointer to memcpy (undefined behaviour, reported by UBSan).
TEST(ModelStateTest, TensorsWithAZeroDimRoundTrip) {
  ModelState state;
  state.tensors.push_back({"empty", {0, 3}, {}});
  state.tensors.push_back({"w", {2}, {1.0f, 2.0f}});
  const std::string bytes = EncodeModelState(state);
  const ModelState decoded = DecodeModelState(bytes, "test state");
  ASSERT_EQ(decoded.tensors.size(), 2u);
  EXPECT_EQ(decoded.tensors[0].shape, (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(decoded.tensors[0].values.empty());
  EXPECT_EQ(decoded.tensors[1].values, (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(EncodeModelState(decoded), bytes);
}

TEST(ModelStateTest, EveryTruncationIsAFormatError) {
  const std::string bytes = EncodeModelState(RandomState());
  for (size_t length = 0; length < bytes.size(); ++length) {
    SCOPED_TRACE("prefix of " + std::to_string(length) + " bytes");
    ExpectFormatError([&] { DecodeModelState(std::string_view(bytes).substr(0, length), "cut"); },
                      {"'cut'"});
  }
}

TEST(ModelStateTest, RejectsBadHeaderAndTrailingBytes) {
  const std::string bytes = EncodeModelState(SmallState());
  std::string bad = bytes;
  bad[0] = 'X';
  ExpectFormatError([&] { DecodeModelState(bad, "update from site-2 for round 3"); },
                    {"update from site-2 for round 3", "magic"});
  bad = bytes;
  bad[4] = 2;
  ExpectFormatError([&] { DecodeModelState(bad, "v"); }, {"version 2", "expected 1"});
  ExpectFormatError([&] { DecodeModelState(bytes + '\0', "t"); }, {"1 trailing bytes"});
  bad = bytes;
  bad[12 + 4 + 1 + 4 + 8] = 2;  // dtype tag of "a"
  ExpectFormatError([&] { DecodeModelState(bad, "d"); }, {"'a'", "dtype tag 2"});
}

TEST(ModelStateTest, RejectsAbsurdSizesBeforeAllocating) {
  const std::string bytes = EncodeModelState(SmallState());
  std::string bad = bytes;
  bad.replace(8, 4, Raw("\xff\xff\xff\xff"));  // tensor count 2^32 - 1
  ExpectFormatError([&] { DecodeModelState(bad, "c"); }, {"tensor count 4294967295"});
  bad = bytes;
  bad.replace(21, 8, Raw("\x00\x00\x00\x00\x00\x01\x00\x00"));  // dim of "a" = 2^40
  ExpectFormatError([&] { DecodeModelState(bad, "d"); }, {"'a'", "dim 0 = 1099511627776"});
  bad = bytes;
  bad.replace(12, 4, Raw("\xff\xff\xff\x7f"));  // name length
  ExpectFormatError([&] { DecodeModelState(bad, "n"); }, {"name length"});
  bad = bytes;
  bad.replace(17, 4, Raw("\x09\x00\x00\x00"));  // rank 9 of "a"
  ExpectFormatError([&] { DecodeModelState(bad, "r"); }, {"rank 9"});
}

TEST(ModelStateTest, RejectsNonFiniteValuesAndRepeatedNames) {
  std::string bad = EncodeModelState(SmallState());
  bad.replace(bad.size() - 4, 4, Raw("\x00\x00\xc0\x7f"));  // NaN in "b"
  ExpectFormatError([&] { DecodeModelState(bad, "nan"); }, {"'b'", "non-finite"});

  ModelState state = SmallState();
  state.tensors[0].values[1] = std::numeric_limits<float>::infinity();
  ExpectFormatError([&] { EncodeModelState(state); }, {"'a'", "non-finite", "index 1"});

  state = SmallState();
  state.tensors[1].name = "a";
  state.tensors[1].shape = {2};
  state.tensors[1].values = {0.0f, 0.0f};
  const std::string bytes = EncodeModelState(state);
  ExpectFormatError([&] { DecodeModelState(bytes, "dup"); }, {"'a'", "repeats"});
}

TEST(ModelStateTest, EncodeRejectsInconsistentTensors) {
  ModelState state = SmallState();
  state.tensors[0].values.push_back(3.0f);
  ExpectFormatError([&] { EncodeModelState(state); }, {"'a'", "3 values, expected 2"});
  state = SmallState();
  state.tensors[1].name.clear();
  ExpectFormatError([&] { EncodeModelState(state); }, {"name of 0 bytes"});
}

TEST(ModelStateTest, CheckSameLayoutNamesTheFirstDifference) {
  const ModelState expected = RandomState();
  EXPECT_NO_THROW(CheckSameLayout(expected, RandomState(), "same"));

  ModelState other = RandomState();
  other.tensors[1].name = "conv1.bias_";
  ExpectFormatError([&] { CheckSameLayout(expected, other, "update from site-1"); },
                    {"update from site-1", "#1", "'conv1.bias_'", "expected 'conv1.bias'"});

  other = RandomState();
  other.tensors[0].shape = {4, 9};
  ExpectFormatError([&] { CheckSameLayout(expected, other, "u"); },
                    {"'conv1.weight'", "[4, 9]", "expected [4, 1, 3, 3]"});

  other = RandomState();
  other.tensors.pop_back();
  ExpectFormatError([&] { CheckSameLayout(expected, other, "u"); },
                    {"3 tensors, expected 4", "missing one is 'layer1.0.gn1.weight'"});
  ExpectFormatError([&] { CheckSameLayout(other, expected, "u"); },
                    {"4 tensors, expected 3", "extra one is 'layer1.0.gn1.weight'"});
}

TEST(ModelStateTest, SubtractFindAndNumValues) {
  ModelState a = SmallState();
  ModelState b = SmallState();
  b.tensors[0].values = {0.25f, 1.0f};
  b.tensors[1].values = {0.5f};
  const ModelState d = Subtract(a, b);
  EXPECT_EQ(d.tensors[0].values, (std::vector<float>{0.75f, -3.0f}));
  EXPECT_EQ(d.tensors[1].values, (std::vector<float>{0.0f}));
  EXPECT_EQ(d.tensors[1].name, "b");
  EXPECT_EQ(a.NumValues(), 3);
  EXPECT_EQ(RandomState().NumValues(), 36 + 4 + 0 + 5);
  ASSERT_NE(a.Find("b"), nullptr);
  EXPECT_EQ(a.Find("b")->values[0], 0.5f);
  EXPECT_EQ(a.Find("c"), nullptr);
  b.tensors.pop_back();
  EXPECT_THROW(Subtract(a, b), FormatError);
}

}  // namespace
}  // namespace fedmed
