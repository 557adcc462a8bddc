// The numbers of fedmed-report (docs/EXPLAIN.md, "Evaluation report"): ROC AUC with confidence
// intervals, ROC and precision-recall curves, confusion at a threshold with Wilson intervals,
// Youden's J threshold, calibration. Pure C++ (no LibTorch), float64.
//
// Binary sets: the score of an image is its probability of class 1 (the positive class).
#ifndef FEDMED_TOOLS_REPORT_REPORT_METRICS_H_
#define FEDMED_TOOLS_REPORT_REPORT_METRICS_H_

#include <cstdint>
#include <string>
#include <vector>

namespace fedmed::report {

// Area under the ROC curve of `scores` for `positive` (one flag per score): the Mann-Whitney
// statistic, P(score of a positive > score of a negative) + P(tie) / 2, which equals
// sklearn.metrics.roc_auc_score. Throws std::invalid_argument when the sizes differ or either
// class is absent.
double RocAuc(const std::vector<double>& scores, const std::vector<bool>& positive);

// An AUC with its 95 % confidence interval.
struct AucInterval {
  double auc = 0, lower = 0, upper = 0;
  double standard_error = 0;  // DeLong only; 0 for the bootstrap
  std::string method;         // "delong" | "bootstrap"
};

// DeLong, DeLong & Clarke-Pearson (Biometrics 1988): the variance of the AUC from its structural
// components V10 (per positive) and V01 (per negative), var = s10 / m + s01 / n with s10, s01
// their sample variances (denominator m - 1, n - 1); interval auc +- 1.959963985 * sqrt(var),
// clipped to [0, 1] (as pROC's ci.auc(method = "delong")). Throws as RocAuc, and
// std::invalid_argument with fewer than 2 positives or negatives.
AucInterval DeLongInterval(const std::vector<double>& scores, const std::vector<bool>& positive);

// The macro one-vs-rest AUC of `probabilities` (one row of num_classes per image) against
// `labels`, with a seeded percentile bootstrap interval (`replicates` resamples of the images
// with replacement, std::mt19937_64(seed); the 2.5 % and 97.5 % quantiles of the replicates in
// which every class is present). Classes absent from `labels` are left out of the macro mean.
// Throws std::invalid_argument for inconsistent sizes or fewer than two classes present.
AucInterval BootstrapMacroAuc(const std::vector<std::vector<double>>& probabilities,
                              const std::vector<int64_t>& labels, int replicates, uint64_t seed);

// One point of a curve.
struct CurvePoint {
  double x = 0, y = 0, threshold = 0;
};

// The ROC curve (x = false positive rate, y = true positive rate), one point per distinct score
// from the highest down (a score >= threshold is called positive), starting at (0, 0) with
// threshold +infinity. Throws as RocAuc.
std::vector<CurvePoint> RocCurve(const std::vector<double>& scores,
                                 const std::vector<bool>& positive);

// The precision-recall curve (x = recall, y = precision) at the same thresholds as RocCurve, and
// the average precision sum_k (R_k - R_{k-1}) P_k (sklearn's average_precision_score). Throws as
// RocAuc.
std::vector<CurvePoint> PrecisionRecallCurve(const std::vector<double>& scores,
                                             const std::vector<bool>& positive);
double AveragePrecision(const std::vector<double>& scores, const std::vector<bool>& positive);

// A proportion with its Wilson score 95 % interval (Wilson, JASA 1927; z = 1.959963985).
struct Proportion {
  int64_t successes = 0, trials = 0;
  double value = 0, lower = 0, upper = 0;  // value, lower, upper = 0 when trials == 0
};
Proportion Wilson(int64_t successes, int64_t trials);

// The 2x2 confusion of a binary classifier at `threshold` (score >= threshold -> positive).
struct BinaryConfusion {
  double threshold = 0;
  int64_t tp = 0, fp = 0, tn = 0, fn = 0;
  Proportion sensitivity, specificity;  // tp / (tp + fn), tn / (tn + fp), Wilson intervals
};
BinaryConfusion ConfusionAt(const std::vector<double>& scores, const std::vector<bool>& positive,
                            double threshold);

// The threshold that maximises Youden's J = sensitivity + specificity - 1 (Youden, Cancer 1950)
// over the distinct scores (the highest J, then the highest threshold on a tie, J values within
// 1e-12 counting as tied). Throws as
// RocAuc.
double YoudenThreshold(const std::vector<double>& scores, const std::vector<bool>& positive);

// Calibration of the predicted class's probability (the confidence), Guo et al. (ICML 2017):
// `bins` equal-width bins over [0, 1] (bin b holds (b/B, (b+1)/B], the first also 0);
// ECE = sum_b (n_b / N) |accuracy_b - mean confidence_b|.
// Brier score: binary sets mean (p_1 - y)^2; multi-class mean sum_k (p_k - [y == k])^2.
struct Calibration {
  std::vector<int64_t> count;             // per bin
  std::vector<double> accuracy;           // per bin (0 when empty)
  std::vector<double> confidence;         // per bin: mean confidence (0 when empty)
  double ece = 0;
  double brier = 0;
};
// Throws std::invalid_argument for inconsistent sizes, no images, or bins < 1.
Calibration Calibrate(const std::vector<std::vector<double>>& probabilities,
                      const std::vector<int64_t>& labels, int bins = 10);

}  // namespace fedmed::report

#endif  // FEDMED_TOOLS_REPORT_REPORT_METRICS_H_
