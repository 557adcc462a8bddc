// The round's end overlapping the next round (coordinator/round_end.cc), on the domain layer
// with a ManualEventLoop whose compute work the test holds and releases: the next round's
// tasks are out while the held-out evaluation of the round before has not run, the records
// follow in round order, the next round aggregates only after them, and a held-out evaluation
// that fails after the next round started sends the federation back to the failed round.
// A real `cnn` (the held-out evaluation runs LibTorch) on eight synthetic images.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/model/torch_state.h"
#include "common/model/zoo.h"
#include "common/util/logging.h"
#include "coordinator/round_flow.h"
#include "tests/coordinator/flow_test_util.h"
#include "tests/coordinator/manual_event_loop.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;
using testing::ManualEventLoop;

class RoundOverlapTest : public ::testing::Test {
 protected:
  // `broken_heldout`: a held-out set whose labels do not fit the model, so that every held-out
  // evaluation fails (EvaluateModel throws DataError).
  std::unique_ptr<RoundFlow> MakeFlow(int rounds, bool broken_heldout = false) {
    CoordinatorConfig c;
    c.federation = "overlap";
    c.output_dir = (dir_.path() / "out").string();
    c.tls.key = (dir_.path() / "no-audit-key" / "coordinator.key").string();
    c.rounds = rounds;
    c.min_sites = 2;
    c.round_deadline_seconds = 60;
    c.federated_evaluation = false;
    c.max_attempts = 2;
    c.allowed_sites = {"site-1", "site-2"};
    fs::create_directories(c.output_dir);
    FederationModel model;
    model.spec.name = "cnn";
    model.initial_state = ExportState(*MakeModel(model.spec, 7));
    ImageSet heldout;
    heldout.height = heldout.width = 28;
    heldout.channels = 1;
    heldout.num_classes = 2;
    for (int i = 0; i < 8; ++i) {
      for (int p = 0; p < 28 * 28; ++p) heldout.pixels.push_back(static_cast<uint8_t>(i * 31 + p));
      heldout.labels.push_back(broken_heldout ? 5 : i % 2);
    }
    model.heldout = std::move(heldout);
    initial_ = model.initial_state;
    return std::make_unique<RoundFlow>(c, std::move(model), "", &loop_,
                                       MakeLogger("round-overlap-test-" + std::to_string(++n_)));
  }

  SiteTask Poll(RoundFlow& flow, const std::string& site, const std::string& session) {
    return testing::PollNow(flow, site, session);
  }

  // `site`'s update for `task`: `value` added to every parameter.
  Status Send(RoundFlow& flow, const std::string& site, const std::string& session,
              const SiteTask& task, float value) {
    ModelState delta = initial_;
    for (NamedTensor& t : delta.tensors) {
      for (float& v : t.values) v = value;
    }
    return testing::SendUpdateBytes(flow, site, session, task, EncodeModelState(delta), 10,
                                    /*train_seconds=*/1.5);
  }

  // Registers both sites; the first round starts.
  std::pair<std::string, std::string> RegisterBoth(RoundFlow& flow) {
    std::pair<std::string, std::string> sessions;
    for (auto [site, session] : {std::make_pair("site-1", &sessions.first),
                                 std::make_pair("site-2", &sessions.second)}) {
      RegistrationInfo info;
      info.site_name = site;
      info.num_train_samples = 10;
      info.in_channels = 1;
      info.num_classes = 2;
      Registration reply;
      EXPECT_TRUE(flow.Register(site, info, &reply).ok());
      *session = reply.session_id;
    }
    loop_.RunPending();
    return sessions;
  }

  // Runs what the control thread has, then the compute work held so far, and so on, until
  // neither has anything left (new compute work is held again).
  void RunAll() {
    do {
      loop_.RunPending();
    } while (loop_.ReleaseWork() > 0);
  }

  // Runs the held compute work once (and the control work it posts): one "generation".
  void Step() {
    loop_.RunPending();
    loop_.ReleaseWork();
    loop_.RunPending();
  }

  std::vector<nlohmann::json> MetricsRows() const {
    return testing::ReadJsonRows(dir_.path() / "out" / "metrics.jsonl");
  }

  ::fedmed::testing::TempDir dir_{"fedmed-round-overlap"};
  ManualEventLoop loop_;
  ModelState initial_;
  int n_ = 0;
};

TEST_F(RoundOverlapTest, TheNextRoundStartsBeforeTheHeldOutEvaluationAndRecordsStayInOrder) {
  auto flow = MakeFlow(/*rounds=*/2);
  const auto [s1, s2] = RegisterBoth(*flow);
  loop_.HoldWork(true);
  ASSERT_TRUE(Send(*flow, "site-1", s1, Poll(*flow, "site-1", s1), 0.01f).ok());
  ASSERT_TRUE(Send(*flow, "site-2", s2, Poll(*flow, "site-2", s2), 0.01f).ok());
  Step();  // the two updates are added; aggregation is posted
  Step();  // aggregation: round 1's model is installed, its held-out evaluation posted (held)

  // Round 2 is out on round 1's model, and round 1 has no row yet: its evaluation has not run.
  const SiteTask t1 = Poll(*flow, "site-1", s1);
  ASSERT_EQ(t1.kind, SiteTask::Kind::kTrain);
  EXPECT_EQ(t1.round, 2);
  EXPECT_EQ(t1.model.version, 1);
  EXPECT_EQ(flow->round(), 2);
  EXPECT_TRUE(MetricsRows().empty());

  // Round 2's updates arrive before round 1's records: round 2 waits for them to aggregate.
  ASSERT_TRUE(Send(*flow, "site-1", s1, t1, 0.01f).ok());
  ASSERT_TRUE(Send(*flow, "site-2", s2, Poll(*flow, "site-2", s2), 0.01f).ok());
  // Until the last round is recorded, no site hears that the federation is over (a site told
  // to finish would leave, and the coordinator with it, before the last row is written).
  do {
    loop_.RunPending();
    if (MetricsRows().size() < 2) {
      EXPECT_NE(Poll(*flow, "site-1", s1).kind, SiteTask::Kind::kFinish);
      EXPECT_FALSE(loop_.stopped());
    }
  } while (loop_.ReleaseWork() > 0);

  const std::vector<nlohmann::json> rows = MetricsRows();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["round"], 1);
  EXPECT_EQ(rows[1]["round"], 2);
  EXPECT_TRUE(rows[0]["seconds"]["evaluation_overlapped"].get<bool>());
  EXPECT_FALSE(rows[1]["seconds"]["evaluation_overlapped"].get<bool>());  // the last round
  for (const nlohmann::json& r : rows) {
    ASSERT_TRUE(r["global"].is_object()) << r.dump();
    EXPECT_EQ(r["global"]["num_samples"], 8);
    const nlohmann::json& path = r["seconds"]["critical_path"];
    EXPECT_EQ(path["site"], "site-2");  // the update that arrived last
    EXPECT_DOUBLE_EQ(path["training"].get<double>(), 1.5);  // as the site reported it
  }
  EXPECT_NE(rows[0]["model_sha256"], rows[1]["model_sha256"]);
  // resume.json names round 2: its checkpoint was written after round 1's.
  std::ifstream resume(dir_.path() / "out" / "resume.json");
  EXPECT_EQ(nlohmann::json::parse(resume)["completed_round"], 2);
  EXPECT_EQ(flow->phase(), Phase::kFinished);
}

TEST_F(RoundOverlapTest, AFailedHeldOutEvaluationSendsTheFederationBackToItsRound) {
  auto flow = MakeFlow(/*rounds=*/2, /*broken_heldout=*/true);
  const auto [s1, s2] = RegisterBoth(*flow);
  loop_.HoldWork(true);
  ASSERT_TRUE(Send(*flow, "site-1", s1, Poll(*flow, "site-1", s1), 0.01f).ok());
  ASSERT_TRUE(Send(*flow, "site-2", s2, Poll(*flow, "site-2", s2), 0.01f).ok());
  Step();
  Step();
  ASSERT_EQ(flow->round(), 2);  // round 2 started on round 1's model
  const SiteTask doomed = Poll(*flow, "site-1", s1);
  ASSERT_EQ(doomed.round, 2);
  ASSERT_TRUE(Send(*flow, "site-1", s1, doomed, 0.01f).ok());  // added while round 1's fails
  RunAll();

  // Round 1 again (its second attempt), on the initial model; nothing of it was recorded.
  EXPECT_EQ(flow->round(), 1);
  const SiteTask retry = Poll(*flow, "site-2", s2);
  ASSERT_EQ(retry.kind, SiteTask::Kind::kTrain);
  EXPECT_EQ(retry.round, 1);
  EXPECT_EQ(retry.model.version, 0);
  EXPECT_TRUE(MetricsRows().empty());
  EXPECT_FALSE(fs::exists(dir_.path() / "out" / "resume.json"));
  // Round 2's update is no answer to round 1.
  EXPECT_EQ(Send(*flow, "site-1", s1, doomed, 0.01f).code(), Status::Code::kFailedPrecondition);

  // The second attempt's evaluation fails too: [federation] max_attempts = 2 stops the
  // federation with exit status 2, still without a record of round 1.
  ASSERT_TRUE(Send(*flow, "site-2", s2, retry, 0.01f).ok());
  ASSERT_TRUE(Send(*flow, "site-1", s1, Poll(*flow, "site-1", s1), 0.01f).ok());
  RunAll();
  EXPECT_TRUE(loop_.stopped());
  EXPECT_EQ(flow->exit_code(), 2);
  EXPECT_TRUE(MetricsRows().empty());
}

}  // namespace
}  // namespace fedmed
