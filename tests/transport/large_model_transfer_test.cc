// A model of more than 100 MB travels through the real download and upload paths (gRPC over
// mutual TLS on loopback, 1 MiB chunks, SHA-256 checked) with gRPC's default message limits, and
// arrives bit-identical both ways.
#include <gtest/gtest.h>

#include <memory>
#include <thread>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/crypto/sha256.h"
#include "common/model/model_state.h"
#include "coordinator/app/coordinator.h"
#include "site_agent/connection.h"
#include "tests/coordinator/in_process_util.h"
#include "tests/integration/federation_util.h"
#include "tests/test_util.h"
#include "tools/pki/provision.h"

namespace fedmed {
namespace {

// A coordinator with a custom model and one allowed site, running in this process.
class OneSiteFederation {
 public:
  OneSiteFederation(const ModelState& initial, int rounds)
      : pki_(testing::ProvisionLoopbackFederation(dir_ / "pki", {"site-1"})),
        federation_(testing::InProcessCoordinatorConfig(pki_, dir_ / "coordinator", rounds),
                    initial, pki_) {}
  CoordinatorConnection& connection() { return federation_.connection(); }
  const std::string& session() const { return federation_.session(); }

 private:
  testing::TempDir dir_{"fedmed-transfer"};
  ProvisionResult pki_;
  testing::InProcessFederation federation_;
};

TEST(LargeModelTransferTest, HundredMegabyteModelGoesBothWaysBitIdentical) {
  // 26.5 M float32 values = 106 MB, in two tensors; small integers so that sums are exact.
  ModelState initial;
  initial.tensors.push_back(NamedTensor{"big.weight", {5000, 5000}, {}});
  initial.tensors.push_back(NamedTensor{"big.bias", {1500000}, {}});
  for (NamedTensor& t : initial.tensors) {
    t.values.resize(static_cast<std::size_t>(t.shape.size() == 2 ? t.shape[0] * t.shape[1]
                                                                 : t.shape[0]));
    for (std::size_t i = 0; i < t.values.size(); ++i) t.values[i] = static_cast<float>(i % 1000);
  }
  const std::string initial_bytes = EncodeModelState(initial);
  ASSERT_GT(initial_bytes.size(), 100u * 1000 * 1000);

  OneSiteFederation federation(initial, /*rounds=*/2);
  CoordinatorConnection& connection = federation.connection();
  const std::string& session = federation.session();

  // Download path.
  SiteTask task = connection.Poll(session, 10000);
  ASSERT_EQ(task.kind, SiteTask::Kind::kTrain);
  EXPECT_EQ(task.model.sha256, Sha256Hex(initial_bytes));
  const std::string downloaded = connection.DownloadModel(session, task.model);
  EXPECT_TRUE(downloaded == initial_bytes) << "downloaded model differs from the original";

  // Upload path: an update of +1 everywhere; with one site FedAvg's new model is initial + 1.
  ModelState delta = initial;
  ModelState expected = initial;
  for (std::size_t t = 0; t < delta.tensors.size(); ++t) {
    for (std::size_t i = 0; i < delta.tensors[t].values.size(); ++i) {
      delta.tensors[t].values[i] = 1.0f;
      expected.tensors[t].values[i] += 1.0f;
    }
  }
  UpdateInfo info;
  info.round = task.round;
  info.base_version = task.model.version;
  info.num_samples = 10;
  connection.UploadUpdate(session, info, EncodeModelState(delta));

  task = connection.Poll(session, 30000);
  ASSERT_EQ(task.kind, SiteTask::Kind::kTrain);
  ASSERT_EQ(task.round, 2);
  const std::string expected_bytes = EncodeModelState(expected);
  EXPECT_EQ(task.model.sha256, Sha256Hex(expected_bytes));
  const std::string second = connection.DownloadModel(session, task.model);
  EXPECT_TRUE(second == expected_bytes) << "the aggregated model is not initial + update";
}

TEST(LargeModelTransferTest, CorruptedDigestIsRejected) {
  ModelState initial;
  initial.tensors.push_back(NamedTensor{"w", {4}, {1, 2, 3, 4}});
  OneSiteFederation federation(initial, /*rounds=*/5);
  CoordinatorConnection& connection = federation.connection();
  SiteTask task = connection.Poll(federation.session(), 10000);
  ASSERT_EQ(task.kind, SiteTask::Kind::kTrain);
  // Asking for the model with a wrong digest: the site refuses what it receives.
  ModelRef wrong = task.model;
  wrong.sha256[0] = wrong.sha256[0] == 'a' ? 'b' : 'a';
  try {
    connection.DownloadModel(federation.session(), wrong);
    FAIL() << "a model whose digest differs from the task's was accepted";
  } catch (const RpcError& e) {
    EXPECT_EQ(e.kind(), RpcError::Kind::kRejected);
  }
}

}  // namespace
}  // namespace fedmed
