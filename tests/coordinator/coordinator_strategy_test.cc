// The coordinator with the strategies of coordinator/strategy/, in this process over mutual-TLS
// gRPC on loopback, with a tiny custom model and hand-made updates (no training): train tasks
// carry FedProx's mu; a malformed update does not count toward the quorum; metrics.jsonl names
// the strategy; a FedAdam federation stopped after round 1 and restarted from its output_dir
// produces bit for bit the global model of an uninterrupted one; an int8 federation
// ([transport] update_encoding) refuses a float32 update and aggregates the dequantised one.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/crypto/sha256.h"
#include "common/model/model_state.h"
#include "coordinator/app/coordinator.h"
#include "coordinator/strategy/strategy.h"
#include "site_agent/connection.h"
#include "tests/coordinator/in_process_util.h"
#include "tests/integration/federation_util.h"
#include "tests/test_util.h"
#include "tools/pki/provision.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;

// A 3x2 weight and a 2-vector bias.
ModelState Model(float w0, float b0) {
  ModelState s;
  s.tensors.push_back(NamedTensor{"fc.weight", {3, 2}, {}});
  s.tensors.push_back(NamedTensor{"fc.bias", {2}, {}});
  for (std::size_t i = 0; i < 6; ++i) s.tensors[0].values.push_back(w0 + 0.125f * i);
  for (std::size_t i = 0; i < 2; ++i) s.tensors[1].values.push_back(b0 - 0.5f * i);
  return s;
}

// One provisioned federation with one allowed site, "site-1"; coordinators are started on it
// one after another (a restart keeps output_dir).
class StrategyFederationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = testing::ProvisionLoopbackFederation(dir_ / "pki", {"site-1"});
  }

  CoordinatorConfig Config(const std::string& output, const std::string& strategy, int rounds) {
    CoordinatorConfig config = testing::InProcessCoordinatorConfig(pki_, dir_ / output, rounds);
    config.strategy.name = strategy;
    return config;
  }

  testing::TempDir dir_{"fedmed-coordinator-strategy"};
  ProvisionResult pki_;
};

// A coordinator running in a thread, and site-1's connection to it, registered; with the
// site's side of a round.
class Running : public testing::InProcessFederation {
 public:
  using InProcessFederation::InProcessFederation;

  // The next task that is not "wait".
  SiteTask NextTask() {
    for (int i = 0; i < 10; ++i) {
      SiteTask task = connection().Poll(session(), 10000);
      if (task.kind != SiteTask::Kind::kWait) return task;
    }
    ADD_FAILURE() << "no task within 100 s";
    return SiteTask{};
  }

  void Upload(const SiteTask& task, const ModelState& delta) {
    UploadBytes(task, EncodeModelState(delta));
  }
  // Answers the next task, when it is one to train, with `delta`; returns the task's round.
  int UploadNext(const ModelState& delta) {
    const SiteTask task = NextTask();
    if (task.kind == SiteTask::Kind::kTrain) Upload(task, delta);
    return task.round;
  }
  void UploadBytes(const SiteTask& task, const std::string& bytes) {
    UpdateInfo info;
    info.round = task.round;
    info.base_version = task.model.version;
    info.num_samples = 10;
    connection().UploadUpdate(session(), info, bytes);
  }
};

std::vector<nlohmann::json> ReadJsonLines(const fs::path& file) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

TEST_F(StrategyFederationTest, TrainTasksCarryFedProxMu) {
  CoordinatorConfig config = Config("fedprox", "fedprox", 1);
  config.strategy.proximal_mu = 0.25;
  Running federation(config, Model(1, 2), pki_);
  const SiteTask task = federation.NextTask();
  ASSERT_EQ(task.kind, SiteTask::Kind::kTrain);
  EXPECT_EQ(task.settings.proximal_mu, 0.25);

  Running fedavg(Config("fedavg", "fedavg", 1), Model(1, 2), pki_);
  const SiteTask plain = fedavg.NextTask();
  ASSERT_EQ(plain.kind, SiteTask::Kind::kTrain);
  EXPECT_EQ(plain.settings.proximal_mu, 0.0);
}

TEST_F(StrategyFederationTest, MalformedUpdateDoesNotCountAndMedianAggregates) {
  const CoordinatorConfig config = Config("median", "median", 1);
  const ModelState initial = Model(1, 2);
  Running federation(config, initial, pki_);
  const SiteTask task = federation.NextTask();
  ASSERT_EQ(task.kind, SiteTask::Kind::kTrain);
  // Same size, other layout: refused, and the round still waits for this site's update.
  ModelState transposed = Model(0, 0);
  transposed.tensors[0].shape = {2, 3};
  EXPECT_THROW(federation.Upload(task, transposed), RpcError);
  const ModelState delta = Model(0.5f, -1);
  federation.Upload(task, delta);  // accepted: the refused one did not count
  EXPECT_EQ(federation.NextTask().kind, SiteTask::Kind::kFinish);
  EXPECT_EQ(federation.Stop(), 0);

  ModelState expected = initial;  // the median of one update is that update
  for (std::size_t t = 0; t < expected.tensors.size(); ++t) {
    for (std::size_t i = 0; i < expected.tensors[t].values.size(); ++i) {
      expected.tensors[t].values[i] += delta.tensors[t].values[i];
    }
  }
  EXPECT_TRUE(federation.coordinator().GlobalModelBytes() == EncodeModelState(expected));
  const std::vector<nlohmann::json> rows =
      ReadJsonLines(fs::path(config.output_dir) / "metrics.jsonl");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["strategy"], "median");
  EXPECT_EQ(rows[0]["contributors"].size(), 1u);
}

// [transport] update_encoding = "int8": the train task says so, a float32 update is refused
// before its data (INVALID_ARGUMENT), the int8 one is decoded and aggregated (FedAvg of one
// site: the global model moves by the dequantised update exactly), and metrics.jsonl records
// the encoding and the bytes that came up.
TEST_F(StrategyFederationTest, Int8UpdatesAreAnnouncedCheckedDecodedAndCounted) {
  CoordinatorConfig config = Config("int8", "fedavg", 1);
  config.update_encoding = "int8";
  const ModelState initial = Model(1, 2);
  Running federation(config, initial, pki_);
  const SiteTask task = federation.NextTask();
  ASSERT_EQ(task.kind, SiteTask::Kind::kTrain);
  EXPECT_EQ(task.update_encoding, "int8");
  const ModelState delta = Model(0.5f, -1);
  try {
    federation.Upload(task, delta);  // float32
    ADD_FAILURE() << "a float32 update was accepted by an int8 federation";
  } catch (const RpcError& e) {
    EXPECT_EQ(e.kind(), RpcError::Kind::kRejected) << e.what();
  }
  const std::string bytes = EncodeModelState(delta, UpdateEncoding::kInt8, 7);
  federation.UploadBytes(task, bytes);
  EXPECT_EQ(federation.NextTask().kind, SiteTask::Kind::kFinish);
  EXPECT_EQ(federation.Stop(), 0);

  const ModelState decoded = DecodeModelState(bytes, "int8 update", UpdateEncoding::kInt8);
  ModelState expected = initial;
  for (std::size_t t = 0; t < expected.tensors.size(); ++t) {
    for (std::size_t i = 0; i < expected.tensors[t].values.size(); ++i) {
      expected.tensors[t].values[i] += decoded.tensors[t].values[i];
    }
  }
  const ModelState global =
      DecodeModelState(federation.coordinator().GlobalModelBytes(), "global model");
  for (std::size_t t = 0; t < expected.tensors.size(); ++t) {
    for (std::size_t i = 0; i < expected.tensors[t].values.size(); ++i) {
      EXPECT_FLOAT_EQ(global.tensors[t].values[i], expected.tensors[t].values[i]);
    }
  }
  const std::vector<nlohmann::json> rows =
      ReadJsonLines(fs::path(config.output_dir) / "metrics.jsonl");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["update_encoding"], "int8");
  EXPECT_EQ(rows[0]["bytes"]["up"], static_cast<int64_t>(bytes.size()));
  EXPECT_EQ(rows[0]["bytes"]["down"], 0);  // this site never asked for the model
}

TEST_F(StrategyFederationTest, FedAdamResumedAfterARestartContinuesExactly) {
  const ModelState initial = Model(1, 2);
  const ModelState d1 = Model(0.25f, -0.5f);
  const ModelState d2 = Model(-0.75f, 0.125f);

  // Uninterrupted: two rounds.
  const CoordinatorConfig straight = Config("straight", "fedadam", 2);
  std::string uninterrupted;
  {
    Running federation(straight, initial, pki_);
    ASSERT_EQ(federation.UploadNext(d1), 1);
    ASSERT_EQ(federation.UploadNext(d2), 2);
    EXPECT_EQ(federation.NextTask().kind, SiteTask::Kind::kFinish);
    EXPECT_EQ(federation.Stop(), 0);
    uninterrupted = federation.coordinator().GlobalModelBytes();
  }

  // Interrupted: stopped once round 1 is checkpointed, then restarted with the same output_dir.
  const CoordinatorConfig config = Config("resumed", "fedadam", 2);
  std::string after_round_1;
  {
    Running federation(config, initial, pki_);
    ASSERT_EQ(federation.UploadNext(d1), 1);
    const SiteTask task = federation.NextTask();  // round 2 starts after round 1's checkpoint
    ASSERT_EQ(task.round, 2);
    after_round_1 = task.model.sha256;
    EXPECT_EQ(federation.Stop(), 1);  // stopped early
  }
  const fs::path out(config.output_dir);
  const nlohmann::json resume = nlohmann::json::parse(testing::ReadFile(out / "resume.json"));
  EXPECT_EQ(resume["completed_round"], 1);
  EXPECT_EQ(resume["strategy"], "fedadam");
  ASSERT_EQ(resume["strategy_state"], "checkpoints/round-0001.strategy");
  const std::string state = testing::ReadFile(out / "checkpoints/round-0001.strategy");
  EXPECT_FALSE(state.empty());
  EXPECT_EQ(resume["strategy_state_sha256"], Sha256Hex(state));
  std::unique_ptr<Strategy> loaded = MakeStrategy(config.strategy);
  ASSERT_NO_THROW(loaded->LoadState(state));
  EXPECT_EQ(loaded->SaveState(), state);
  {
    Running federation(config, initial, pki_);
    SiteTask task = federation.NextTask();
    ASSERT_EQ(task.round, 2);
    EXPECT_EQ(task.model.sha256, after_round_1);
    federation.Upload(task, d2);
    EXPECT_EQ(federation.NextTask().kind, SiteTask::Kind::kFinish);
    EXPECT_EQ(federation.Stop(), 0);
    EXPECT_TRUE(federation.coordinator().GlobalModelBytes() == uninterrupted)
        << "the resumed federation's round-2 model differs from the uninterrupted one";
  }
  const std::vector<nlohmann::json> rows = ReadJsonLines(out / "metrics.jsonl");
  ASSERT_EQ(rows.size(), 2u);
  for (const nlohmann::json& row : rows) EXPECT_EQ(row["strategy"], "fedadam");

  // Both are FedAdam as the strategy library computes it, and restoring the moments mattered:
  // a FedAdam started afresh at round 2 gives another model.
  std::unique_ptr<Strategy> adam = MakeStrategy(config.strategy);
  adam->BeginRound(initial);
  adam->AddUpdate("site-1", d1, 10);
  const ModelState g1 = adam->AggregateFit(initial);
  EXPECT_EQ(Sha256Hex(EncodeModelState(g1)), after_round_1);
  adam->BeginRound(g1);
  adam->AddUpdate("site-1", d2, 10);
  EXPECT_TRUE(EncodeModelState(adam->AggregateFit(g1)) == uninterrupted);
  std::unique_ptr<Strategy> fresh = MakeStrategy(config.strategy);
  fresh->BeginRound(g1);
  fresh->AddUpdate("site-1", d2, 10);
  EXPECT_FALSE(EncodeModelState(fresh->AggregateFit(g1)) == uninterrupted);
}

TEST_F(StrategyFederationTest, ResumingWithAnotherStrategyIsRefused) {
  const ModelState initial = Model(1, 2);
  {
    Running federation(Config("switch", "fedadam", 2), initial, pki_);
    SiteTask task = federation.NextTask();
    federation.Upload(task, Model(0.25f, -0.5f));
    ASSERT_EQ(federation.NextTask().round, 2);
  }
  Coordinator::Options options;
  options.initial_model = initial;
  options.custom_model = true;
  options.handle_signals = false;
  try {
    Coordinator coordinator(Config("switch", "fedyogi", 2), options);
    FAIL() << "a fedadam federation resumed as fedyogi";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("\"fedadam\""), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace fedmed
