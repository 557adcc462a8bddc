// Update acceptance: where an update or an evaluation report from a site is judged, before and
// after its bytes arrive. Pure functions of what the round expects and what the site sent: no
// locks, no clock, no gRPC. The round flow (round_flow.h) calls them under its lock and then
// records the accepted update with the round state machine (round/round_state_machine.h), which
// refuses a site that was not selected or already answered.
//
// The order of the checks is the order of arrival: CheckUpdateHeader runs on the header alone,
// before a byte of data is read (a refused upload costs the coordinator nothing); DecodeUpdate
// runs on the complete bytes, whose size and SHA-256 the transport has checked against the
// header (common/transport/chunking.h).
#ifndef FEDMED_COORDINATOR_UPDATE_ACCEPTANCE_H_
#define FEDMED_COORDINATOR_UPDATE_ACCEPTANCE_H_

#include <cstdint>
#include <limits>
#include <string>

#include "common/model/model_state.h"
#include "common/transport/messages.h"
#include "common/util/status.h"

namespace fedmed {

// What the round in progress expects of an update.
struct UpdateExpectation {
  bool accepting = false;   // a training stage is open (not closed by its deadline or its end)
  int round = 0;            // the round in progress
  int model_version = 0;    // the global model the sites were sent
  bool secure = false;      // [secure_aggregation] enabled: masked inputs only
  // How plain updates encode their values ([transport] update_encoding), and the exact size a
  // plain update of the model's layout has in it (EncodedModelStateSize).
  UpdateEncoding encoding = UpdateEncoding::kFloat32;
  int64_t model_bytes = 0;
  int64_t num_values = 0;   // values of the model (a masked input has num_values + 1 words)
  int64_t max_samples = 0;  // the training samples the site registered: its largest weight
  // The largest L2 norm of a plain update: min([federation] max_update_norm,
  // max_update_norm_ratio * |global model|), infinity when neither is set; and its two parts
  // (each infinity when not set). Site-level DP updates have their own bound (NormBoundFor).
  double max_norm = 0;
  double max_norm_absolute = std::numeric_limits<double>::infinity();
  double max_norm_relative = std::numeric_limits<double>::infinity();
};

// The bound UpdateExpectation::max_norm for a global model of L2 norm `global_norm`: the smaller
// of `absolute` and `ratio * global_norm`, each ignored when 0; infinity when both are 0.
double UpdateNormBound(double absolute, double ratio, double global_norm);

// The largest noise multiplier z a site-level DP update may declare (NormBoundFor).
inline constexpr double kMaxUpdateNoiseMultiplier = 100;

// The L2 norm bound of the plain update `header` announces, in `bound`.
// Most updates: expected.max_norm. An update under site-level DP (privacy mode "update", McMahan
// et al., ICLR 2018: the site clipped its update to norm S and added Gaussian noise
// N(0, (zS)^2 I) over d = expected.num_values values) is mostly noise, whose norm is about
// zS sqrt(d): far above the relative bound for any useful z. Its bound is instead
// S (1 + z (sqrt(d) + 10)), which an honest update exceeds with probability below e^-50 (the
// Gaussian norm's tail, Laurent & Massart 2000: P(|N| >= sigma (sqrt(d) + t)) <= e^(-t^2/2)),
// capped by the absolute bound; the declared S must itself be within the relative bound (the
// clipped signal is bounded like any other update). INVALID_ARGUMENT naming the site when S or z
// is not positive and finite, S exceeds the relative bound, or z exceeds
// kMaxUpdateNoiseMultiplier.
Status NormBoundFor(const std::string& site, const UpdateHeader& header,
                    const UpdateExpectation& expected, double* bound);


// Whether `site` may send the update `header` announces:
//   FAILED_PRECONDITION: no training stage open, another round, relative to another model
//     version, a masked input to a plain federation or the reverse;
//   INVALID_ARGUMENT: a declared size other than the model's in the federation's update encoding
//     (expected.model_bytes; 4 * (num_values + 1) bytes for a masked input), or for a plain update fewer than 1 sample or more than the site registered
//     (max_samples), or a declared site-level DP mechanism out of range (NormBoundFor).
Status CheckUpdateHeader(const std::string& site, const UpdateHeader& header,
                         const UpdateExpectation& expected);

// Decodes a plain update (EncodeModelState bytes of the site's model delta, every tensor in
// `encoding`, the federation's [transport] update_encoding) into `delta`, dequantised to
// float32, and checks that its layout is `layout`'s (the global model's), that every value is
// finite (as DecodeModelState requires; an int8 scale must be finite and >= 0) and that its L2
// norm (returned in `norm` when not null) is at most `max_norm` (the norm of the decoded
// update: quantisation error included). INVALID_ARGUMENT naming the site, the round and what is
// wrong otherwise (a tensor in another encoding among them).
Status DecodeUpdate(const std::string& site, const UpdateHeader& header, const std::string& bytes,
                    const ModelState& layout, double max_norm, ModelState* delta,
                    double* norm = nullptr, UpdateEncoding encoding = UpdateEncoding::kFloat32);

// Whether a federated-evaluation report's metrics can be combined with the others: num_classes
// is the model's (`num_classes`), num_samples is at most the test samples the site registered
// (`max_samples`), the confusion matrix has num_classes^2 entries, none negative, summing to
// num_samples. INVALID_ARGUMENT naming the site and the field otherwise.
Status CheckEvaluationReport(const std::string& site, const EvaluationReport& report,
                             int64_t num_classes, int64_t max_samples);

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_UPDATE_ACCEPTANCE_H_
