// The coordinator's domain layer without a server, a network or real time: RoundFlow
// (coordinator/round_flow.h) driven through its SiteHandler interface on a ManualEventLoop,
// with a tiny custom model and hand-made updates. Registration, update acceptance, the round
// deadline, the round's end and the resume from the checkpoint store, each asserted on Status
// codes, tasks and the files the round writes (metrics.jsonl, resume.json), not on log wording.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>

#include "common/audit/privacy_log.h"
#include "common/crypto/sha256.h"
#include "common/util/file_io.h"
#include "common/util/logging.h"
#include "coordinator/round_flow.h"
#include "tests/audit/audit_test_util.h"
#include "tests/coordinator/flow_test_util.h"
#include "tests/coordinator/manual_event_loop.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;
using testing::ManualEventLoop;

ModelState Model(float w0) {
  ModelState s;
  s.tensors.push_back(NamedTensor{"fc.weight", {3, 2}, {}});
  s.tensors.push_back(NamedTensor{"fc.bias", {2}, {}});
  for (int i = 0; i < 6; ++i) s.tensors[0].values.push_back(w0 + 0.125f * i);
  for (int i = 0; i < 2; ++i) s.tensors[1].values.push_back(-0.5f * i);
  return s;
}

class RoundFlowTest : public ::testing::Test {
 protected:
  CoordinatorConfig Config() const {
    CoordinatorConfig c;
    c.federation = "unit";
    c.output_dir = (dir_.path() / "out").string();
    c.tls.key = (dir_.path() / "no-audit-key" / "coordinator.key").string();
    c.rounds = 2;
    c.min_sites = 2;
    c.round_deadline_seconds = 60;
    c.eval_data.clear();
    c.federated_evaluation = false;
    c.allowed_sites = {"site-1", "site-2", "site-3"};
    return c;
  }

  std::unique_ptr<RoundFlow> MakeFlow(const CoordinatorConfig& c) {
    fs::create_directories(c.output_dir);
    FederationModel model;
    model.custom = true;
    model.spec.name = "custom";
    model.initial_state = Model(1.0f);
    return std::make_unique<RoundFlow>(c, std::move(model), "", &loop_,
                                       MakeLogger("round-flow-test-" + std::to_string(++loggers_)));
  }

  // Registers `site` and returns its session.
  // What `flow` answers `site` registering with `samples` training images (*session: the
  // session id it gave, if any).
  Status TryRegister(RoundFlow& flow, const std::string& site, int64_t samples = 10,
                     std::string* session = nullptr) {
    RegistrationInfo info;
    info.site_name = site;
    info.num_train_samples = samples;
    Registration reply;
    const Status s = flow.Register(site, info, &reply);
    if (session != nullptr) *session = reply.session_id;
    return s;
  }

  // The session id of `site`, registered (a test failure when it is refused).
  std::string Register(RoundFlow& flow, const std::string& site, int64_t samples = 10) {
    std::string session;
    const Status s = TryRegister(flow, site, samples, &session);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return session;
  }

  SiteTask Poll(RoundFlow& flow, const std::string& site, const std::string& session) {
    return testing::PollNow(flow, site, session);
  }

  // An update whose delta adds `add` to every value (a value that is not finite, which the
  // encoder refuses, is written into the bytes of the last one), for the task's round and model.
  Status Send(RoundFlow& flow, const std::string& site, const std::string& session,
              const SiteTask& task, float add, int64_t samples = 10) {
    ModelState delta = Model(0.0f);
    for (NamedTensor& t : delta.tensors) {
      for (float& v : t.values) v = std::isfinite(add) ? add : 0.0f;
    }
    std::string bytes = EncodeModelState(delta);
    if (!std::isfinite(add)) std::memcpy(&bytes[bytes.size() - 4], &add, 4);
    return testing::SendUpdateBytes(flow, site, session, task, bytes, samples);
  }

  // Registers site-1 and site-2 (10 training samples each), runs the loop (the first round
  // starts when the quorum is there) and returns their sessions.
  std::pair<std::string, std::string> RegisterBoth(RoundFlow& flow) {
    std::pair<std::string, std::string> sessions{Register(flow, "site-1"), Register(flow, "site-2")};
    loop_.RunPending();
    return sessions;
  }

  // site-1 (session s1) and site-2 (s2) each send an update adding `add`, and the loop runs.
  void TrainBoth(RoundFlow& flow, const std::string& s1, const std::string& s2, float add) {
    ASSERT_TRUE(Send(flow, "site-1", s1, Poll(flow, "site-1", s1), add).ok());
    ASSERT_TRUE(Send(flow, "site-2", s2, Poll(flow, "site-2", s2), add).ok());
    loop_.RunPending();
  }

  std::vector<nlohmann::json> MetricsRows() const {
    return testing::ReadJsonRows(dir_.path() / "out" / "metrics.jsonl");
  }

  ::fedmed::testing::TempDir dir_{"fedmed-round-flow"};
  ManualEventLoop loop_;
  int loggers_ = 0;
};

TEST_F(RoundFlowTest, UnknownSessionIsNotFound) {
  auto flow = MakeFlow(Config());
  SiteTask task;
  EXPECT_EQ(flow->Poll("site-1", "no-such-session", 0, &task).code(), Status::Code::kNotFound);
}

TEST_F(RoundFlowTest, SiteNameMustMatchItsCertificate) {
  auto flow = MakeFlow(Config());
  RegistrationInfo info;
  info.site_name = "site-2";
  info.num_train_samples = 5;
  Registration reply;
  EXPECT_EQ(flow->Register("site-1", info, &reply).code(), Status::Code::kInvalidArgument);
  info.site_name = "site-1";
  info.num_train_samples = 0;
  EXPECT_EQ(flow->Register("site-1", info, &reply).code(), Status::Code::kInvalidArgument);
}

TEST_F(RoundFlowTest, RoundRunsToItsEndAndAveragesBySampleCount) {
  auto flow = MakeFlow(Config());
  const std::string s1 = Register(*flow, "site-1");
  EXPECT_EQ(Poll(*flow, "site-1", s1).kind, SiteTask::Kind::kWait);  // quorum not registered
  const std::string s2 = Register(*flow, "site-2", 30);
  loop_.RunPending();
  const SiteTask t1 = Poll(*flow, "site-1", s1);
  const SiteTask t2 = Poll(*flow, "site-2", s2);
  ASSERT_EQ(t1.kind, SiteTask::Kind::kTrain);
  ASSERT_EQ(t2.kind, SiteTask::Kind::kTrain);
  EXPECT_EQ(t1.round, 1);
  EXPECT_EQ(t1.model.version, 0);
  EXPECT_DOUBLE_EQ(t1.seconds_left, 60.0);  // the manual clock has not moved

  ASSERT_TRUE(Send(*flow, "site-1", s1, t1, 1.0f, 10).ok());
  // A second update from the same site is refused, and so is one for another round.
  EXPECT_EQ(Send(*flow, "site-1", s1, t1, 1.0f).code(), Status::Code::kFailedPrecondition);
  SiteTask later = t2;
  later.round = 6;
  EXPECT_EQ(Send(*flow, "site-2", s2, later, 1.0f).code(), Status::Code::kFailedPrecondition);
  ASSERT_TRUE(Send(*flow, "site-2", s2, t2, 4.0f, 30).ok());
  loop_.RunPending();  // AddUpdate, AggregateFit, the (empty) evaluation, the round's end

  EXPECT_EQ(flow->round(), 2);
  const std::vector<nlohmann::json> rows = MetricsRows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["round"], 1);
  EXPECT_EQ(rows[0]["num_samples"], 40);
  // FedAvg: the global model moved by (10 * 1 + 30 * 4) / 40 = 3.25 in every value.
  const ModelState global = DecodeModelState(flow->GlobalModelBytes(), "global");
  EXPECT_FLOAT_EQ(global.tensors[0].values[0], 1.0f + 3.25f);
  const nlohmann::json resume = nlohmann::json::parse(
      std::ifstream(dir_.path() / "out" / "resume.json"));
  EXPECT_EQ(resume["completed_round"], 1);
  EXPECT_EQ(resume["model_sha256"], Sha256Hex(flow->GlobalModelBytes()));
}

TEST_F(RoundFlowTest, DeadlineClosesTrainingWithTheUpdatesThatArrived) {
  CoordinatorConfig c = Config();
  c.min_sites = 1;
  c.min_available_sites = 2;
  auto flow = MakeFlow(c);
  const auto [s1, s2] = RegisterBoth(*flow);
  const SiteTask t1 = Poll(*flow, "site-1", s1);
  ASSERT_EQ(t1.kind, SiteTask::Kind::kTrain);
  ASSERT_TRUE(Send(*flow, "site-1", s1, t1, 2.0f).ok());
  loop_.Advance(30);
  EXPECT_EQ(flow->round(), 1);  // still waiting for site-2
  loop_.Advance(31);            // past the 60 s deadline
  EXPECT_EQ(flow->round(), 2);
  const std::vector<nlohmann::json> rows = MetricsRows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["contributors"], nlohmann::json::array({"site-1"}));
  // site-2's late update for round 1 is refused.
  const SiteTask stale = Poll(*flow, "site-2", s2);
  SiteTask old = t1;
  EXPECT_EQ(Send(*flow, "site-2", s2, old, 1.0f).code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(stale.round, 2);
}

TEST_F(RoundFlowTest, ResumesAfterTheLastCheckpointedRound) {
  std::string after_round_1;
  {
    auto flow = MakeFlow(Config());
    const auto [s1, s2] = RegisterBoth(*flow);
    TrainBoth(*flow, s1, s2, 1.0f);
    ASSERT_EQ(flow->round(), 2);
    after_round_1 = flow->GlobalModelBytes();
    flow->Stop();
    EXPECT_EQ(flow->exit_code(), 1);
  }
  auto flow = MakeFlow(Config());
  EXPECT_EQ(flow->GlobalModelBytes(), after_round_1);
  const auto [s1, s2] = RegisterBoth(*flow);
  const SiteTask t = Poll(*flow, "site-1", s1);
  ASSERT_EQ(t.kind, SiteTask::Kind::kTrain);
  EXPECT_EQ(t.round, 2);
  EXPECT_EQ(t.model.version, 1);
  ASSERT_TRUE(Send(*flow, "site-1", s1, t, 1.0f).ok());
  ASSERT_TRUE(Send(*flow, "site-2", s2, Poll(*flow, "site-2", s2), 1.0f).ok());
  loop_.RunPending();
  EXPECT_EQ(flow->phase(), Phase::kFinished);
  const std::vector<nlohmann::json> rows = MetricsRows();
  ASSERT_EQ(rows.size(), 2u);  // round 1 once, then round 2
  EXPECT_EQ(rows[1]["round"], 2);
  // The federation is over: sites are told so, and the last one told ends the coordinator.
  EXPECT_EQ(Poll(*flow, "site-1", s1).kind, SiteTask::Kind::kFinish);
  EXPECT_EQ(Poll(*flow, "site-2", s2).kind, SiteTask::Kind::kFinish);
  loop_.RunPending();
  EXPECT_TRUE(loop_.stopped());
  EXPECT_EQ(flow->exit_code(), 0);
}

TEST_F(RoundFlowTest, RegistrationClosesOnItsTimeout) {
  CoordinatorConfig c = Config();
  c.registration_timeout_seconds = 10;
  auto flow = MakeFlow(c);
  flow->Begin(0);
  Register(*flow, "site-1");
  loop_.Advance(11);
  EXPECT_TRUE(loop_.stopped());
  EXPECT_EQ(flow->exit_code(), 2);
}

// A site whose updates are refused max_invalid_updates times in a row is excluded: the round
// stops waiting for it, its session ends and it cannot register again.
TEST_F(RoundFlowTest, InvalidUpdatesInARowExcludeTheSite) {
  CoordinatorConfig c = Config();
  c.max_invalid_updates = 2;
  c.min_available_sites = 3;
  auto flow = MakeFlow(c);
  const std::string s1 = Register(*flow, "site-1");
  const std::string s2 = Register(*flow, "site-2");
  const std::string s3 = Register(*flow, "site-3");
  loop_.RunPending();
  const SiteTask t3 = Poll(*flow, "site-3", s3);
  ASSERT_TRUE(Send(*flow, "site-1", s1, Poll(*flow, "site-1", s1), 1.0f).ok());
  ASSERT_TRUE(Send(*flow, "site-2", s2, Poll(*flow, "site-2", s2), 1.0f).ok());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(Send(*flow, "site-3", s3, t3, nan).code(), Status::Code::kInvalidArgument);
  loop_.RunPending();
  EXPECT_EQ(flow->round(), 1);  // site-3 may still send a valid update
  EXPECT_EQ(Send(*flow, "site-3", s3, t3, 1e30f).code(), Status::Code::kInvalidArgument);
  loop_.RunPending();
  EXPECT_EQ(flow->round(), 2);  // excluded: the round no longer waited for it
  const std::vector<nlohmann::json> rows = MetricsRows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["contributors"], nlohmann::json::array({"site-1", "site-2"}));
  SiteTask task;
  EXPECT_EQ(flow->Poll("site-3", s3, 0, &task).code(), Status::Code::kNotFound);
  EXPECT_EQ(TryRegister(*flow, "site-3").code(), Status::Code::kFailedPrecondition);
}

// An update that cannot be accepted is refused at its header, before its data is read.
TEST_F(RoundFlowTest, HeadersAreJudgedBeforeTheData) {
  auto flow = MakeFlow(Config());
  const std::string s1 = Register(*flow, "site-1", 10);
  const std::string s2 = Register(*flow, "site-2");
  loop_.RunPending();
  const SiteTask t1 = Poll(*flow, "site-1", s1);
  UpdateHeader h;
  h.session_id = s1;
  h.size_bytes = static_cast<int64_t>(EncodeModelState(Model(0)).size());
  h.info.round = t1.round;
  h.info.base_version = t1.model.version;
  h.info.num_samples = 1000000000000000;  // 10^15, more than the 10 it registered
  EXPECT_EQ(flow->CheckUpdate("site-1", h).code(), Status::Code::kInvalidArgument);
  h.info.num_samples = 10;
  EXPECT_TRUE(flow->CheckUpdate("site-1", h).ok());
  ASSERT_TRUE(Send(*flow, "site-1", s1, t1, 1.0f).ok());
  EXPECT_EQ(flow->CheckUpdate("site-1", h).code(), Status::Code::kFailedPrecondition);
  h.info.round = t1.round + 5;
  EXPECT_EQ(flow->CheckUpdate("site-1", h).code(), Status::Code::kFailedPrecondition);
}

// An update within the bound relative to the global model is taken; one 100 times larger not.
TEST_F(RoundFlowTest, UpdatesAboveTheNormBoundAreRefused) {
  auto flow = MakeFlow(Config());  // max_update_norm_ratio 10 by default
  const auto [s1, s2] = RegisterBoth(*flow);
  const SiteTask t1 = Poll(*flow, "site-1", s1);
  // The global model's norm is about 4.7; an update of 0.5 per value has norm about 1.4.
  EXPECT_EQ(Send(*flow, "site-1", s1, t1, 50.0f).code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(Send(*flow, "site-1", s1, t1, 0.5f).ok());
}

TEST_F(RoundFlowTest, MaxAttemptsStopsTheFederation) {
  CoordinatorConfig c = Config();
  c.max_attempts = 2;
  auto flow = MakeFlow(c);
  const std::string s1 = Register(*flow, "site-1");
  Register(*flow, "site-2");
  loop_.RunPending();
  ASSERT_TRUE(Send(*flow, "site-1", s1, Poll(*flow, "site-1", s1), 1.0f).ok());
  loop_.Advance(61);  // attempt 1 misses its quorum of 2
  EXPECT_FALSE(loop_.stopped());
  loop_.Advance(61);  // and attempt 2
  EXPECT_TRUE(loop_.stopped());
  EXPECT_EQ(flow->exit_code(), 2);
  EXPECT_TRUE(MetricsRows().empty());
}

// An aggregate that is not finite (here float overflow with the norm bound off) is not
// published: the global model and the strategy stay as they were, and the round is tried again.
TEST_F(RoundFlowTest, AnAggregateThatIsNotFiniteIsNotPublished) {
  CoordinatorConfig c = Config();
  c.max_update_norm_ratio = 0;
  c.rounds = 3;
  auto flow = MakeFlow(c);
  const auto [s1, s2] = RegisterBoth(*flow);
  for (int round = 1; round <= 2; ++round) {
    TrainBoth(*flow, s1, s2, 3e38f);
  }
  EXPECT_EQ(flow->round(), 2);
  EXPECT_FALSE(loop_.stopped());
  const ModelState global = DecodeModelState(flow->GlobalModelBytes(), "global");
  EXPECT_FLOAT_EQ(global.tensors[0].values[0], 1.0f + 3e38f);  // round 1's model
  const SiteTask again = Poll(*flow, "site-1", s1);
  EXPECT_EQ(again.kind, SiteTask::Kind::kTrain);
  EXPECT_EQ(again.round, 2);
  EXPECT_EQ(again.model.version, 1);
  EXPECT_EQ(MetricsRows().size(), 1u);
}

// Rows of a round that a crash left in the metrics without its checkpoint are dropped on resume,
// so every round appears once.
TEST_F(RoundFlowTest, ResumeDropsMetricsOfRoundsItRunsAgain) {
  {
    auto flow = MakeFlow(Config());
    const auto [s1, s2] = RegisterBoth(*flow);
    TrainBoth(*flow, s1, s2, 1.0f);
    flow->Stop();
  }
  std::ofstream(dir_.path() / "out" / "metrics.jsonl", std::ios::app) << "{\"round\": 2}\n";
  std::ofstream(dir_.path() / "out" / "metrics.csv", std::ios::app) << "2,1,,,\n";
  auto flow = MakeFlow(Config());
  const std::vector<nlohmann::json> rows = MetricsRows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["round"], 1);
  std::ifstream csv(dir_.path() / "out" / "metrics.csv");
  int lines = 0;
  for (std::string line; std::getline(csv, line);) ++lines;
  EXPECT_EQ(lines, 2);  // header and round 1
}

// A coordinator restarted after the last round (say, killed before it told the sites) tells the
// sites that come back that the federation is over, then stops.
TEST_F(RoundFlowTest, ARestartedFinishedFederationTellsReturningSites) {
  CoordinatorConfig c = Config();
  c.rounds = 1;
  c.allowed_sites = {"site-1", "site-2"};
  {
    auto flow = MakeFlow(c);
    const auto [s1, s2] = RegisterBoth(*flow);
    TrainBoth(*flow, s1, s2, 1.0f);
    ASSERT_EQ(flow->phase(), Phase::kFinished);
  }
  ManualEventLoop restarted;
  fs::create_directories(c.output_dir);
  FederationModel model;
  model.custom = true;
  model.spec.name = "custom";
  model.initial_state = Model(1.0f);
  RoundFlow flow(c, std::move(model), "", &restarted, MakeLogger("round-flow-test-restarted"));
  flow.Begin(0);
  restarted.RunPending();
  EXPECT_FALSE(restarted.stopped());
  const std::string s1 = Register(flow, "site-1");
  EXPECT_EQ(Poll(flow, "site-1", s1).kind, SiteTask::Kind::kFinish);
  restarted.RunPending();
  EXPECT_FALSE(restarted.stopped());  // site-2 has not been told yet
  const std::string s2 = Register(flow, "site-2");
  EXPECT_EQ(Poll(flow, "site-2", s2).kind, SiteTask::Kind::kFinish);
  restarted.RunPending();
  EXPECT_TRUE(restarted.stopped());
  EXPECT_EQ(flow.exit_code(), 0);
}

// A site whose session stream ends (its process killed) is not waited for: the round ends
// with the others at once, without its deadline; the site is not selected again until it
// registers again; a stream of an older session changes nothing.
TEST_F(RoundFlowTest, AGoneSiteIsNotWaitedForNorSelected) {
  CoordinatorConfig c = Config();
  c.min_sites = 1;
  c.min_available_sites = 2;
  c.rounds = 3;
  auto flow = MakeFlow(c);
  const std::string s1 = Register(*flow, "site-1");
  const std::string s2 = Register(*flow, "site-2");
  ASSERT_TRUE(flow->Attend("site-2", s2).ok());
  EXPECT_EQ(flow->Attend("site-2", "old-session").code(), Status::Code::kNotFound);
  loop_.RunPending();
  ASSERT_TRUE(Send(*flow, "site-1", s1, Poll(*flow, "site-1", s1), 1.0f).ok());
  loop_.RunPending();
  EXPECT_EQ(flow->round(), 1);  // waiting for site-2
  flow->SiteGone("site-2", "old-session");
  loop_.RunPending();
  EXPECT_EQ(flow->round(), 1);
  flow->SiteGone("site-2", s2);
  loop_.RunPending();
  EXPECT_EQ(flow->round(), 2);  // no deadline passed: the manual clock never moved
  SiteTask task;
  EXPECT_EQ(flow->Poll("site-2", s2, 0, &task).code(), Status::Code::kNotFound);
  const SiteTask t1 = Poll(*flow, "site-1", s1);
  ASSERT_EQ(t1.kind, SiteTask::Kind::kTrain);
  const std::string again = Register(*flow, "site-2");  // it comes back: selected next round
  ASSERT_TRUE(Send(*flow, "site-1", s1, t1, 1.0f).ok());
  loop_.RunPending();
  EXPECT_EQ(flow->round(), 3);
  EXPECT_EQ(Poll(*flow, "site-2", again).kind, SiteTask::Kind::kTrain);
  const std::vector<nlohmann::json> rows = MetricsRows();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["contributors"], nlohmann::json::array({"site-1"}));
}

// An excluded site stays excluded after a restart: resume.json keeps the exclusions.
TEST_F(RoundFlowTest, ExclusionsSurviveARestart) {
  CoordinatorConfig c = Config();
  c.max_invalid_updates = 1;
  c.min_available_sites = 3;
  c.rounds = 3;
  {
    auto flow = MakeFlow(c);
    const std::string s1 = Register(*flow, "site-1");
    const std::string s2 = Register(*flow, "site-2");
    const std::string s3 = Register(*flow, "site-3");
    loop_.RunPending();
    EXPECT_EQ(Send(*flow, "site-3", s3, Poll(*flow, "site-3", s3), 1e30f).code(),
              Status::Code::kInvalidArgument);
    TrainBoth(*flow, s1, s2, 1.0f);
    ASSERT_EQ(flow->round(), 2);
    flow->Stop();
  }
  c.min_available_sites = 2;
  auto flow = MakeFlow(c);
  EXPECT_EQ(TryRegister(*flow, "site-3").code(), Status::Code::kFailedPrecondition);
}

// A crash between resume.json and the audit log's append (simulated by cutting the round's entry
// off the log) loses no audit entry: the restarted coordinator appends it from resume.json, and
// the log still verifies.
TEST_F(RoundFlowTest, ARoundsAuditEntryLostInACrashIsRestored) {
  CoordinatorConfig c = Config();
  const fs::path keys = dir_.path() / "keys";
  fs::create_directories(keys);
  c.tls.key = (keys / "coordinator.key").string();
  const KeyAndCert ca = CreateCa("unit CA", 30);
  const KeyAndCert audit = testing::IssueAuditCertificate(ca, "coordinator");
  WriteFileAtomically((keys / kAuditKeyFile).string(), audit.key_pem, "audit key");
  WriteFileAtomically((keys / kAuditCertFile).string(), audit.cert_pem, "audit certificate");
  const fs::path log_path = dir_.path() / "out" / "audit_log.jsonl";
  const auto round_entries = [&] {
    std::vector<int> rounds;
    for (const PrivacyLogEntry& e : ReadLog(log_path.string())) {
      if (e.event == kEventRound) rounds.push_back(e.data.at("round").get<int>());
    }
    return rounds;
  };
  std::string round_1_line;
  {
    auto flow = MakeFlow(c);
    const auto [s1, s2] = RegisterBoth(*flow);
    TrainBoth(*flow, s1, s2, 1.0f);
    ASSERT_EQ(flow->round(), 2);
    flow->Stop();
  }
  ASSERT_EQ(round_entries(), std::vector<int>({1}));
  // Keep the log up to the round's entry (start, ...), as if the process died before it.
  std::string kept;
  {
    std::ifstream in(log_path);
    for (std::string line; std::getline(in, line);) {
      if (line.find("\"event\":\"round\"") != std::string::npos) break;
      kept += line + "\n";
    }
  }
  std::ofstream(log_path, std::ios::trunc) << kept;
  ASSERT_TRUE(round_entries().empty());
  {
    auto flow = MakeFlow(c);
    EXPECT_EQ(round_entries(), std::vector<int>({1}));
    flow->Stop();
  }
  {
    auto flow = MakeFlow(c);  // a second restart appends nothing more
    flow->Stop();
  }
  EXPECT_EQ(round_entries(), std::vector<int>({1}));
  const LogVerification verified = VerifyLog(log_path.string(), audit.cert_pem, ca.cert_pem);
  EXPECT_TRUE(verified.ok) << verified.what;
}

// A round that loses its sites does not start an attempt nobody can answer (which would wait for
// its deadline, or count toward the stop after every site declined): it waits for registrations.
TEST_F(RoundFlowTest, AnAttemptWaitsForEnoughSitesToRegister) {
  CoordinatorConfig c = Config();
  c.min_sites = 1;
  c.rounds = 1;
  c.max_attempts = 2;
  auto flow = MakeFlow(c);
  const std::string s1 = Register(*flow, "site-1");
  ASSERT_TRUE(flow->Attend("site-1", s1).ok());
  loop_.RunPending();
  ASSERT_EQ(Poll(*flow, "site-1", s1).kind, SiteTask::Kind::kTrain);
  flow->SiteGone("site-1", s1);  // killed while training
  for (int i = 0; i < 10; ++i) loop_.Advance(2);  // an hour of attempts would stop the federation
  EXPECT_FALSE(loop_.stopped());
  const std::string s2 = Register(*flow, "site-2");
  loop_.RunPending();
  const SiteTask t2 = Poll(*flow, "site-2", s2);
  ASSERT_EQ(t2.kind, SiteTask::Kind::kTrain);
  ASSERT_TRUE(Send(*flow, "site-2", s2, t2, 1.0f).ok());
  loop_.RunPending();
  EXPECT_EQ(flow->phase(), Phase::kFinished);
  const std::vector<nlohmann::json> rows = MetricsRows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["attempt"], 2);
  EXPECT_EQ(rows[0]["contributors"], nlohmann::json::array({"site-2"}));
}

}  // namespace
}  // namespace fedmed
