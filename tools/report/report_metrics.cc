#include "tools/report/report_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>

namespace fedmed::report {

namespace {

constexpr double kZ = 1.959963984540054;  // the 97.5 % quantile of the standard normal

void CheckBinary(const std::vector<double>& scores, const std::vector<bool>& positive) {
  if (scores.size() != positive.size()) {
    throw std::invalid_argument("scores and labels differ in size");
  }
  const auto m = std::count(positive.begin(), positive.end(), true);
  if (m == 0 || m == static_cast<long>(positive.size())) {
    throw std::invalid_argument("ROC AUC needs both classes among the labels");
  }
}

// psi(x, y) of the Mann-Whitney statistic: 1 if x > y, 1/2 on a tie, 0 otherwise.
double Psi(double x, double y) { return x > y ? 1.0 : (x == y ? 0.5 : 0.0); }

// Cumulative counts at each distinct threshold from the highest score down.
struct Steps {
  std::vector<double> thresholds;
  std::vector<int64_t> tp, fp;  // called positive at score >= threshold
  int64_t positives = 0, negatives = 0;
};

Steps CumulativeSteps(const std::vector<double>& scores, const std::vector<bool>& positive) {
  CheckBinary(scores, positive);
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  Steps s;
  int64_t tp = 0, fp = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    (positive[order[i]] ? tp : fp) += 1;
    if (i + 1 == order.size() || scores[order[i + 1]] != scores[order[i]]) {
      s.thresholds.push_back(scores[order[i]]);
      s.tp.push_back(tp);
      s.fp.push_back(fp);
    }
  }
  s.positives = tp;
  s.negatives = fp;
  return s;
}

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

// Macro one-vs-rest AUC over the classes present among the rows `idx`; NaN when fewer than two
// classes are present.
double MacroAuc(const std::vector<std::vector<double>>& p, const std::vector<int64_t>& labels,
                const std::vector<size_t>& idx, size_t classes) {
  double sum = 0;
  int used = 0;
  for (size_t k = 0; k < classes; ++k) {
    std::vector<double> s;
    std::vector<bool> pos;
    for (size_t i : idx) {
      s.push_back(p[i][k]);
      pos.push_back(labels[i] == static_cast<int64_t>(k));
    }
    const auto m = std::count(pos.begin(), pos.end(), true);
    if (m == 0) continue;
    if (m == static_cast<long>(pos.size())) return std::numeric_limits<double>::quiet_NaN();
    sum += RocAuc(s, pos);
    ++used;
  }
  return used >= 2 ? sum / used : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

double RocAuc(const std::vector<double>& scores, const std::vector<bool>& positive) {
  const Steps s = CumulativeSteps(scores, positive);
  // Trapezoids between the ROC points (ties are a diagonal step: the P(tie) / 2 term).
  double area = 0;
  int64_t tp0 = 0, fp0 = 0;
  for (size_t i = 0; i < s.thresholds.size(); ++i) {
    area += static_cast<double>(s.fp[i] - fp0) * static_cast<double>(s.tp[i] + tp0) / 2.0;
    tp0 = s.tp[i];
    fp0 = s.fp[i];
  }
  return area / (static_cast<double>(s.positives) * static_cast<double>(s.negatives));
}

AucInterval DeLongInterval(const std::vector<double>& scores, const std::vector<bool>& positive) {
  CheckBinary(scores, positive);
  std::vector<double> x, y;  // positives, negatives
  for (size_t i = 0; i < scores.size(); ++i) (positive[i] ? x : y).push_back(scores[i]);
  if (x.size() < 2 || y.size() < 2) {
    throw std::invalid_argument("DeLong's interval needs at least 2 positives and 2 negatives");
  }
  const double m = static_cast<double>(x.size()), n = static_cast<double>(y.size());
  std::vector<double> v10(x.size(), 0.0), v01(y.size(), 0.0);
  for (size_t i = 0; i < x.size(); ++i) {
    for (size_t j = 0; j < y.size(); ++j) {
      const double p = Psi(x[i], y[j]);
      v10[i] += p;
      v01[j] += p;
    }
  }
  for (double& v : v10) v /= n;
  for (double& v : v01) v /= m;
  const double auc = std::accumulate(v10.begin(), v10.end(), 0.0) / m;
  double s10 = 0, s01 = 0;
  for (double v : v10) s10 += (v - auc) * (v - auc);
  for (double v : v01) s01 += (v - auc) * (v - auc);
  s10 /= m - 1;
  s01 /= n - 1;
  AucInterval r;
  r.auc = auc;
  r.standard_error = std::sqrt(s10 / m + s01 / n);
  r.lower = std::max(0.0, auc - kZ * r.standard_error);
  r.upper = std::min(1.0, auc + kZ * r.standard_error);
  r.method = "delong";
  return r;
}

AucInterval BootstrapMacroAuc(const std::vector<std::vector<double>>& probabilities,
                              const std::vector<int64_t>& labels, int replicates, uint64_t seed) {
  if (probabilities.size() != labels.size() || probabilities.empty()) {
    throw std::invalid_argument("probabilities and labels differ in size or are empty");
  }
  const size_t classes = probabilities[0].size();
  std::vector<size_t> all(labels.size());
  std::iota(all.begin(), all.end(), 0);
  AucInterval r;
  r.method = "bootstrap";
  r.auc = MacroAuc(probabilities, labels, all, classes);
  if (std::isnan(r.auc)) throw std::invalid_argument("fewer than two classes among the labels");
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, labels.size() - 1);
  std::vector<double> aucs;
  std::vector<size_t> idx(labels.size());
  for (int b = 0; b < replicates; ++b) {
    for (size_t& i : idx) i = pick(rng);
    const double a = MacroAuc(probabilities, labels, idx, classes);
    if (!std::isnan(a)) aucs.push_back(a);
  }
  if (!aucs.empty()) {
    r.lower = Quantile(aucs, 0.025);
    r.upper = Quantile(aucs, 0.975);
  }
  return r;
}

std::vector<CurvePoint> RocCurve(const std::vector<double>& scores,
                                 const std::vector<bool>& positive) {
  const Steps s = CumulativeSteps(scores, positive);
  std::vector<CurvePoint> out{{0, 0, std::numeric_limits<double>::infinity()}};
  for (size_t i = 0; i < s.thresholds.size(); ++i) {
    out.push_back({static_cast<double>(s.fp[i]) / static_cast<double>(s.negatives),
                   static_cast<double>(s.tp[i]) / static_cast<double>(s.positives),
                   s.thresholds[i]});
  }
  return out;
}

std::vector<CurvePoint> PrecisionRecallCurve(const std::vector<double>& scores,
                                             const std::vector<bool>& positive) {
  const Steps s = CumulativeSteps(scores, positive);
  std::vector<CurvePoint> out;
  for (size_t i = 0; i < s.thresholds.size(); ++i) {
    out.push_back({static_cast<double>(s.tp[i]) / static_cast<double>(s.positives),
                   static_cast<double>(s.tp[i]) / static_cast<double>(s.tp[i] + s.fp[i]),
                   s.thresholds[i]});
  }
  return out;
}

double AveragePrecision(const std::vector<double>& scores, const std::vector<bool>& positive) {
  double ap = 0, recall = 0;
  for (const CurvePoint& p : PrecisionRecallCurve(scores, positive)) {
    ap += (p.x - recall) * p.y;
    recall = p.x;
  }
  return ap;
}

Proportion Wilson(int64_t successes, int64_t trials) {
  Proportion p;
  p.successes = successes;
  p.trials = trials;
  if (trials <= 0) return p;
  const double n = static_cast<double>(trials);
  const double phat = static_cast<double>(successes) / n;
  const double z2 = kZ * kZ;
  const double centre = (phat + z2 / (2 * n)) / (1 + z2 / n);
  const double half = kZ * std::sqrt(phat * (1 - phat) / n + z2 / (4 * n * n)) / (1 + z2 / n);
  p.value = phat;
  p.lower = std::max(0.0, centre - half);
  p.upper = std::min(1.0, centre + half);
  return p;
}

BinaryConfusion ConfusionAt(const std::vector<double>& scores, const std::vector<bool>& positive,
                            double threshold) {
  if (scores.size() != positive.size()) {
    throw std::invalid_argument("scores and labels differ in size");
  }
  BinaryConfusion c;
  c.threshold = threshold;
  for (size_t i = 0; i < scores.size(); ++i) {
    const bool called = scores[i] >= threshold;
    if (positive[i]) {
      (called ? c.tp : c.fn) += 1;
    } else {
      (called ? c.fp : c.tn) += 1;
    }
  }
  c.sensitivity = Wilson(c.tp, c.tp + c.fn);
  c.specificity = Wilson(c.tn, c.tn + c.fp);
  return c;
}

double YoudenThreshold(const std::vector<double>& scores, const std::vector<bool>& positive) {
  const Steps s = CumulativeSteps(scores, positive);
  double best_j = -2, best_t = s.thresholds.front();
  for (size_t i = 0; i < s.thresholds.size(); ++i) {
    const double j = static_cast<double>(s.tp[i]) / static_cast<double>(s.positives) -
                     static_cast<double>(s.fp[i]) / static_cast<double>(s.negatives);
    // Thresholds descend: the first best is the highest threshold (equal J up to rounding).
    if (j > best_j + 1e-12) {
      best_j = j;
      best_t = s.thresholds[i];
    }
  }
  return best_t;
}

Calibration Calibrate(const std::vector<std::vector<double>>& probabilities,
                      const std::vector<int64_t>& labels, int bins) {
  if (probabilities.size() != labels.size() || labels.empty() || bins < 1) {
    throw std::invalid_argument("calibration needs one probability row per label and bins >= 1");
  }
  Calibration c;
  c.count.assign(static_cast<size_t>(bins), 0);
  c.accuracy.assign(static_cast<size_t>(bins), 0.0);
  c.confidence.assign(static_cast<size_t>(bins), 0.0);
  const size_t classes = probabilities[0].size();
  for (size_t i = 0; i < labels.size(); ++i) {
    const std::vector<double>& p = probabilities[i];
    const size_t predicted =
        static_cast<size_t>(std::max_element(p.begin(), p.end()) - p.begin());
    const double conf = p[predicted];
    int b = static_cast<int>(std::ceil(conf * bins)) - 1;
    b = std::clamp(b, 0, bins - 1);
    c.count[static_cast<size_t>(b)] += 1;
    c.accuracy[static_cast<size_t>(b)] += predicted == static_cast<size_t>(labels[i]) ? 1.0 : 0.0;
    c.confidence[static_cast<size_t>(b)] += conf;
    if (classes == 2) {
      const double d = p[1] - (labels[i] == 1 ? 1.0 : 0.0);
      c.brier += d * d;
    } else {
      for (size_t k = 0; k < classes; ++k) {
        const double d = p[k] - (labels[i] == static_cast<int64_t>(k) ? 1.0 : 0.0);
        c.brier += d * d;
      }
    }
  }
  const double n = static_cast<double>(labels.size());
  c.brier /= n;
  for (size_t b = 0; b < c.count.size(); ++b) {
    if (c.count[b] == 0) continue;
    c.accuracy[b] /= static_cast<double>(c.count[b]);
    c.confidence[b] /= static_cast<double>(c.count[b]);
    c.ece += static_cast<double>(c.count[b]) / n * std::fabs(c.accuracy[b] - c.confidence[b]);
  }
  return c;
}

}  // namespace fedmed::report
