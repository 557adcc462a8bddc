#include "common/metrics/classification_metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "common/util/error.h"

namespace fedmed {
namespace {

TEST(BinaryRocAucTest, HandCheckedCaseWithTies) {
  // Negatives: 0.1, 0.4. Positives: 0.35, 0.8, 0.4. Pairs (positive beats negative = 1, tie = 1/2):
  //   0.35: beats 0.1, loses to 0.4          -> 1
  //   0.8 : beats both                       -> 2
  //   0.4 : beats 0.1, ties 0.4              -> 1.5
  // AUC = 4.5 / (3 * 2) = 3/4.
  // Ranks: 0.1 -> 1, 0.35 -> 2, 0.4, 0.4 -> 3.5 each, 0.8 -> 5; R_pos = 2 + 3.5 + 5 = 10.5,
  // U = 10.5 - 3 * 4 / 2 = 4.5.
  EXPECT_DOUBLE_EQ(BinaryRocAuc({0.1, 0.4, 0.35, 0.8, 0.4}, {0, 0, 1, 1, 1}), 0.75);
}

TEST(BinaryRocAucTest, NonDyadicFractionAndAllTied) {
  // Negatives 0.2, 0.5, 0.5; positives 0.5, 0.9, 0.1, 0.5.
  //   0.5: beats 0.2, ties two 0.5 -> 2;  0.9: 3;  0.1: 0;  0.5: 2.  U = 7, AUC = 7/12.
  EXPECT_DOUBLE_EQ(BinaryRocAuc({0.2, 0.5, 0.5, 0.5, 0.9, 0.1, 0.5}, {0, 0, 0, 1, 1, 1, 1}),
                   7.0 / 12.0);
  // Everything tied: every pair counts 1/2.
  EXPECT_DOUBLE_EQ(BinaryRocAuc({0.3, 0.3, 0.3}, {1, 0, 1}), 0.5);
  // Perfect and reversed ranking.
  EXPECT_DOUBLE_EQ(BinaryRocAuc({0.1, 0.2, 0.8, 0.9}, {0, 0, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(BinaryRocAuc({0.1, 0.2, 0.8, 0.9}, {1, 1, 0, 0}), 0.0);
}

TEST(BinaryRocAucTest, UndefinedAndInvalidInputs) {
  EXPECT_TRUE(std::isnan(BinaryRocAuc({0.1, 0.2}, {1, 1})));
  EXPECT_TRUE(std::isnan(BinaryRocAuc({}, {})));
  EXPECT_THROW(BinaryRocAuc({0.1, 0.2}, {1}), DataError);
  EXPECT_THROW(BinaryRocAuc({0.1, NAN}, {1, 0}), DataError);
}

TEST(BinaryRocAucTest, MatchesPairCountingOnRandomData) {
  std::mt19937_64 rng(5);
  std::vector<double> scores(300);
  std::vector<int> positive(300);
  for (size_t i = 0; i < scores.size(); ++i) {
    positive[i] = static_cast<int>(rng() % 3 == 0);
    scores[i] = static_cast<double>(rng() % 20) / 20.0 + 0.02 * positive[i];  // many ties
  }
  double pairs = 0, wins = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    for (size_t j = 0; j < scores.size(); ++j) {
      if (!positive[i] || positive[j]) continue;
      pairs += 1;
      wins += scores[i] > scores[j] ? 1.0 : scores[i] == scores[j] ? 0.5 : 0.0;
    }
  }
  EXPECT_DOUBLE_EQ(BinaryRocAuc(scores, positive), wins / pairs);
}

TEST(ClassificationMetricsTest, BinaryConfusionDerivedMetrics) {
  // Rows = truth, columns = prediction: TN = 5, FP = 2, FN = 1, TP = 4.
  const ClassificationMetrics m = MetricsFromConfusion({5, 2, 1, 4}, 2);
  EXPECT_EQ(m.num_samples, 12);
  EXPECT_EQ(m.num_classes, 2);
  EXPECT_DOUBLE_EQ(m.accuracy, 9.0 / 12.0);
  EXPECT_DOUBLE_EQ(m.sensitivity, 4.0 / 5.0);             // TP / (TP + FN)
  EXPECT_DOUBLE_EQ(m.specificity, 5.0 / 7.0);             // TN / (TN + FP)
  EXPECT_DOUBLE_EQ(m.balanced_accuracy, 53.0 / 70.0);     // (4/5 + 5/7) / 2
  EXPECT_DOUBLE_EQ(m.f1, 8.0 / 11.0);                     // 2TP / (2TP + FP + FN)
  EXPECT_TRUE(std::isnan(m.auc));
  EXPECT_TRUE(std::isnan(m.loss));
}

TEST(ClassificationMetricsTest, BinaryFromProbabilities) {
  // Class-1 scores 0.1, 0.4, 0.35, 0.8, 0.4 with truth 0, 0, 1, 1, 1 (the AUC case above).
  const std::vector<float> p = {0.9f, 0.1f, 0.6f, 0.4f, 0.65f, 0.35f, 0.2f, 0.8f, 0.6f, 0.4f};
  const ClassificationMetrics m = ComputeClassificationMetrics(p, {0, 0, 1, 1, 1}, 2);
  EXPECT_DOUBLE_EQ(m.auc, 0.75);
  // Predictions 0, 0, 0, 1, 0: TN = 2, FP = 0, FN = 2, TP = 1.
  EXPECT_EQ(m.confusion, (std::vector<int64_t>{2, 0, 2, 1}));
  EXPECT_DOUBLE_EQ(m.accuracy, 3.0 / 5.0);
  EXPECT_DOUBLE_EQ(m.sensitivity, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.specificity, 1.0);
  EXPECT_DOUBLE_EQ(m.balanced_accuracy, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.f1, 2.0 / 4.0);
}

TEST(ClassificationMetricsTest, MultiClassHandChecked) {
  // truth | probabilities     | argmax
  //   0   | 0.7 0.2 0.1       | 0
  //   1   | 0.2 0.5 0.3       | 1
  //   2   | 0.1 0.3 0.6       | 2
  //   0   | 0.3 0.4 0.3       | 1
  //   1   | 0.2 0.2 0.6       | 2
  const std::vector<float> p = {0.7f, 0.2f, 0.1f, 0.2f, 0.5f, 0.3f, 0.1f, 0.3f,
                                0.6f, 0.3f, 0.4f, 0.3f, 0.2f, 0.2f, 0.6f};
  const ClassificationMetrics m = ComputeClassificationMetrics(p, {0, 1, 2, 0, 1}, 3);
  EXPECT_EQ(m.confusion, (std::vector<int64_t>{1, 1, 0, 0, 1, 1, 0, 0, 1}));
  EXPECT_DOUBLE_EQ(m.accuracy, 3.0 / 5.0);
  EXPECT_DOUBLE_EQ(m.balanced_accuracy, 2.0 / 3.0);  // recalls 1/2, 1/2, 1
  // F1: class 0: TP 1, FP 0, FN 1 -> 2/3; class 1: TP 1, FP 1, FN 1 -> 1/2;
  //     class 2: TP 1, FP 1, FN 0 -> 2/3. Macro = 11/18.
  EXPECT_DOUBLE_EQ(m.f1, 11.0 / 18.0);
  // One-vs-rest AUCs:
  //   class 0: positives {0.7, 0.3} vs negatives {0.2, 0.1, 0.2}: all win -> 1.
  //   class 1: positives {0.5, 0.2} vs negatives {0.2, 0.3, 0.4}: 3 + 0.5 = 3.5 of 6 -> 7/12.
  //   class 2: positive {0.6} vs negatives {0.1, 0.3, 0.3, 0.6}: 3.5 of 4 -> 7/8.
  // Macro = (1 + 7/12 + 7/8) / 3 = 59/72.
  EXPECT_DOUBLE_EQ(m.auc, 59.0 / 72.0);
  EXPECT_TRUE(std::isnan(m.sensitivity));
  EXPECT_TRUE(std::isnan(m.specificity));
}

TEST(ClassificationMetricsTest, AbsentClassesAreLeftOutOfMacroAverages) {
  // Class 2 never occurs in truth nor predictions: it is left out of balanced accuracy, macro F1
  // and the OvR AUC (which is then 1 for classes 0 and 1).
  const std::vector<float> p = {0.8f, 0.1f, 0.1f, 0.3f, 0.6f, 0.1f, 0.6f, 0.3f, 0.1f};
  const ClassificationMetrics m = ComputeClassificationMetrics(p, {0, 1, 0}, 3);
  EXPECT_DOUBLE_EQ(m.accuracy, 1.0);
  EXPECT_DOUBLE_EQ(m.balanced_accuracy, 1.0);
  EXPECT_DOUBLE_EQ(m.f1, 1.0);
  EXPECT_DOUBLE_EQ(m.auc, 1.0);
}

TEST(ClassificationMetricsTest, InvalidInputsThrow) {
  EXPECT_THROW(ComputeClassificationMetrics({0.5f, 0.5f}, {0}, 1), DataError);
  EXPECT_THROW(ComputeClassificationMetrics({0.5f, 0.5f, 0.5f}, {0, 1}, 2), DataError);
  EXPECT_THROW(ComputeClassificationMetrics({0.5f, 0.5f}, {2}, 2), DataError);
  EXPECT_THROW(ComputeClassificationMetrics({NAN, 0.5f}, {1}, 2), DataError);
  EXPECT_THROW(MetricsFromConfusion({1, 2, 3}, 2), DataError);
  EXPECT_THROW(MetricsFromConfusion({1, -2, 3, 4}, 2), DataError);
}

TEST(ClassificationMetricsTest, CombineEqualsUnionForConfusionDerivedFields) {
  std::mt19937_64 rng(17);
  const int64_t k = 4;
  std::vector<float> probs;
  std::vector<int64_t> labels;
  for (int i = 0; i < 400; ++i) {
    labels.push_back(static_cast<int64_t>(rng() % k));
    std::vector<float> row(k);
    float sum = 0;
    for (float& v : row) {
      v = 0.05f + static_cast<float>(rng() % 100) / 100.0f;
      sum += v;
    }
    row[labels.back()] += 0.5f;  // better than chance
    sum += 0.5f;
    for (float v : row) probs.push_back(v / sum);
  }
  const size_t cut = 150;
  ClassificationMetrics a = ComputeClassificationMetrics(
      {probs.begin(), probs.begin() + cut * k}, {labels.begin(), labels.begin() + cut}, k);
  ClassificationMetrics b = ComputeClassificationMetrics(
      {probs.begin() + cut * k, probs.end()}, {labels.begin() + cut, labels.end()}, k);
  a.loss = 0.5;
  b.loss = 1.0;
  const ClassificationMetrics all = ComputeClassificationMetrics(probs, labels, k);
  const ClassificationMetrics combined = CombineMetrics({a, b});
  EXPECT_EQ(combined.confusion, all.confusion);
  EXPECT_EQ(combined.num_samples, 400);
  EXPECT_DOUBLE_EQ(combined.accuracy, all.accuracy);
  EXPECT_DOUBLE_EQ(combined.balanced_accuracy, all.balanced_accuracy);
  EXPECT_DOUBLE_EQ(combined.f1, all.f1);
  EXPECT_DOUBLE_EQ(combined.loss, (150 * 0.5 + 250 * 1.0) / 400);
  EXPECT_DOUBLE_EQ(combined.auc, (150 * a.auc + 250 * b.auc) / 400);
  EXPECT_NEAR(combined.auc, all.auc, 0.05);  // an approximation, not the union's AUC

  EXPECT_THROW(CombineMetrics({}), DataError);
  EXPECT_THROW(CombineMetrics({a, MetricsFromConfusion({1, 0, 0, 1}, 2)}), DataError);
}

TEST(ClassificationMetricsTest, CombineBinaryKeepsSensitivityAndSpecificityExact) {
  const ClassificationMetrics a = MetricsFromConfusion({5, 2, 1, 4}, 2);
  const ClassificationMetrics b = MetricsFromConfusion({3, 0, 2, 6}, 2);
  const ClassificationMetrics combined = CombineMetrics({a, b});
  const ClassificationMetrics expected = MetricsFromConfusion({8, 2, 3, 10}, 2);
  EXPECT_DOUBLE_EQ(combined.sensitivity, expected.sensitivity);
  EXPECT_DOUBLE_EQ(combined.specificity, expected.specificity);
  EXPECT_DOUBLE_EQ(combined.f1, expected.f1);
  EXPECT_TRUE(std::isnan(combined.loss));  // no part had a loss
  EXPECT_TRUE(std::isnan(combined.auc));
}

TEST(ClassificationMetricsTest, FormatMetricsOneLine) {
  ClassificationMetrics m = MetricsFromConfusion({5, 2, 1, 4}, 2);
  m.auc = 0.94123;
  EXPECT_EQ(FormatMetrics(m),
            "loss=nan acc=0.7500 bal_acc=0.7571 auc=0.9412 f1=0.7273 sens=0.8000 spec=0.7143 "
            "n=12");
}

}  // namespace
}  // namespace fedmed
