#include "common/metrics/classification_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "common/util/error.h"

namespace fedmed {

namespace {

constexpr double kNaN = ClassificationMetrics::kNaN;

double Ratio(double numerator, double denominator) {
  return denominator == 0 ? kNaN : numerator / denominator;
}

double Mean(const std::vector<double>& values) {
  if (values.empty()) return kNaN;
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

}  // namespace

double BinaryRocAuc(const std::vector<double>& scores, const std::vector<int>& is_positive) {
  if (scores.size() != is_positive.size()) {
    throw DataError("BinaryRocAuc: " + std::to_string(scores.size()) + " scores but " +
                    std::to_string(is_positive.size()) + " labels; expected equal counts");
  }
  const auto n = static_cast<int64_t>(scores.size());
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(scores[i])) {
      throw DataError("BinaryRocAuc: score " + std::to_string(i) + " is NaN");
    }
  }
  std::sort(order.begin(), order.end(),
            [&scores](int64_t a, int64_t b) { return scores[a] < scores[b]; });

  // Ranks are 1-based; a group of tied scores at sorted positions [begin, end) all get the
  // average rank (begin + 1 + end) / 2. Twice the positives' rank sum is an exact integer.
  int64_t twice_positive_rank_sum = 0;
  int64_t num_positive = 0;
  for (int64_t begin = 0; begin < n;) {
    int64_t end = begin;
    int64_t positives_in_group = 0;
    while (end < n && scores[order[end]] == scores[order[begin]]) {
      positives_in_group += is_positive[order[end]] != 0 ? 1 : 0;
      ++end;
    }
    twice_positive_rank_sum += positives_in_group * (begin + 1 + end);
    num_positive += positives_in_group;
    begin = end;
  }
  const int64_t num_negative = n - num_positive;
  if (num_positive == 0 || num_negative == 0) return kNaN;
  // U = R_pos - n_pos (n_pos + 1) / 2;  AUC = U / (n_pos n_neg).
  const int64_t twice_u = twice_positive_rank_sum - num_positive * (num_positive + 1);
  return static_cast<double>(twice_u) / (2.0 * static_cast<double>(num_positive) *
                                         static_cast<double>(num_negative));
}

ClassificationMetrics MetricsFromConfusion(const std::vector<int64_t>& confusion,
                                           int64_t num_classes) {
  const int64_t k = num_classes;
  if (k < 2) {
    throw DataError("MetricsFromConfusion: num_classes must be >= 2, got " + std::to_string(k));
  }
  if (static_cast<int64_t>(confusion.size()) != k * k) {
    throw DataError("MetricsFromConfusion: confusion matrix has " +
                    std::to_string(confusion.size()) + " entries; expected num_classes^2 = " +
                    std::to_string(k * k));
  }
  for (int64_t c : confusion) {
    if (c < 0) throw DataError("MetricsFromConfusion: negative count " + std::to_string(c));
  }
  ClassificationMetrics m;
  m.num_classes = k;
  m.confusion = confusion;
  std::vector<int64_t> true_count(k, 0), predicted_count(k, 0);
  int64_t correct = 0;
  for (int64_t t = 0; t < k; ++t) {
    for (int64_t p = 0; p < k; ++p) {
      const int64_t c = confusion[t * k + p];
      true_count[t] += c;
      predicted_count[p] += c;
      m.num_samples += c;
      if (t == p) correct += c;
    }
  }
  m.accuracy = Ratio(correct, m.num_samples);

  std::vector<double> recalls, f1s;
  for (int64_t c = 0; c < k; ++c) {
    const int64_t tp = confusion[c * k + c];
    if (true_count[c] > 0) recalls.push_back(Ratio(tp, true_count[c]));
    // 2TP + FP + FN; zero exactly when class c occurs in neither labels nor predictions.
    const int64_t f1_denominator = true_count[c] + predicted_count[c];
    if (f1_denominator > 0) f1s.push_back(Ratio(2.0 * tp, f1_denominator));
  }
  m.balanced_accuracy = Mean(recalls);
  if (k == 2) {
    const int64_t tn = confusion[0], fp = confusion[1], fn = confusion[2], tp = confusion[3];
    m.f1 = Ratio(2.0 * tp, 2 * tp + fp + fn);
    m.sensitivity = Ratio(tp, tp + fn);
    m.specificity = Ratio(tn, tn + fp);
  } else {
    m.f1 = Mean(f1s);
  }
  return m;
}

ClassificationMetrics ComputeClassificationMetrics(const std::vector<float>& probabilities,
                                                   const std::vector<int64_t>& labels,
                                                   int64_t num_classes) {
  const int64_t k = num_classes;
  const auto n = static_cast<int64_t>(labels.size());
  if (k < 2) {
    throw DataError("ComputeClassificationMetrics: num_classes must be >= 2, got " +
                    std::to_string(k));
  }
  if (static_cast<int64_t>(probabilities.size()) != n * k) {
    throw DataError("ComputeClassificationMetrics: " + std::to_string(probabilities.size()) +
                    " probabilities for " + std::to_string(n) + " labels and " +
                    std::to_string(k) + " classes; expected N x K = " + std::to_string(n * k));
  }
  std::vector<int64_t> confusion(k * k, 0);
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || labels[i] >= k) {
      throw DataError("ComputeClassificationMetrics: label " + std::to_string(labels[i]) +
                      " of sample " + std::to_string(i) + " is outside [0, " +
                      std::to_string(k) + ")");
    }
    const float* row = probabilities.data() + i * k;
    for (int64_t c = 0; c < k; ++c) {
      if (std::isnan(row[c])) {
        throw DataError("ComputeClassificationMetrics: probability of class " +
                        std::to_string(c) + " for sample " + std::to_string(i) + " is NaN");
      }
    }
    const int64_t predicted = std::max_element(row, row + k) - row;  // first maximum
    ++confusion[labels[i] * k + predicted];
  }
  ClassificationMetrics m = MetricsFromConfusion(confusion, k);

  std::vector<double> scores(n);
  std::vector<int> is_positive(n);
  std::vector<double> aucs;
  for (int64_t c = (k == 2 ? 1 : 0); c < k; ++c) {
    for (int64_t i = 0; i < n; ++i) {
      scores[i] = probabilities[i * k + c];
      is_positive[i] = labels[i] == c ? 1 : 0;
    }
    const double auc = BinaryRocAuc(scores, is_positive);
    if (!std::isnan(auc)) aucs.push_back(auc);
  }
  m.auc = Mean(aucs);
  return m;
}

ClassificationMetrics CombineMetrics(const std::vector<ClassificationMetrics>& parts) {
  if (parts.empty()) throw DataError("CombineMetrics: no parts to combine");
  const int64_t k = parts.front().num_classes;
  std::vector<int64_t> confusion(k * k, 0);
  double loss_sum = 0, loss_weight = 0, auc_sum = 0, auc_weight = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const ClassificationMetrics& part = parts[i];
    if (part.num_classes != k || static_cast<int64_t>(part.confusion.size()) != k * k) {
      throw DataError("CombineMetrics: part " + std::to_string(i) + " has num_classes " +
                      std::to_string(part.num_classes) + " and " +
                      std::to_string(part.confusion.size()) +
                      " confusion entries; expected num_classes " + std::to_string(k) +
                      " like part 0");
    }
    for (int64_t j = 0; j < k * k; ++j) confusion[j] += part.confusion[j];
    const auto weight = static_cast<double>(part.num_samples);
    if (!std::isnan(part.loss) && weight > 0) {
      loss_sum += weight * part.loss;
      loss_weight += weight;
    }
    if (!std::isnan(part.auc) && weight > 0) {
      auc_sum += weight * part.auc;
      auc_weight += weight;
    }
  }
  ClassificationMetrics m = MetricsFromConfusion(confusion, k);
  m.loss = Ratio(loss_sum, loss_weight);
  m.auc = Ratio(auc_sum, auc_weight);
  return m;
}

std::string FormatMetrics(const ClassificationMetrics& m) {
  auto f = [](double v) {
    if (std::isnan(v)) return std::string("nan");
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "%.4f", v);
    return std::string(buffer);
  };
  return "loss=" + f(m.loss) + " acc=" + f(m.accuracy) + " bal_acc=" + f(m.balanced_accuracy) +
         " auc=" + f(m.auc) + " f1=" + f(m.f1) + " sens=" + f(m.sensitivity) +
         " spec=" + f(m.specificity) + " n=" + std::to_string(m.num_samples);
}

}  // namespace fedmed
