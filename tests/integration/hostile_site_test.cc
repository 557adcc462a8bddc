// One hostile site beside three honest ones, over real mutual TLS against the real
// fedmed-coordinator binary, one federation per case: whatever the hostile site sends, the
// coordinator refuses it naming the site, the federation goes on and ends (coordinator and honest
// sites exit 0), and the global model is good (test AUC >= 0.90).
//
// The hostile site is this test: a raw gRPC client with its own provisioned certificate, so
// that it can send what fedmed-site never would. After its attack in a round it declines the
// round (and answers evaluation with a valid report), so that no case waits for a deadline.
// The federations run 2 rounds of the demo's settings (not 5: 12 federations must fit in CI);
// AUC is read from metrics.jsonl.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/crypto/sha256.h"
#include "common/model/model_state.h"
#include "common/transport/tls.h"
#include "common/transport/wire.h"
#include "common/util/data_path.h"
#include "common/util/process.h"
#include "proto/fedmed.grpc.pb.h"
#include "tests/integration/refusal_util.h"
#include "tests/test_util.h"
#include "tools/pki/provision.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;
using testing::CoordinatorProcess;

constexpr char kHostile[] = "site-h";

// The hostile site's raw connection and session.
class Hostile {
 public:
  Hostile(const std::string& target, const SiteConfig& config)
      : stub_(v1::Federation::NewStub(
            grpc::CreateChannel(target, MakeChannelCredentials(config.tls)))) {}

  bool Register() {
    RegistrationInfo info;
    info.site_name = kHostile;
    info.num_train_samples = 100;
    info.num_test_samples = 10;
    info.in_channels = 1;
    info.num_classes = 2;
    info.preprocessing = PreprocessSpec{}.Canonical();
    v1::RegisterRequest request;
    ToProto(info, &request);
    v1::RegisterReply reply;
    grpc::ClientContext context;
    Deadline(&context, 10);
    if (!stub_->Register(&context, request, &reply).ok()) return false;
    session_ = reply.session_id();
    return true;
  }

  v1::Task Poll() {
    v1::PollRequest request;
    request.set_session_id(session_);
    request.set_wait_ms(1000);
    v1::Task task;
    grpc::ClientContext context;
    Deadline(&context, 10);
    if (!stub_->PollTask(&context, request, &task).ok()) task.mutable_wait();
    return task;
  }

  ModelState Download(const v1::ModelRef& ref) {
    v1::DownloadRequest request;
    request.set_session_id(session_);
    request.set_version(ref.version());
    grpc::ClientContext context;
    Deadline(&context, 30);
    auto reader = stub_->DownloadModel(&context, request);
    v1::ModelChunk chunk;
    std::string bytes;
    while (reader->Read(&chunk)) bytes += chunk.data();
    reader->Finish();
    return DecodeModelState(bytes, "global model");
  }

  // The header of an upload of `bytes` for `train`'s round and model.
  v1::UpdateHeader Header(const v1::TrainTask& train, const std::string& bytes,
                          int64_t num_samples = 100) const {
    v1::UpdateHeader h;
    h.set_session_id(session_);
    h.set_round(train.round());
    h.set_base_version(train.model().version());
    h.set_num_samples(num_samples);
    h.set_size_bytes(static_cast<int64_t>(bytes.size()));
    h.set_sha256(Sha256Hex(bytes));
    return h;
  }

  // Uploads `header` then `bytes` in 1 MiB chunks; `send_bytes` < size stops half way (and
  // cancels). Returns the status code.
  grpc::StatusCode Upload(const v1::UpdateHeader& header, const std::string& bytes,
                          size_t send_bytes = std::string::npos) {
    grpc::ClientContext context;
    Deadline(&context, 60);
    v1::UploadReply reply;
    auto writer = stub_->UploadUpdate(&context, &reply);
    v1::UpdateChunk chunk;
    *chunk.mutable_header() = header;
    writer->Write(chunk);
    const size_t end = std::min(send_bytes, bytes.size());
    for (size_t at = 0; at < end; at += size_t{1} << 20) {
      chunk.set_data(bytes.substr(at, std::min(size_t{1} << 20, end - at)));
      if (!writer->Write(chunk)) break;
    }
    if (end < bytes.size()) {
      context.TryCancel();
      writer->Finish();
      return grpc::StatusCode::CANCELLED;
    }
    writer->WritesDone();
    return writer->Finish().error_code();
  }

  // The raw stub and session, for cases that need more than the calls above.
  v1::Federation::Stub* stub() { return stub_.get(); }
  const std::string& session() const { return session_; }

  void Decline(int round) {
    v1::DeclineRequest request;
    request.set_session_id(session_);
    request.set_round(round);
    request.set_reason("hostile test site");
    v1::DeclineReply reply;
    grpc::ClientContext context;
    Deadline(&context, 10);
    stub_->DeclineTask(&context, request, &reply);
  }

  grpc::StatusCode Report(int round, int version, const ClassificationMetrics& m) {
    EvaluationReport r;
    r.session_id = session_;
    r.round = round;
    r.model_version = version;
    r.metrics = m;
    v1::EvaluationReport request;
    ToProto(r, &request);
    v1::EvaluationReply reply;
    grpc::ClientContext context;
    Deadline(&context, 10);
    return stub_->ReportEvaluation(&context, request, &reply).error_code();
  }

  static void Deadline(grpc::ClientContext* context, int seconds) {
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  }

 private:
  std::unique_ptr<v1::Federation::Stub> stub_;
  std::string session_;
};

ClassificationMetrics ValidReport() {
  ClassificationMetrics m;
  m.num_classes = 2;
  m.num_samples = 10;
  m.confusion = {4, 1, 2, 3};
  m.loss = 0.5;
  m.accuracy = 0.7;
  m.auc = 0.8;
  return m;
}

ModelState Scaled(const ModelState& like, float value) {
  ModelState s = like;
  for (NamedTensor& t : s.tensors) {
    for (float& v : t.values) v = value;
  }
  return s;
}

struct Case {
  const char* name;
  // The hostile act in a training round (task, hostile), returning the gRPC code it got; and
  // the code expected. Null: the act is in the evaluation (`evaluation`).
  std::function<grpc::StatusCode(const v1::TrainTask&, Hostile&)> train;
  std::function<grpc::StatusCode(const v1::EvaluateTask&, Hostile&)> evaluation;
  grpc::StatusCode expected;
  // Whether the case checks that the honest sites' transfers in round 1 (server-side download
  // and upload time, metrics.jsonl seconds.transfer_by_site) took under a second each.
  bool honest_transfers_under_1s = false;
};

void PrintTo(const Case& c, std::ostream* out) { *out << c.name; }

class HostileSiteTest : public ::testing::TestWithParam<Case> {};

TEST_P(HostileSiteTest, FederationEndsWellAndTheRefusalNamesTheSite) {
  const Case& c = GetParam();
  ::fedmed::testing::TempDir dir(std::string("fedmed-hostile-") + c.name);
  ProvisionOptions options;
  options.out_dir = dir.path() / "pki";
  options.site_names = {"site-1", "site-2", "site-3", kHostile};
  options.coordinator_address = "127.0.0.1:0";
  options.coordinator_template.listen_address = "127.0.0.1:0";
  options.coordinator_template.eval_data = ResolveDataPath("medmnist/pneumoniamnist.npz");
  options.coordinator_template.rounds = 2;
  options.coordinator_template.min_sites = 3;
  options.coordinator_template.min_available_sites = 4;
  options.coordinator_template.output_dir = (dir.path() / "coordinator").string();
  options.site_template.data.path = ResolveDataPath("medmnist/pneumoniamnist.npz");
  options.site_template.data.partition = "iid";
  options.site_template.data.num_shards = 3;
  const ProvisionResult pki = ProvisionFederation(options);
  CoordinatorConfig coordinator = LoadCoordinatorConfig(pki.coordinator_config);
  coordinator.output_dir = (dir.path() / "coordinator").string();
  coordinator.eval_data = ResolveDataPath("medmnist/pneumoniamnist.npz");
  coordinator.upload_idle_seconds = 5;
  const std::string coordinator_toml = (dir.path() / "coordinator.toml").string();
  std::ofstream(coordinator_toml) << RenderCoordinatorConfig(coordinator);

  CoordinatorProcess process(coordinator_toml, dir.path());
  const int port = process.WaitForPort();
  ASSERT_GT(port, 0);
  const std::string target = "127.0.0.1:" + std::to_string(port);

  std::vector<std::unique_ptr<ChildProcess>> honest;
  for (int k = 1; k <= 3; ++k) {
    const std::string name = "site-" + std::to_string(k);
    SiteConfig site = LoadSiteConfig(pki.site_configs.at(name));
    site.coordinator_address = target;
    site.output_dir = (dir.path() / name).string();
    site.data.shard = k;  // an IID third of the training split each
    site.data.num_shards = 3;
    site.threads = 1;
    const std::string path = (dir.path() / (name + ".toml")).string();
    std::ofstream(path) << RenderSiteConfig(site);
    honest.push_back(std::make_unique<ChildProcess>(
        std::vector<std::string>{::fedmed::testing::BinDir() + "/fedmed-site", "--config", path},
        (dir.path() / (name + ".out")).string()));
  }

  Hostile hostile(target, LoadSiteConfig(pki.site_configs.at(kHostile)));
  ASSERT_TRUE(hostile.Register());
  std::vector<grpc::StatusCode> got;
  bool attacked = false;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(4);
  while (std::chrono::steady_clock::now() < give_up) {
    const v1::Task task = hostile.Poll();
    if (task.has_finish()) break;
    if (task.has_train()) {
      if (c.train && !attacked) {
        got.push_back(c.train(task.train(), hostile));
        attacked = true;
      }
      hostile.Decline(task.train().round());
    } else if (task.has_evaluate()) {
      const v1::EvaluateTask& e = task.evaluate();
      if (c.evaluation && !attacked) {
        got.push_back(c.evaluation(e, hostile));
        attacked = true;
      }
      hostile.Report(e.round(), e.model().version(), ValidReport());
    }
  }
  ASSERT_FALSE(got.empty()) << "the hostile site never had its chance";
  EXPECT_EQ(got.front(), c.expected) << c.name;

  for (auto& site : honest) EXPECT_EQ(site->Wait(120), std::optional<int>(0)) << site->name();
  const std::string log_path = (dir.path() / "coordinator" / "coordinator.log").string();
  EXPECT_TRUE(::fedmed::testing::WaitForFileContaining(log_path, "coordinator stopped", 30));
  const std::string log = process.Log();
  // The refusal is in the log, naming the hostile site.
  bool named = false;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    const bool refusal = line.find("refused") != std::string::npos ||
                         line.find("rejected") != std::string::npos ||
                         line.find("cancelled") != std::string::npos;
    if (refusal && line.find(kHostile) != std::string::npos) named = true;
  }
  EXPECT_TRUE(named) << log;
  std::vector<nlohmann::json> rows;
  std::ifstream in(dir.path() / "coordinator" / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows.size(), 2u) << log;
  EXPECT_EQ(rows[0]["round"], 1);
  EXPECT_EQ(rows[1]["round"], 2);
  EXPECT_GE(rows[1]["global"]["auc"].get<double>(), 0.90);
  if (c.honest_transfers_under_1s) {
    for (const char* name : {"site-1", "site-2", "site-3"}) {
      const nlohmann::json& seconds = rows[0]["seconds"]["transfer_by_site"];
      ASSERT_TRUE(seconds.contains(name)) << rows[0].dump();
      EXPECT_LT(seconds[name].get<double>(), 1.0) << name << ": " << rows[0].dump();
    }
  }
  // The coordinator ends after the last round with status 0 (it stops once every site is told).
  const std::string status = ::fedmed::testing::ReadFile(dir.path() / "coordinator" / "status.json");
  EXPECT_NE(status.find("\"phase\":\"finished\""), std::string::npos) << status;
  EXPECT_NE(log.find("coordinator stopped (exit status 0)"), std::string::npos) << log;
}

std::string Encoded(const ModelState& s) { return EncodeModelState(s); }

const Case kCases[] = {
    {"huge-values",
     [](const v1::TrainTask& t, Hostile& h) {
       const std::string bytes = Encoded(Scaled(h.Download(t.model()), 1e30f));
       return h.Upload(h.Header(t, bytes), bytes);
     },
     nullptr, grpc::StatusCode::INVALID_ARGUMENT},
    {"honest-size-times-100",
     // An update of the size the demo's honest sites send (0.4 x the global model's norm,
     // metrics.jsonl of the demo) scaled by 100.
     [](const v1::TrainTask& t, Hostile& h) {
       ModelState delta = h.Download(t.model());
       for (NamedTensor& x : delta.tensors) {
         for (float& v : x.values) v *= 0.4f * 100;
       }
       const std::string bytes = Encoded(delta);
       return h.Upload(h.Header(t, bytes), bytes);
     },
     nullptr, grpc::StatusCode::INVALID_ARGUMENT},
    {"num-samples-1e15",
     [](const v1::TrainTask& t, Hostile& h) {
       const std::string bytes = Encoded(Scaled(h.Download(t.model()), 0.0f));
       return h.Upload(h.Header(t, bytes, 1000000000000000), bytes);
     },
     nullptr, grpc::StatusCode::INVALID_ARGUMENT},
    {"eval-3-classes", nullptr,
     [](const v1::EvaluateTask& e, Hostile& h) {
       ClassificationMetrics m = ValidReport();
       m.num_classes = 3;
       m.confusion = {4, 1, 0, 2, 3, 0, 0, 0, 0};
       return h.Report(e.round(), e.model().version(), m);
     },
     grpc::StatusCode::INVALID_ARGUMENT},
    {"eval-2-to-the-32-classes", nullptr,
     [](const v1::EvaluateTask& e, Hostile& h) {
       ClassificationMetrics m = ValidReport();
       m.num_classes = int64_t{1} << 32;
       return h.Report(e.round(), e.model().version(), m);
     },
     grpc::StatusCode::INVALID_ARGUMENT},
    {"eval-negative-counts", nullptr,
     [](const v1::EvaluateTask& e, Hostile& h) {
       ClassificationMetrics m = ValidReport();
       m.confusion = {-4, 9, 2, 3};
       return h.Report(e.round(), e.model().version(), m);
     },
     grpc::StatusCode::INVALID_ARGUMENT},
    {"40-stalled-uploads",
     // 40 uploads that send a header and then nothing, held open 30 s: 39 are refused at once,
     // and the coordinator cancels the one it took after [federation] upload_idle_seconds (5 s
     // here). Meanwhile the honest sites' transfers go on unhindered.
     [](const v1::TrainTask& t, Hostile& h) {
       const std::string bytes = Encoded(Scaled(h.Download(t.model()), 0.0f));
       std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
       std::vector<std::unique_ptr<grpc::ClientWriter<v1::UpdateChunk>>> writers;
       std::vector<v1::UploadReply> replies(40);
       for (int i = 0; i < 40; ++i) {
         contexts.push_back(std::make_unique<grpc::ClientContext>());
         Hostile::Deadline(contexts.back().get(), 60);
         writers.push_back(h.stub()->UploadUpdate(contexts.back().get(), &replies[i]));
         v1::UpdateChunk chunk;
         *chunk.mutable_header() = h.Header(t, bytes);
         writers.back()->Write(chunk);
       }
       std::this_thread::sleep_for(std::chrono::seconds(30));
       int refused = 0;
       int cut = 0;
       for (size_t i = 0; i < writers.size(); ++i) {
         writers[i]->WritesDone();
         const grpc::StatusCode code = writers[i]->Finish().error_code();
         if (code == grpc::StatusCode::RESOURCE_EXHAUSTED) ++refused;
         // The server's cancellation reaches the client as CANCELLED.
         if (code == grpc::StatusCode::CANCELLED || code == grpc::StatusCode::DEADLINE_EXCEEDED) {
           ++cut;
         }
       }
       return refused == 39 && cut == 1 ? grpc::StatusCode::DEADLINE_EXCEEDED
                                        : grpc::StatusCode::UNKNOWN;
     },
     nullptr, grpc::StatusCode::DEADLINE_EXCEEDED, /*honest_transfers_under_1s=*/true},
    {"200000-empty-chunks",
     [](const v1::TrainTask& t, Hostile& h) {
       const std::string bytes = Encoded(Scaled(h.Download(t.model()), 0.0f));
       grpc::ClientContext context;
       Hostile::Deadline(&context, 60);
       v1::UploadReply reply;
       auto writer = h.stub()->UploadUpdate(&context, &reply);
       v1::UpdateChunk chunk;
       *chunk.mutable_header() = h.Header(t, bytes);
       writer->Write(chunk);
       chunk.set_data("");
       for (int i = 0; i < 200000 && writer->Write(chunk); ++i) {
       }
       writer->WritesDone();
       return writer->Finish().error_code();
     },
     nullptr, grpc::StatusCode::INVALID_ARGUMENT},
    {"update-for-round-plus-5",
     [](const v1::TrainTask& t, Hostile& h) {
       const std::string bytes = Encoded(Scaled(h.Download(t.model()), 0.0f));
       v1::UpdateHeader header = h.Header(t, bytes);
       header.set_round(t.round() + 5);
       return h.Upload(header, bytes);
     },
     nullptr, grpc::StatusCode::FAILED_PRECONDITION},
    {"two-updates-in-one-round",
     [](const v1::TrainTask& t, Hostile& h) {
       const std::string bytes = Encoded(Scaled(h.Download(t.model()), 0.0f));
       if (h.Upload(h.Header(t, bytes), bytes) != grpc::StatusCode::OK) {
         return grpc::StatusCode::UNKNOWN;  // the first, valid one must be taken
       }
       return h.Upload(h.Header(t, bytes), bytes);
     },
     nullptr, grpc::StatusCode::FAILED_PRECONDITION},
    {"disconnect-half-way",
     [](const v1::TrainTask& t, Hostile& h) {
       const std::string bytes = Encoded(Scaled(h.Download(t.model()), 0.0f));
       return h.Upload(h.Header(t, bytes), bytes, bytes.size() / 2);
     },
     nullptr, grpc::StatusCode::CANCELLED},
    {"upload-when-not-expected",
     // After declining the round the site is no longer expected to send anything.
     [](const v1::TrainTask& t, Hostile& h) {
       h.Decline(t.round());
       const std::string bytes = Encoded(Scaled(h.Download(t.model()), 0.0f));
       return h.Upload(h.Header(t, bytes), bytes);
     },
     nullptr, grpc::StatusCode::FAILED_PRECONDITION},
};

INSTANTIATE_TEST_SUITE_P(Cases, HostileSiteTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string name = info.param.name;
                           for (char& ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace fedmed
