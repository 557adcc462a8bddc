// fedmed-report RUN_DIR: the evaluation report of a fedmed-simulate run's final global model on
// its held-out set (ROC AUC with a 95 % interval, precision-recall, confusion at the operating
// thresholds with Wilson intervals, calibration) and its metrics per round and per site:
// report.json (computed here, in C++), figures (tools/report/plot_report.py, embedded, with
// matplotlib), report.html. docs/EXPLAIN.md, "Evaluation report".
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "common/util/error.h"
#include "common/util/file_io.h"
#include "common/util/process.h"
#include "tools/explain/explain_inputs.h"
#include "tools/explain/explain_output.h"
#include "tools/report/plot_report_script.h"
#include "tools/report/predict.h"
#include "tools/report/report_builder.h"

namespace {

using namespace fedmed;
namespace fs = std::filesystem;

report::SplitPredictions Predict(const explain::Inputs& in) {
  report::SplitPredictions s;
  s.probabilities = report::PredictProbabilities(in.spec, in.state, in.images);
  s.labels = in.images.labels;
  return s;
}

// Runs plot_report.py on report.json in `out`. Throws Error when Python, matplotlib or the
// script fails.
void Plot(const std::string& out) {
  const char* env = std::getenv("FEDMED_PYTHON");
  const std::string python = env != nullptr && *env != '\0' ? env : "/usr/bin/python3";
  if (!fs::exists(python)) {
    throw Error(python + " not found; install Debian's python3-matplotlib (scripts/deps.sh), "
                         "or pass --no-plots");
  }
  const std::string script = (fs::path(out) / ".plot_report.py").string();
  const std::string log = (fs::path(out) / ".plot_report.log").string();
  WriteFileAtomically(script, kPlotReportScript, "plot script");
  ChildProcess child({python, script, (fs::path(out) / "report.json").string(), out}, log);
  const std::optional<int> status = child.Wait(300);
  if (!status) {
    child.Stop();
    throw Error("plot_report.py did not finish within 300 s");
  }
  if (*status == 3) {
    throw Error("matplotlib is missing for " + python +
                "; install Debian's python3-matplotlib, or pass --no-plots");
  }
  if (*status != 0) {
    throw Error("plot_report.py failed (exit status " + std::to_string(*status) + "): " +
                ReadFile(log, "plot output"));
  }
  fs::remove(script);
  fs::remove(log);
}

int Run(const explain::InputOptions& base, const std::string& out_dir, bool plots,
        int replicates, uint64_t seed) {
  explain::InputOptions test_options = base;
  test_options.split = "test";
  const explain::Inputs test = explain::LoadInputs(test_options);
  explain::InputOptions val_options = base;
  val_options.split = "val";
  report::SplitPredictions val;
  try {
    val = Predict(explain::LoadInputs(val_options));
  } catch (const DataError&) {
    // No val split (e.g. an image folder with test/ only): no Youden threshold.
  }
  const report::SplitPredictions predictions = Predict(test);
  const std::string metrics_path =
      (fs::path(base.run_dir) / "coordinator" / "metrics.jsonl").string();
  const std::string metrics =
      fs::exists(metrics_path) ? ReadFile(metrics_path, "metrics.jsonl") : std::string();
  nlohmann::json report = report::BuildReport(predictions, val, test.class_names, metrics,
                                              replicates, seed);
  report["run"] = {{"run_dir", base.run_dir},
                   {"model", test.spec.name},
                   {"weights", test.weights_path},
                   {"held_out", test.names.empty() ? "" : test.names.front().substr(
                                                              0, test.names.front().find('#'))},
                   {"preprocessing", test.preprocessing}};

  fs::create_directories(out_dir);
  std::vector<explain::ExplainedImage> rows;
  for (size_t i = 0; i < predictions.labels.size(); ++i) {
    explain::ExplainedImage row;
    row.index = static_cast<int64_t>(i);
    row.name = test.names[i];
    row.label = predictions.labels[i];
    const std::vector<double>& p = predictions.probabilities[i];
    row.result.probabilities.assign(p.begin(), p.end());
    row.result.predicted = std::max_element(p.begin(), p.end()) - p.begin();
    rows.push_back(std::move(row));
  }
  ReplaceFile((fs::path(out_dir) / "predictions.csv").string(),
              explain::PredictionsCsv(rows, test.spec.num_classes), "predictions");
  ReplaceFile((fs::path(out_dir) / "report.json").string(), report.dump(1), "report.json");
  if (plots) Plot(out_dir);
  ReplaceFile((fs::path(out_dir) / "report.html").string(), report::ReportHtml(report, plots),
              "report.html");
  const nlohmann::json& auc = report["test"]["auc"];
  std::cout << "fedmed-report: AUC " << auc["value"].get<double>() << " [" << auc["lower"]
            << ", " << auc["upper"] << "] (" << auc["method"].get<std::string>() << "); wrote "
            << out_dir << "/report.html\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fedmed-report: the evaluation report of a fedmed-simulate run (report.json, "
               "figures, report.html)"};
  explain::InputOptions options;
  std::string out_dir;
  bool no_plots = false;
  int replicates = 2000;
  uint64_t seed = 0;
  app.add_option("run_dir", options.run_dir, "a fedmed-simulate run directory")->required();
  app.add_option("--weights", options.weights,
                 "state dict to report on (default: the run's coordinator/global_model.pt)");
  app.add_option("--data-root", options.data_root, "where relative data paths are looked up");
  app.add_option("--out", out_dir, "output directory (default RUN_DIR/report)");
  app.add_flag("--no-plots", no_plots, "write report.json and report.html without figures");
  app.add_option("--bootstrap", replicates,
                 "bootstrap resamples for a multi-class AUC interval (default 2000)")
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "seed of the bootstrap (default 0)");
  CLI11_PARSE(app, argc, argv);
  if (out_dir.empty()) out_dir = (fs::path(options.run_dir) / "report").string();
  try {
    return Run(options, out_dir, !no_plots, replicates, seed);
  } catch (const std::exception& e) {
    std::cerr << "fedmed-report: error: " << e.what() << "\n";
    return 1;
  }
}
