// The secure-aggregation orchestration of the round flow (coordinator/round_flow.h with
// coordinator/secure_round.h) through the SiteHandler interface, with real SecAggClients
// (common/secagg/protocol.h) for the sites and a manual event loop and clock: the four stages
// are opened and closed by the flow, and the published global model is the initial one plus the
// sample-weighted mean of the updates (to the codec's precision); a site that is gone after
// sharing its keys is recovered as a dropout without waiting for any timeout.
#include <gtest/gtest.h>

#include <ctime>
#include <map>
#include <string>
#include <vector>

#include "common/secagg/client.h"
#include "common/transport/secagg_wire.h"
#include "common/util/logging.h"
#include "coordinator/round_flow.h"
#include "tests/audit/audit_test_util.h"
#include "tests/coordinator/manual_event_loop.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

using testing::ManualEventLoop;

constexpr int kSites = 3;

std::string Name(int i) { return "site-" + std::to_string(i); }

ModelState Model() {
  ModelState s;
  s.tensors.push_back(NamedTensor{"fc.weight", {4}, {0.5f, -0.25f, 1.0f, 0.0f}});
  return s;
}

class SecureFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = CreateCa("secure-flow-test-ca", 30);
    for (int i = 1; i <= kSites; ++i) audit_[i] = testing::IssueAuditCertificate(ca_, Name(i));
    CoordinatorConfig c;
    c.federation = "secure-unit";
    c.output_dir = (dir_.path() / "out").string();
    c.tls.key = (dir_.path() / "no-audit-key" / "coordinator.key").string();
    c.rounds = 1;
    c.min_sites = 2;
    c.min_available_sites = kSites;
    c.eval_data.clear();
    c.federated_evaluation = false;
    c.secure_aggregation.enabled = true;
    c.secure_aggregation.clip_range = 4.0;
    for (int i = 1; i <= kSites; ++i) c.allowed_sites.push_back(Name(i));
    std::filesystem::create_directories(c.output_dir);
    FederationModel model;
    model.custom = true;
    model.spec.name = "custom";
    model.initial_state = Model();
    flow_ = std::make_unique<RoundFlow>(c, std::move(model), ca_.cert_pem, &loop_,
                                        MakeLogger("secure-flow-test"));
    for (int i = 1; i <= kSites; ++i) {
      RegistrationInfo info;
      info.site_name = Name(i);
      info.num_train_samples = samples_[i];
      info.capabilities = {kSecAggCapability};
      Registration reply;
      ASSERT_TRUE(flow_->Register(Name(i), info, &reply).ok());
      session_[i] = reply.session_id;
    }
    loop_.RunPending();  // round 1 starts with a secure attempt
  }

  SiteTask Poll(int i) {
    SiteTask task;
    EXPECT_TRUE(flow_->Poll(Name(i), session_[i], 0, &task).ok());
    return task;
  }

  SecAggStage Receive(int i, int stage) {
    SecAggPoll poll{session_[i], 1, 1, stage, 0};
    SecAggStage out;
    EXPECT_TRUE(flow_->SecAggReceive(Name(i), poll, &out).ok());
    return out;
  }

  Status Send(int i, SecAggMessage m) {
    m.session_id = session_[i];
    m.round = 1;
    m.attempt = 1;
    return flow_->SecAggSend(Name(i), m);
  }

  // Runs the round with every site, but `gone` (0: none) leaves after sharing its keys. Each
  // site's update adds delta_[i] to every value.
  void RunRound(int gone) {
    std::map<int, SecAggClient> clients;
    for (int i = 1; i <= kSites; ++i) {
      const SiteTask task = Poll(i);
      ASSERT_EQ(task.kind, SiteTask::Kind::kTrain);
      ASSERT_TRUE(task.secure.has_value());
      clients.emplace(i, SecAggClient(*task.secure, Name(i),
                                      AuditSigningKey::FromPem(audit_[i].key_pem, "audit key"),
                                      audit_[i].cert_pem, ca_.cert_pem));
      SecAggMessage keys;
      keys.stage = SecAggMessage::Stage::kKeys;
      keys.keys = clients.at(i).AdvertiseKeys();
      ASSERT_TRUE(Send(i, keys).ok());
    }
    loop_.RunPending();  // every site advertised: the key stage closes
    for (int i = 1; i <= kSites; ++i) {
      const SecAggStage u1 = Receive(i, 1);
      ASSERT_EQ(u1.status, SecAggStage::Status::kReady) << u1.reason;
      SecAggMessage shares;
      shares.stage = SecAggMessage::Stage::kShares;
      shares.shares = clients.at(i).ShareKeys(u1.keys, std::time(nullptr));
      ASSERT_TRUE(Send(i, shares).ok());
    }
    loop_.RunPending();  // the share stage closes
    if (gone != 0) {
      flow_->SiteGone(Name(gone), session_[gone]);
      loop_.RunPending();
    }
    const SecAggRoundConfig& c = clients.at(1).config();
    for (int i = 1; i <= kSites; ++i) {
      if (i == gone) continue;
      const SecAggStage u2 = Receive(i, 2);
      ASSERT_EQ(u2.status, SecAggStage::Status::kReady) << u2.reason;
      std::vector<float> values;
      const double weight = static_cast<double>(samples_[i]) / c.weight_normalizer;
      for (int64_t v = 0; v < c.num_values; ++v) values.push_back(delta_[i] * weight);
      const MaskedInput masked =
          clients.at(i).MaskInput(u2.inbox, u2.u2, values, samples_[i]);
      const std::string bytes = EncodeMaskedInput(masked.masked);
      UpdateHeader h;
      h.session_id = session_[i];
      h.size_bytes = static_cast<int64_t>(bytes.size());
      h.info.round = 1;
      h.info.secure = true;
      ASSERT_TRUE(flow_->CheckUpdate(Name(i), h).ok());
      ASSERT_TRUE(flow_->AcceptUpdate(Name(i), h, bytes, 0).ok());
    }
    loop_.RunPending();  // every live member of U2 sent: the masked-input stage closes
    for (int i = 1; i <= kSites; ++i) {
      if (i == gone) continue;
      const SecAggStage u3 = Receive(i, 3);
      ASSERT_EQ(u3.status, SecAggStage::Status::kReady) << u3.reason;
      SecAggMessage unmask;
      unmask.stage = SecAggMessage::Stage::kUnmask;
      unmask.unmask = clients.at(i).Unmask(u3.u3);
      ASSERT_TRUE(Send(i, unmask).ok());
    }
    loop_.RunPending();  // unmasking, aggregation, the round's end
  }

  // The expected global value: the initial one plus the sample-weighted mean of the deltas of
  // `sites`.
  float Expected(float initial, const std::vector<int>& sites) const {
    double sum = 0, n = 0;
    for (int i : sites) {
      sum += delta_.at(i) * samples_.at(i);
      n += samples_.at(i);
    }
    return static_cast<float>(initial + sum / n);
  }

  ::fedmed::testing::TempDir dir_{"fedmed-secure-flow"};
  ManualEventLoop loop_;
  KeyAndCert ca_;
  std::map<int, KeyAndCert> audit_;
  std::map<int, int64_t> samples_ = {{1, 100}, {2, 300}, {3, 200}};
  std::map<int, float> delta_ = {{1, 0.5f}, {2, -1.0f}, {3, 2.0f}};
  std::map<int, std::string> session_;
  std::unique_ptr<RoundFlow> flow_;
};

TEST_F(SecureFlowTest, FourStagesPublishTheWeightedMean) {
  RunRound(/*gone=*/0);
  ASSERT_EQ(flow_->phase(), Phase::kFinished);
  const ModelState global = DecodeModelState(flow_->GlobalModelBytes(), "global");
  const ModelState initial = Model();
  for (size_t v = 0; v < 4; ++v) {
    EXPECT_NEAR(global.tensors[0].values[v],
                Expected(initial.tensors[0].values[v], {1, 2, 3}), 1e-3);
  }
}

TEST_F(SecureFlowTest, ASiteGoneAfterSharingItsKeysIsRecoveredAsADropout) {
  RunRound(/*gone=*/3);
  ASSERT_EQ(flow_->phase(), Phase::kFinished);  // no stage timeout or deadline passed
  const ModelState global = DecodeModelState(flow_->GlobalModelBytes(), "global");
  const ModelState initial = Model();
  for (size_t v = 0; v < 4; ++v) {
    EXPECT_NEAR(global.tensors[0].values[v], Expected(initial.tensors[0].values[v], {1, 2}),
                1e-3);
  }
}

}  // namespace
}  // namespace fedmed
