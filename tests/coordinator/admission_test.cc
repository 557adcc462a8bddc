// The coordinator's judgements as pure functions: RegistrationPolicy (registration.h), the
// update and evaluation checks (update_acceptance.h) and the checkpoint store
// (checkpoint_store.h). Asserted on Status codes and on what the files hold.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <cstring>
#include <limits>

#include "common/crypto/sha256.h"
#include "common/util/error.h"
#include "coordinator/checkpoint_store.h"
#include "coordinator/registration.h"
#include "coordinator/update_acceptance.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

using Code = Status::Code;

RegistrationPolicy Policy(bool secure) {
  RegistrationPolicy::Requirements r;
  r.spec.name = "cnn";
  r.spec.in_channels = 1;
  r.spec.num_classes = 2;
  r.secure_aggregation = secure;
  return RegistrationPolicy(r);
}

RegistrationInfo Site(const std::string& name) {
  RegistrationInfo info;
  info.site_name = name;
  info.num_train_samples = 100;
  info.in_channels = 1;
  info.num_classes = 2;
  info.preprocessing = PreprocessSpec{}.Canonical();
  return info;
}

TEST(RegistrationPolicyTest, AdmitsAMatchingSite) {
  EXPECT_TRUE(Policy(false).Check("a", Site("a")).ok());
}

TEST(RegistrationPolicyTest, RefusesWhatDoesNotFit) {
  const RegistrationPolicy policy = Policy(false);
  RegistrationInfo info = Site("a");
  info.in_channels = 3;
  EXPECT_EQ(policy.Check("a", info).code(), Code::kFailedPrecondition);
  info = Site("a");
  info.num_classes = 3;
  EXPECT_EQ(policy.Check("a", info).code(), Code::kFailedPrecondition);
  info = Site("a");
  info.preprocessing = "not a spec";
  EXPECT_EQ(policy.Check("a", info).code(), Code::kInvalidArgument);
  PreprocessSpec other;
  other.image_size = 32;
  info.preprocessing = other.Canonical();
  const Status s = policy.Check("a", info);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("image_size"), std::string::npos) << s.message();
  EXPECT_EQ(policy.Check("b", Site("a")).code(), Code::kInvalidArgument);  // CN mismatch
}

TEST(RegistrationPolicyTest, SampleCountsAreBounded) {
  RegistrationPolicy::Requirements r = Policy(false).requirements();
  r.max_site_samples = 1000;
  const RegistrationPolicy policy(r);
  RegistrationInfo info = Site("a");
  info.num_train_samples = 1000;
  EXPECT_TRUE(policy.Check("a", info).ok());
  info.num_train_samples = 1001;
  EXPECT_EQ(policy.Check("a", info).code(), Code::kInvalidArgument);
  info = Site("a");
  info.num_test_samples = -1;
  EXPECT_EQ(policy.Check("a", info).code(), Code::kInvalidArgument);
}

TEST(RegistrationPolicyTest, SecureAggregationNeedsTheCapability) {
  const RegistrationPolicy policy = Policy(true);
  RegistrationInfo info = Site("a");
  EXPECT_EQ(policy.Check("a", info).code(), Code::kFailedPrecondition);
  info.capabilities = {kSecAggCapability};
  EXPECT_TRUE(policy.Check("a", info).ok());
}

constexpr double kNoBoundForHeaders = std::numeric_limits<double>::infinity();

UpdateExpectation Expect() {
  UpdateExpectation e;
  e.accepting = true;
  e.round = 3;
  e.model_version = 2;
  e.model_bytes = 1000;
  e.num_values = 100;
  e.max_samples = 1000;
  e.max_norm = kNoBoundForHeaders;
  return e;
}

UpdateHeader Header() {
  UpdateHeader h;
  h.size_bytes = 1000;
  h.info.round = 3;
  h.info.base_version = 2;
  h.info.num_samples = 10;
  return h;
}

TEST(UpdateAcceptanceTest, HeaderChecks) {
  EXPECT_TRUE(CheckUpdateHeader("a", Header(), Expect()).ok());
  UpdateExpectation closed = Expect();
  closed.accepting = false;
  EXPECT_EQ(CheckUpdateHeader("a", Header(), closed).code(), Code::kFailedPrecondition);
  UpdateHeader h = Header();
  h.info.round = 8;
  EXPECT_EQ(CheckUpdateHeader("a", h, Expect()).code(), Code::kFailedPrecondition);
  h = Header();
  h.info.base_version = 1;
  EXPECT_EQ(CheckUpdateHeader("a", h, Expect()).code(), Code::kFailedPrecondition);
  h = Header();
  h.info.num_samples = 0;
  EXPECT_EQ(CheckUpdateHeader("a", h, Expect()).code(), Code::kInvalidArgument);
  h = Header();
  h.size_bytes = 1u << 30;
  EXPECT_EQ(CheckUpdateHeader("a", h, Expect()).code(), Code::kInvalidArgument);
  h = Header();
  h.info.secure = true;
  EXPECT_EQ(CheckUpdateHeader("a", h, Expect()).code(), Code::kFailedPrecondition);
  UpdateExpectation secure = Expect();
  secure.secure = true;
  h.size_bytes = 4 * 101;
  EXPECT_TRUE(CheckUpdateHeader("a", h, secure).ok());
  h.size_bytes = 4 * 100;
  EXPECT_EQ(CheckUpdateHeader("a", h, secure).code(), Code::kInvalidArgument);
}

constexpr double kNoBound = std::numeric_limits<double>::infinity();

TEST(UpdateAcceptanceTest, DecodeChecksTheLayout) {
  ModelState layout;
  layout.tensors.push_back(NamedTensor{"w", {2}, {1, 2}});
  ModelState delta;
  EXPECT_TRUE(DecodeUpdate("a", Header(), EncodeModelState(layout), layout, kNoBound, &delta).ok());
  ModelState other;
  other.tensors.push_back(NamedTensor{"w", {3}, {1, 2, 3}});
  EXPECT_EQ(DecodeUpdate("a", Header(), EncodeModelState(other), layout, kNoBound, &delta).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(DecodeUpdate("a", Header(), "garbage", layout, kNoBound, &delta).code(),
            Code::kInvalidArgument);
}

// [transport] update_encoding: the header's size must be the model's in the federation's
// encoding, and the bytes must carry that encoding's dtype tag; the decoded update is float32
// within the encoding's error.
TEST(UpdateAcceptanceTest, CompressedUpdatesDecodeInTheFederationsEncodingOnly) {
  ModelState layout;
  layout.tensors.push_back(NamedTensor{"w", {4}, {0.5f, -0.25f, 0.125f, 1.0f}});
  for (const UpdateEncoding encoding : {UpdateEncoding::kFloat16, UpdateEncoding::kInt8}) {
    SCOPED_TRACE(UpdateEncodingName(encoding));
    UpdateExpectation e = Expect();
    e.encoding = encoding;
    e.model_bytes = EncodedModelStateSize(layout, encoding);
    UpdateHeader h = Header();
    h.size_bytes = e.model_bytes;
    EXPECT_TRUE(CheckUpdateHeader("a", h, e).ok());
    h.size_bytes = EncodedModelStateSize(layout, UpdateEncoding::kFloat32);  // an old site
    const Status size = CheckUpdateHeader("a", h, e);
    EXPECT_EQ(size.code(), Code::kInvalidArgument);
    EXPECT_NE(size.message().find(UpdateEncodingName(encoding)), std::string::npos)
        << size.message();
    ModelState delta;
    ASSERT_TRUE(DecodeUpdate("a", Header(), EncodeModelState(layout, encoding, 1), layout,
                             kNoBound, &delta, nullptr, encoding)
                    .ok());
    for (size_t i = 0; i < 4; ++i) {
      // float16 holds these exactly; int8's error is below the scale 1/127.
      EXPECT_NEAR(delta.tensors[0].values[i], layout.tensors[0].values[i], 1.0 / 127);
    }
    EXPECT_EQ(DecodeUpdate("a", Header(), EncodeModelState(layout), layout, kNoBound, &delta,
                           nullptr, encoding)
                  .code(),
              Code::kInvalidArgument);
  }
}

TEST(UpdateAcceptanceTest, ValuesMustBeFiniteAndTheNormBounded) {
  ModelState layout;
  layout.tensors.push_back(NamedTensor{"w", {2}, {3, 4}});  // L2 norm 5
  ModelState delta;
  double norm = 0;
  EXPECT_TRUE(
      DecodeUpdate("a", Header(), EncodeModelState(layout), layout, 5.0, &delta, &norm).ok());
  EXPECT_DOUBLE_EQ(norm, 5.0);
  const Status above = DecodeUpdate("a", Header(), EncodeModelState(layout), layout, 4.9, &delta);
  EXPECT_EQ(above.code(), Code::kInvalidArgument);
  EXPECT_NE(above.message().find("L2 norm 5 exceeds the bound 4.9"), std::string::npos)
      << above.message();
  for (const float bad : {std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN()}) {
    // The encoder refuses such values: write the last one (w[1]) into the bytes by hand.
    std::string bytes = EncodeModelState(layout);
    std::memcpy(&bytes[bytes.size() - 4], &bad, 4);
    const Status s = DecodeUpdate("a", Header(), bytes, layout, kNoBound, &delta);
    EXPECT_EQ(s.code(), Code::kInvalidArgument);
    EXPECT_NE(s.message().find("non-finite"), std::string::npos) << s.message();
  }
  // Every value 1e30: finite as float32, but far above any bound.
  ModelState huge = layout;
  huge.tensors[0].values = {1e30f, 1e30f};
  EXPECT_EQ(DecodeUpdate("a", Header(), EncodeModelState(huge), layout,
                         UpdateNormBound(0, 10, 100.0), &delta)
                .code(),
            Code::kInvalidArgument);
}

TEST(UpdateAcceptanceTest, NormBoundIsTheTighterOfTheTwo) {
  EXPECT_EQ(UpdateNormBound(0, 0, 7.0), kNoBound);
  EXPECT_DOUBLE_EQ(UpdateNormBound(50, 0, 7.0), 50);
  EXPECT_DOUBLE_EQ(UpdateNormBound(0, 10, 7.0), 70);
  EXPECT_DOUBLE_EQ(UpdateNormBound(50, 10, 7.0), 50);
  EXPECT_DOUBLE_EQ(UpdateNormBound(100, 10, 7.0), 70);
}

// Site-level DP updates are mostly Gaussian noise of norm about z S sqrt(d): far above the
// relative bound, yet honest. Their bound follows from the declared S and z.
TEST(UpdateAcceptanceTest, SiteLevelDpUpdatesAreBoundedByTheirDeclaredNoise) {
  constexpr int64_t kValues = 1000000;
  ModelState layout;
  layout.tensors.push_back(NamedTensor{"w", {kValues}, std::vector<float>(kValues, 0.0f)});
  UpdateExpectation e = Expect();
  e.num_values = kValues;
  e.model_bytes = static_cast<int64_t>(EncodeModelState(layout).size());
  e.max_norm_relative = UpdateNormBound(0, 10, 5.0);  // 50
  e.max_norm = e.max_norm_relative;
  // An honest site-level DP update: signal of norm S = 1 (one value), plus N(0, (z S)^2) noise.
  ModelState update = layout;
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  for (float& v : update.tensors[0].values) v = noise(rng);
  update.tensors[0].values[0] += 1.0f;
  const std::string bytes = EncodeModelState(update);
  UpdateHeader h = Header();
  h.size_bytes = e.model_bytes;
  ModelState delta;
  double norm = 0;
  double bound = 0;
  // Declared as plain: the noise is far above 10 x the global norm, and refused.
  ASSERT_TRUE(NormBoundFor("a", h, e, &bound).ok());
  EXPECT_EQ(DecodeUpdate("a", h, bytes, layout, bound, &delta, &norm).code(),
            Code::kInvalidArgument);
  EXPECT_NEAR(norm, 1000.0, 5.0);
  // Declared with its mechanism (S = 1, z = 1): bound 1 + (1000 + 10) = 1011, accepted.
  h.has_privacy = true;
  h.info.privacy.mechanism.mode = PrivacyMode::kUpdate;
  h.info.privacy.mechanism.clipping_norm = 1.0;
  h.info.privacy.mechanism.noise_multiplier = 1.0;
  ASSERT_TRUE(CheckUpdateHeader("a", h, e).ok());
  ASSERT_TRUE(NormBoundFor("a", h, e, &bound).ok());
  EXPECT_DOUBLE_EQ(bound, 1011.0);
  EXPECT_TRUE(DecodeUpdate("a", h, bytes, layout, bound, &delta).ok());
  // The same update scaled by 100 is refused.
  for (float& v : update.tensors[0].values) v *= 100;
  EXPECT_EQ(DecodeUpdate("a", h, EncodeModelState(update), layout, bound, &delta).code(),
            Code::kInvalidArgument);
  // The absolute bound still applies.
  e.max_norm_absolute = 500;
  ASSERT_TRUE(NormBoundFor("a", h, e, &bound).ok());
  EXPECT_DOUBLE_EQ(bound, 500.0);
  e.max_norm_absolute = kNoBound;
  // A declared clipping norm above the relative bound, or a noise multiplier out of range, is
  // refused at the header.
  h.info.privacy.mechanism.clipping_norm = 60;
  EXPECT_EQ(CheckUpdateHeader("a", h, e).code(), Code::kInvalidArgument);
  h.info.privacy.mechanism.clipping_norm = 1;
  h.info.privacy.mechanism.noise_multiplier = 1000;
  EXPECT_EQ(CheckUpdateHeader("a", h, e).code(), Code::kInvalidArgument);
  h.info.privacy.mechanism.noise_multiplier = std::nan("");
  EXPECT_EQ(CheckUpdateHeader("a", h, e).code(), Code::kInvalidArgument);
}

TEST(UpdateAcceptanceTest, SampleCountsAreBoundedByTheRegisteredOnes) {
  UpdateExpectation e = Expect();
  e.max_samples = 10;
  UpdateHeader h = Header();
  h.info.num_samples = 10;
  EXPECT_TRUE(CheckUpdateHeader("a", h, e).ok());
  h.info.num_samples = 1000000000000000;  // 10^15
  EXPECT_EQ(CheckUpdateHeader("a", h, e).code(), Code::kInvalidArgument);
}

TEST(UpdateAcceptanceTest, EvaluationReportsMustBeCombinable) {
  EvaluationReport r;
  r.metrics.num_classes = 2;
  r.metrics.num_samples = 10;
  r.metrics.confusion = {4, 1, 2, 3};
  EXPECT_TRUE(CheckEvaluationReport("a", r, 2, 10).ok());
  EvaluationReport three = r;
  three.metrics.num_classes = 3;
  EXPECT_EQ(CheckEvaluationReport("a", three, 2, 10).code(), Code::kInvalidArgument);
  EvaluationReport huge = r;
  huge.metrics.num_classes = int64_t{1} << 32;
  EXPECT_EQ(CheckEvaluationReport("a", huge, 2, 10).code(), Code::kInvalidArgument);
  EvaluationReport negative = r;
  negative.metrics.confusion = {-5, 10, 2, 3};
  EXPECT_EQ(CheckEvaluationReport("a", negative, 2, 10).code(), Code::kInvalidArgument);
  EvaluationReport overflow = r;
  overflow.metrics.num_samples = INT64_MAX;
  overflow.metrics.confusion = {INT64_MAX, INT64_MAX, 1, 1};
  EXPECT_EQ(CheckEvaluationReport("a", overflow, 2, INT64_MAX).code(), Code::kInvalidArgument);
  // More test images than the site registered.
  EXPECT_EQ(CheckEvaluationReport("a", r, 2, 9).code(), Code::kInvalidArgument);
}

TEST(CheckpointStoreTest, SavesAndLoadsAResumePoint) {
  testing::TempDir dir("fedmed-checkpoint-store");
  CheckpointStore store(dir.path().string());
  ModelState layout;
  layout.tensors.push_back(NamedTensor{"w", {2}, {0, 0}});
  EXPECT_FALSE(store.Load(layout).has_value());
  ModelState model = layout;
  model.tensors[0].values = {1.5f, -2.0f};
  store.Save(4, model, Sha256Hex(EncodeModelState(model)), "fedadam", "state-bytes");
  const std::optional<ResumePoint> p = store.Load(layout);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->completed_round, 4);
  EXPECT_EQ(p->model.tensors[0].values, model.tensors[0].values);
  EXPECT_EQ(p->strategy, "fedadam");
  EXPECT_EQ(p->strategy_state, std::string("state-bytes"));
  // A strategy state that does not match its digest is refused.
  std::ofstream(dir.path() / "checkpoints" / "round-0004.strategy") << "tampered";
  EXPECT_THROW(store.Load(layout), Error);
  // So is a torn resume.json.
  std::ofstream(dir.path() / "resume.json") << "{\"completed_round\": ";
  EXPECT_THROW(store.Load(layout), Error);
}

}  // namespace
}  // namespace fedmed
