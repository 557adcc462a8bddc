// fedmed-report (issue 15, item 2): the metrics of report_metrics.h on small cases worked by hand,
// and the binary on a run directory holding a cnn trained here on PneumoniaMNIST: report.json's
// AUC against scikit-learn's roc_auc_score on predictions.csv (1e-9), its DeLong interval
// against an independent implementation (Sun & Xu's midrank algorithm, 1e-6), the figures and
// the page.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>
#include <sstream>

#include "common/data/medmnist.h"
#include "common/model/checkpoint.h"
#include "common/model/local_training.h"
#include "common/util/data_path.h"
#include "tests/test_util.h"
#include "tools/report/report_builder.h"
#include "tools/report/report_metrics.h"

namespace fedmed {
namespace {

using namespace fedmed::report;

TEST(ReportMetricsTest, AucCountsTiesAsHalf) {
  // positives 0.9, 0.5; negatives 0.5, 0.1: pairs (0.9>0.5) (0.9>0.1) (0.5=0.5) (0.5>0.1).
  const std::vector<double> s = {0.9, 0.5, 0.5, 0.1};
  const std::vector<bool> y = {true, true, false, false};
  EXPECT_DOUBLE_EQ(RocAuc(s, y), 3.5 / 4);
  EXPECT_THROW(RocAuc(s, {true, true, true, true}), std::invalid_argument);
  const std::vector<CurvePoint> roc = RocCurve(s, y);
  ASSERT_EQ(roc.size(), 4u);
  EXPECT_DOUBLE_EQ(roc[2].x, 0.5);
  EXPECT_DOUBLE_EQ(roc[2].y, 1.0);
  // Precision 1 at recall 0.5, then 2/3 at recall 1: AP = 0.5 * 1 + 0.5 * 2/3.
  EXPECT_DOUBLE_EQ(AveragePrecision(s, y), 0.5 + 0.5 * 2.0 / 3.0);
}

TEST(ReportMetricsTest, WilsonIntervalMatchesTheFormula) {
  // 381 of 390: the demo's sensitivity; Wilson (1927) by hand with z = 1.959964.
  const Proportion p = Wilson(381, 390);
  EXPECT_NEAR(p.value, 0.976923077, 1e-9);
  EXPECT_NEAR(p.lower, 0.956729914, 1e-8);
  EXPECT_NEAR(p.upper, 0.987812595, 1e-8);
  const Proportion none = Wilson(0, 10);
  EXPECT_EQ(none.lower, 0.0);
  EXPECT_NEAR(none.upper, 0.277532, 1e-6);
}

TEST(ReportMetricsTest, YoudenConfusionAndCalibration) {
  const std::vector<double> s = {0.95, 0.8, 0.7, 0.6, 0.4, 0.2};
  const std::vector<bool> y = {true, true, false, true, false, false};
  // J at 0.6: 3/3 - 1/3; at 0.8: 2/3 - 0: both 2/3, the higher threshold wins.
  EXPECT_DOUBLE_EQ(YoudenThreshold(s, y), 0.8);
  const BinaryConfusion c = ConfusionAt(s, y, 0.5);
  EXPECT_EQ(c.tp, 3);
  EXPECT_EQ(c.fp, 1);
  EXPECT_EQ(c.tn, 2);
  EXPECT_EQ(c.fn, 0);
  // Two images: confidence 0.9 right (bin 9), 0.6 wrong (bin 6 holds (0.5, 0.6]).
  const Calibration cal = Calibrate({{0.1, 0.9}, {0.6, 0.4}}, {1, 1}, 10);
  EXPECT_EQ(cal.count[8], 1);
  EXPECT_EQ(cal.count[5], 1);
  EXPECT_NEAR(cal.ece, 0.5 * 0.1 + 0.5 * 0.6, 1e-12);
  EXPECT_NEAR(cal.brier, (0.01 + 0.36) / 2, 1e-12);
}

TEST(ReportMetricsTest, BootstrapIsSeededAndBracketsTheAuc) {
  std::vector<std::vector<double>> p;
  std::vector<int64_t> labels;
  for (int i = 0; i < 90; ++i) {
    const int k = i % 3;
    std::vector<double> row(3, 0.2);
    row[static_cast<size_t>((i % 7 == 0) ? (k + 1) % 3 : k)] = 0.6;
    p.push_back(row);
    labels.push_back(k);
  }
  const AucInterval a = BootstrapMacroAuc(p, labels, 500, 7);
  const AucInterval b = BootstrapMacroAuc(p, labels, 500, 7);
  EXPECT_EQ(a.lower, b.lower);
  EXPECT_EQ(a.upper, b.upper);
  EXPECT_LE(a.lower, a.auc);
  EXPECT_GE(a.upper, a.auc);
  EXPECT_LT(a.lower, a.upper);
  EXPECT_EQ(a.method, "bootstrap");
}

// A three-class set: one-vs-rest curves per class, the bootstrap interval (said so), a 3x3
// confusion matrix, no binary operating points; the rounds and sites of metrics.jsonl.
TEST(ReportMetricsTest, MultiClassReportUsesOneVsRestAndTheBootstrap) {
  SplitPredictions test;
  for (int i = 0; i < 60; ++i) {
    const int k = i % 3;
    std::vector<double> row(3, 0.25);
    row[static_cast<size_t>(i % 5 == 0 ? (k + 2) % 3 : k)] = 0.5;
    test.probabilities.push_back(row);
    test.labels.push_back(k);
  }
  const nlohmann::json r = BuildReport(
      test, {}, {"a", "b", "c"},
      "{\"round\":1,\"global\":{\"auc\":0.8},\"sites\":{\"s1\":{\"auc\":0.7}}}\n", 200, 1);
  EXPECT_EQ(r["test"]["auc"]["method"], "bootstrap");
  EXPECT_EQ(r["test"]["roc"].size(), 3u);
  EXPECT_EQ(r["test"]["pr"].size(), 3u);
  EXPECT_EQ(r["test"]["confusion_matrix"].size(), 3u);
  EXPECT_FALSE(r["test"].contains("operating_points"));
  EXPECT_EQ(r["rounds"].size(), 1u);
  EXPECT_EQ(r["sites"]["s1"][0]["round"], 1);
  double mean = 0;
  for (const auto& c : r["test"]["roc"]) mean += c["auc"].get<double>() / 3;
  EXPECT_NEAR(r["test"]["auc"]["value"].get<double>(), mean, 1e-12);
}

TEST(ReportBinaryTest, MatchesScikitLearnAndAReferenceDeLong) {
  std::string tried;
  const std::string python = testing::FindPythonWith("sklearn, numpy", &tried);
  ASSERT_FALSE(python.empty()) << "no python3 with scikit-learn (tried:" << tried
                               << "); apt-get install python3-sklearn (scripts/deps.sh)";
  testing::TempDir dir("fedmed-report-test");
  const std::string npz = ResolveDataPath("medmnist/pneumoniamnist.npz");
  const std::string run = dir / "run";
  std::filesystem::create_directories(run + "/pki/coordinator");
  std::filesystem::create_directories(run + "/coordinator");
  std::ofstream(run + "/pki/coordinator/coordinator.toml")
      << "[tls]\nca_cert = \"ca.pem\"\ncert = \"c.pem\"\nkey = \"c.key\"\n"
         "allowed_sites = [\"site-1\", \"site-2\"]\n[model]\nname = \"cnn\"\n[evaluation]\n"
         "data = \""
      << npz << "\"\n";
  // A cnn trained briefly (1024 training images, one epoch) as the run's global model.
  const ModelSpec cnn{"cnn", 1, 2, 28};
  ImageSet train = LoadMedMnistSplit(npz, Split::kTrain);
  std::vector<int64_t> first(1024);
  std::iota(first.begin(), first.end(), 0);
  TrainSettings settings;
  settings.optimizer = "adam";
  settings.learning_rate = 1e-3;
  ModelState model = InitialModelState(cnn, 0);
  const TrainResult trained = TrainLocal(cnn, model, train.Subset(first), settings);
  for (size_t t = 0; t < model.tensors.size(); ++t) {
    for (size_t j = 0; j < model.tensors[t].values.size(); ++j) {
      model.tensors[t].values[j] += trained.delta.tensors[t].values[j];
    }
  }
  SaveCheckpoint(model, run + "/coordinator/global_model.pt");
  std::ofstream(run + "/coordinator/metrics.jsonl")
      << R"({"round":1,"global":{"accuracy":0.7,"auc":0.9},"federated":{"accuracy":0.69,"auc":0.88},"sites":{"site-1":{"accuracy":0.7,"auc":0.91,"num_samples":300},"site-2":{"accuracy":0.68,"auc":0.86,"num_samples":324}}})"
      << "\n"
      << R"({"round":2,"global":{"accuracy":0.8,"auc":0.92},"federated":{"accuracy":0.79,"auc":0.91},"sites":{"site-1":{"accuracy":0.81,"auc":0.93,"num_samples":300},"site-2":{"accuracy":0.77,"auc":0.9,"num_samples":324}}})"
      << "\n";

  int status = 0;
  const std::string out = dir / "report";
  std::string log = testing::RunCommand(
      testing::BinDir() + "/fedmed-report " + run + " --out " + out + " 2>&1", &status);
  ASSERT_EQ(status, 0) << log;
  for (const char* f : {"report.json", "report.html", "predictions.csv", "roc.png", "pr.png",
                        "confusion.png", "calibration.png", "rounds.png", "sites.png"}) {
    EXPECT_TRUE(std::filesystem::exists(out + "/" + f)) << f;
  }
  const std::string html = testing::ReadFile(out + "/report.html");
  EXPECT_NE(html.find("DeLong"), std::string::npos);
  EXPECT_NE(html.find("Youden"), std::string::npos);
  EXPECT_NE(html.find("site-2"), std::string::npos);

  log = testing::RunCommand(python + " " + testing::SourceDir() +
                                "/tests/tools/report_reference.py " + out + " 2>&1",
                            &status);
  ASSERT_EQ(status, 0) << log;
  std::istringstream in(log);
  std::string key;
  int checked = 0;
  while (in >> key) {
    if (key == "auc_diff" || key == "ap_diff" || key == "delong_diff") {
      double d = 1;
      in >> d;
      EXPECT_LE(d, key == "delong_diff" ? 1e-6 : 1e-9) << key;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3) << log;
  std::cout << "[ report   ] " << log;
}

}  // namespace
}  // namespace fedmed
