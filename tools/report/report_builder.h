// report.json and report.html of fedmed-report (docs/EXPLAIN.md, "Evaluation report"): the
// numbers of report_metrics.h for the held-out set of a run, the metrics per round and per site
// from the coordinator's metrics.jsonl, and the page that shows them with the figures of
// plot_report.py. Torch-free.
#ifndef FEDMED_TOOLS_REPORT_REPORT_BUILDER_H_
#define FEDMED_TOOLS_REPORT_REPORT_BUILDER_H_

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace fedmed::report {

// A model's probabilities on one split: one row of num_classes per image, and the labels.
struct SplitPredictions {
  std::vector<std::vector<double>> probabilities;
  std::vector<int64_t> labels;
};

// The report.json object (docs/EXPLAIN.md lists its keys):
//   "test": n, num_classes, class_names, "auc" {value, lower, upper, standard_error, method}
//     (binary: DeLong on p_1; multi-class: macro one-vs-rest with a percentile bootstrap of
//     `replicates` resamples seeded with `seed`), "roc" and "pr" curves (binary: class 1;
//     multi-class: one per class, one-vs-rest) with their AUC / average precision,
//     "confusion_matrix" (rows true class, columns argmax class), "operating_points" (binary:
//     threshold 0.5 and Youden's J threshold chosen on `val`, each with tp, fp, tn, fn and
//     sensitivity / specificity with Wilson 95 % intervals), "calibration" (10 bins, ECE, Brier);
//   "rounds": per round of metrics.jsonl, its "global" and "federated" metrics;
//   "sites": per site, its federated-evaluation metrics per round.
// `val` may be empty (no Youden threshold then; "notes" says so). `metrics_jsonl`: the text of
// the coordinator's metrics.jsonl ("" = none). Throws std::invalid_argument when the test split
// is empty, its rows have different sizes, or a label is outside the classes; nlohmann's
// json::parse_error naming the line for a malformed metrics.jsonl line.
nlohmann::json BuildReport(const SplitPredictions& test, const SplitPredictions& val,
                           const std::vector<std::string>& class_names,
                           const std::string& metrics_jsonl, int replicates, uint64_t seed);

// report.html for `report` (BuildReport's, plus the "run" object the caller adds): tables of
// the numbers and, with `figures`, the PNGs plot_report.py writes beside it (roc.png, pr.png,
// confusion.png, calibration.png, rounds.png, sites.png). Never throws.
std::string ReportHtml(const nlohmann::json& report, bool figures);

}  // namespace fedmed::report

#endif  // FEDMED_TOOLS_REPORT_REPORT_BUILDER_H_
