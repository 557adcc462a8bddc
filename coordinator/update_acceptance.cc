#include "coordinator/update_acceptance.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "common/util/error.h"

namespace fedmed {

Status CheckUpdateHeader(const std::string& site, const UpdateHeader& header,
                         const UpdateExpectation& expected) {
  const UpdateInfo& info = header.info;
  if (!expected.accepting || info.round != expected.round) {
    return Status::FailedPrecondition("round " + std::to_string(info.round) +
                                      " is not accepting updates from " + site +
                                      " (its deadline passed or it ended)");
  }
  if (info.base_version != expected.model_version) {
    return Status::FailedPrecondition("update is relative to model version " +
                                      std::to_string(info.base_version) + ", expected " +
                                      std::to_string(expected.model_version));
  }
  if (info.secure != expected.secure) {
    return Status::FailedPrecondition(
        expected.secure ? "this federation takes only masked updates (secure aggregation)"
                        : "this federation does not run secure aggregation: send the update "
                          "itself");
  }
  if (expected.secure) {
    const int64_t words = expected.num_values + 1;
    if (header.size_bytes != 4 * words) {
      return Status::InvalidArgument("masked input of " + std::to_string(header.size_bytes) +
                                     " bytes, expected " + std::to_string(4 * words) + " (" +
                                     std::to_string(words) + " 32-bit words)");
    }
    return Status::OK();
  }
  if (info.num_samples < 1 || info.num_samples > expected.max_samples) {
    return Status::InvalidArgument("update claims " + std::to_string(info.num_samples) +
                                   " samples; " + site + " registered " +
                                   std::to_string(expected.max_samples) +
                                   " training samples (expected 1 to that many)");
  }
  if (header.size_bytes != expected.model_bytes) {
    return Status::InvalidArgument("update of " + std::to_string(header.size_bytes) +
                                   " bytes does not match the model's " +
                                   std::to_string(expected.model_bytes) + " bytes in " +
                                   UpdateEncodingName(expected.encoding) +
                                   " ([transport] update_encoding)");
  }
  double bound = 0;
  return NormBoundFor(site, header, expected, &bound);  // a declared mechanism out of range
}

double UpdateNormBound(double absolute, double ratio, double global_norm) {
  double bound = std::numeric_limits<double>::infinity();
  if (absolute > 0) bound = absolute;
  if (ratio > 0) bound = std::min(bound, ratio * global_norm);
  return bound;
}

Status NormBoundFor(const std::string& site, const UpdateHeader& header,
                    const UpdateExpectation& expected, double* bound) {
  *bound = expected.max_norm;
  if (!header.has_privacy || header.info.privacy.mechanism.mode != PrivacyMode::kUpdate) {
    return Status::OK();
  }
  const PrivacyMechanism& m = header.info.privacy.mechanism;
  const std::string what = "update from " + site + " for round " +
                           std::to_string(header.info.round) + " declares site-level DP with ";
  char text[160];
  if (!(std::isfinite(m.clipping_norm) && m.clipping_norm > 0 &&
        m.clipping_norm <= expected.max_norm_relative)) {
    std::snprintf(text, sizeof(text), "clipping norm %.6g (expected > 0 and at most %.6g, "
                  "[federation] max_update_norm_ratio x the global model's norm)",
                  m.clipping_norm, expected.max_norm_relative);
    return Status::InvalidArgument(what + text);
  }
  if (!(std::isfinite(m.noise_multiplier) && m.noise_multiplier > 0 &&
        m.noise_multiplier <= kMaxUpdateNoiseMultiplier)) {
    std::snprintf(text, sizeof(text), "noise multiplier %.6g (expected > 0 and at most %.6g)",
                  m.noise_multiplier, kMaxUpdateNoiseMultiplier);
    return Status::InvalidArgument(what + text);
  }
  const double d = static_cast<double>(expected.num_values);
  const double dp_bound = m.clipping_norm * (1 + m.noise_multiplier * (std::sqrt(d) + 10));
  *bound = std::min(expected.max_norm_absolute, dp_bound);
  return Status::OK();
}

Status DecodeUpdate(const std::string& site, const UpdateHeader& header, const std::string& bytes,
                    const ModelState& layout, double max_norm, ModelState* delta, double* norm,
                    UpdateEncoding encoding) {
  const std::string what =
      "update from " + site + " for round " + std::to_string(header.info.round);
  try {
    *delta = DecodeModelState(bytes, what, encoding);
    CheckSameLayout(layout, *delta, what);
  } catch (const FormatError& e) {
    return Status::InvalidArgument(e.what());
  }
  // DecodeModelState refused values that are not finite; their squares, summed in float64,
  // cannot overflow.
  const double l2 = L2Norm(*delta);
  if (norm != nullptr) *norm = l2;
  if (!(l2 <= max_norm)) {
    char text[128];
    std::snprintf(text, sizeof(text), ": L2 norm %.6g exceeds the bound %.6g", l2, max_norm);
    return Status::InvalidArgument(what + text +
                                   " ([federation] max_update_norm / max_update_norm_ratio)");
  }
  return Status::OK();
}

Status CheckEvaluationReport(const std::string& site, const EvaluationReport& report,
                             int64_t num_classes, int64_t max_samples) {
  const ClassificationMetrics& m = report.metrics;
  const std::string what = "evaluation report of " + site + " for round " +
                           std::to_string(report.round) + ": ";
  if (m.num_classes != num_classes) {
    return Status::InvalidArgument(what + "num_classes " + std::to_string(m.num_classes) +
                                   ", expected the model's " + std::to_string(num_classes));
  }
  const auto k = static_cast<size_t>(num_classes);
  if (m.confusion.size() != k * k) {
    return Status::InvalidArgument(what + std::to_string(m.confusion.size()) +
                                   " confusion entries, expected " + std::to_string(k * k));
  }
  if (m.num_samples < 0 || m.num_samples > max_samples) {
    return Status::InvalidArgument(what + "num_samples " + std::to_string(m.num_samples) +
                                   ", expected 0 to the " + std::to_string(max_samples) +
                                   " test samples " + site + " registered");
  }
  int64_t total = 0;
  for (const int64_t c : m.confusion) {
    if (c < 0 || c > m.num_samples - total) {  // never overflows: 0 <= total <= num_samples
      return Status::InvalidArgument(what + "a confusion count of " + std::to_string(c) +
                                     " makes the counts negative or larger than num_samples = " +
                                     std::to_string(m.num_samples));
    }
    total += c;
  }
  if (total != m.num_samples) {
    return Status::InvalidArgument(what + "the confusion counts sum to " + std::to_string(total) +
                                   ", not num_samples = " + std::to_string(m.num_samples));
  }
  return Status::OK();
}

}  // namespace fedmed
