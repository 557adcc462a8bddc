#include "coordinator/update_acceptance.h"

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
  if (info.num_samples < 1) {
    return Status::InvalidArgument("update claims " + std::to_string(info.num_samples) +
                                   " samples");
  }
  if (header.size_bytes != expected.model_bytes) {
    return Status::InvalidArgument("update of " + std::to_string(header.size_bytes) +
                                   " bytes does not match the model's " +
                                   std::to_string(expected.model_bytes) + " bytes");
  }
  return Status::OK();
}

Status DecodeUpdate(const std::string& site, const UpdateHeader& header, const std::string& bytes,
                    const ModelState& layout, ModelState* delta) {
  const std::string what =
      "update from " + site + " for round " + std::to_string(header.info.round);
  try {
    *delta = DecodeModelState(bytes, what);
    CheckSameLayout(layout, *delta, what);
  } catch (const FormatError& e) {
    return Status::InvalidArgument(e.what());
  }
  return Status::OK();
}

Status CheckEvaluationReport(const std::string& site, const EvaluationReport& report,
                             int64_t num_classes) {
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
  if (m.num_samples < 0) {
    return Status::InvalidArgument(what + "num_samples " + std::to_string(m.num_samples));
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
