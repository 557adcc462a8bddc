// ClassificationMetrics (classification_metrics.h) as JSON, in the one form fedmed's records use:
// the coordinator's metrics.jsonl rows (coordinator/metrics_log.h) and fedmed-simulate's
// summaries (baseline.json, model selection, sweeps: simulator/).
#ifndef FEDMED_COMMON_METRICS_METRICS_JSON_H_
#define FEDMED_COMMON_METRICS_METRICS_JSON_H_

#include <nlohmann/json.hpp>

#include "common/metrics/classification_metrics.h"

namespace fedmed {

// {"num_samples": int, "loss", "accuracy", "balanced_accuracy", "auc", "f1", "sensitivity",
//  "specificity": number, or null where the metric is undefined (NaN), "confusion": the
//  num_classes x num_classes counts, row-major}. Never throws (but std::bad_alloc).
nlohmann::json MetricsToJson(const ClassificationMetrics& metrics);

// `value` as a JSON number, or null when it is not finite (JSON has no NaN or infinity).
nlohmann::json JsonNumberOrNull(double value);

}  // namespace fedmed

#endif  // FEDMED_COMMON_METRICS_METRICS_JSON_H_
