// Classification metrics for single-label K-class problems (K >= 2), as MedMNIST reports them
// (ACC and AUC) plus the ones clinicians ask for. Pure C++; no LibTorch.
//
// Definitions (match scikit-learn where it has the metric):
//   accuracy           correct / N                                      (accuracy_score)
//   balanced_accuracy  mean recall over the classes present in the labels (balanced_accuracy_score)
//   auc                K = 2: ROC AUC of the class-1 probability          (roc_auc_score)
//                      K > 2: macro one-vs-rest: mean over the classes with both positives and
//                      negatives of the ROC AUC of that class's probability. With every class
//                      present this equals roc_auc_score(multi_class="ovr") and MedMNIST's getAUC.
//   f1                 K = 2: F1 of class 1; K > 2: macro F1 over the classes that occur in the
//                      labels or the predictions                        (f1_score, default labels)
//   sensitivity        K = 2 only: recall of class 1 (true positive rate)
//   specificity        K = 2 only: recall of class 0 (true negative rate)
// A metric that is undefined (0/0, a single class present, K > 2 for sensitivity/specificity) is
// NaN. The predicted class is the argmax of the probabilities (the first one on ties).
#ifndef FEDMED_COMMON_METRICS_CLASSIFICATION_METRICS_H_
#define FEDMED_COMMON_METRICS_CLASSIFICATION_METRICS_H_

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace fedmed {

struct ClassificationMetrics {
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

  int64_t num_samples = 0;
  int64_t num_classes = 0;
  double loss = kNaN;  // mean cross-entropy; filled in by the evaluator, not computed here
  double accuracy = kNaN;
  double balanced_accuracy = kNaN;
  double auc = kNaN;
  double f1 = kNaN;
  double sensitivity = kNaN;
  double specificity = kNaN;
  // num_classes x num_classes counts, row-major: confusion[t * num_classes + p] is the number of
  // samples of true class t predicted as class p.
  std::vector<int64_t> confusion;
};

// Metrics of N predictions. `probabilities` is N x K row-major (softmax outputs, float32),
// `labels` holds N true classes in [0, K), K = num_classes >= 2. loss is left NaN.
// Throws DataError when K < 2, probabilities.size() != N * K, a label is outside [0, K), or a
// probability is NaN.
ClassificationMetrics ComputeClassificationMetrics(const std::vector<float>& probabilities,
                                                   const std::vector<int64_t>& labels,
                                                   int64_t num_classes);

// Area under the ROC curve of `scores` for the binary truth `is_positive` (nonzero = positive),
// computed as the Mann-Whitney U statistic with average ranks for tied scores, U / (n_pos * n_neg).
// This equals the trapezoidal ROC AUC of sklearn.metrics.roc_auc_score exactly (up to the final
// rounding). Returns NaN if only one class is present. Throws DataError when the sizes differ or
// a score is NaN.
double BinaryRocAuc(const std::vector<double>& scores, const std::vector<int>& is_positive);

// Every metric that follows from a confusion matrix (all but auc and loss, which are NaN).
// `confusion` is num_classes x num_classes as in ClassificationMetrics. Throws DataError when
// num_classes < 2, the size is not num_classes^2, or a count is negative.
ClassificationMetrics MetricsFromConfusion(const std::vector<int64_t>& confusion,
                                           int64_t num_classes);

// Federated evaluation: combines the metrics of disjoint parts (e.g. each site's test set) into
// metrics of their union. Confusion matrices are summed, so accuracy, balanced accuracy, F1,
// sensitivity and specificity are exact for the union. loss and auc are the num_samples-weighted
// means over the parts where they are not NaN (NaN if none): exact for the loss (a mean), but
// only an approximation for the AUC, which does not decompose over parts (it ignores pairs of
// samples from different parts).
// Throws DataError when parts is empty or the parts' num_classes differ.
ClassificationMetrics CombineMetrics(const std::vector<ClassificationMetrics>& parts);

// One line for logs, e.g.
//   "loss=0.3412 acc=0.8510 bal_acc=0.8120 auc=0.9412 f1=0.8790 sens=0.9615 spec=0.6624 n=624"
// with 4 decimals and "nan" for undefined values.
std::string FormatMetrics(const ClassificationMetrics& metrics);

}  // namespace fedmed

#endif  // FEDMED_COMMON_METRICS_CLASSIFICATION_METRICS_H_
