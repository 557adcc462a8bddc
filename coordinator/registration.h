// Registration: where a site is admitted to the federation, or refused with the reason.
//
// A site that passed the transport's checks (its certificate chains to the federation CA and
// its CN is on [tls] allowed_sites, coordinator/transport/service.h) asks to register with a
// RegistrationInfo (common/transport/messages.h). RegistrationPolicy::Check decides, from what
// the federation requires, with no state of its own: the round flow (round_flow.h) then opens a
// session for an admitted site.
//
// A site is refused
//   - INVALID_ARGUMENT: site_name differs from its certificate's CN; it declares no training
//     samples, or more training or test samples than [federation] max_site_samples, or a
//     negative test count; its preprocessing or TorchScript architecture description cannot be
//     read;
//   - FAILED_PRECONDITION: its preprocessing differs from [preprocessing] (naming every field
//     that differs); the federation trains a TorchScript model and the site holds no script, or
//     one of another architecture (naming the differing parameters); its images' channels differ
//     from the model's, or its labels have more classes than the model; secure aggregation is on
//     and the site did not announce "secagg-v1".
#ifndef FEDMED_COORDINATOR_REGISTRATION_H_
#define FEDMED_COORDINATOR_REGISTRATION_H_

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "common/data/preprocess.h"
#include "common/model/architecture.h"
#include "common/model/model_spec.h"
#include "common/transport/messages.h"
#include "common/util/status.h"

namespace fedmed {

// The capability a site announces when it runs secure aggregation (docs/SECURE_AGGREGATION.md).
inline constexpr char kSecAggCapability[] = "secagg-v1";

class RegistrationPolicy {
 public:
  // What every site must match.
  struct Requirements {
    PreprocessSpec preprocessing;                  // [preprocessing]
    ModelSpec spec;                                // the federation's model
    // The TorchScript model's architecture; unset for a zoo model.
    std::optional<ModelArchitecture> architecture;
    // False for a federation of arbitrary tensors (tests): channels and classes are not checked.
    bool check_data_shape = true;
    bool secure_aggregation = false;               // [secure_aggregation] enabled
    // [federation] max_site_samples: the largest training or test count a site may declare.
    int64_t max_site_samples = std::numeric_limits<int64_t>::max();
  };

  explicit RegistrationPolicy(Requirements requirements);

  // OK when `site` (its certificate CN) may join with `request`, else the refusal (see above).
  // `note`, when not null, receives a remark worth logging for an admitted site ("" if none),
  // e.g. that its TorchScript file is not used in a federation of a zoo model.
  Status Check(const std::string& site, const RegistrationInfo& request,
               std::string* note = nullptr) const;

  const Requirements& requirements() const { return requirements_; }

 private:
  Status CheckPreprocessing(const std::string& site, const RegistrationInfo& request) const;
  Status CheckArchitecture(const std::string& site, const RegistrationInfo& request,
                           std::string* note) const;

  Requirements requirements_;
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_REGISTRATION_H_
