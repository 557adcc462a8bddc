#include "common/metrics/metrics_json.h"

#include <cmath>

namespace fedmed {

nlohmann::json JsonNumberOrNull(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json();
}

nlohmann::json MetricsToJson(const ClassificationMetrics& m) {
  nlohmann::json j;
  j["num_samples"] = m.num_samples;
  j["loss"] = JsonNumberOrNull(m.loss);
  j["accuracy"] = JsonNumberOrNull(m.accuracy);
  j["balanced_accuracy"] = JsonNumberOrNull(m.balanced_accuracy);
  j["auc"] = JsonNumberOrNull(m.auc);
  j["f1"] = JsonNumberOrNull(m.f1);
  j["sensitivity"] = JsonNumberOrNull(m.sensitivity);
  j["specificity"] = JsonNumberOrNull(m.specificity);
  j["confusion"] = m.confusion;
  return j;
}

}  // namespace fedmed
