#include "coordinator/registration.h"

#include <algorithm>
#include <utility>

#include "common/util/error.h"

namespace fedmed {

RegistrationPolicy::RegistrationPolicy(Requirements requirements)
    : requirements_(std::move(requirements)) {}

Status RegistrationPolicy::Check(const std::string& site, const RegistrationInfo& request,
                                 std::string* note) const {
  if (note != nullptr) note->clear();
  if (request.site_name != site) {
    return Status::InvalidArgument("site_name '" + request.site_name +
                                   "' does not match certificate CN=" + site);
  }
  if (request.num_train_samples < 1) {
    return Status::InvalidArgument(site + " has no training samples (num_train_samples = " +
                                   std::to_string(request.num_train_samples) + ")");
  }
  const int64_t most = requirements_.max_site_samples;
  if (request.num_train_samples > most || request.num_test_samples < 0 ||
      request.num_test_samples > most) {
    return Status::InvalidArgument(
        site + " declares " + std::to_string(request.num_train_samples) + " training and " +
        std::to_string(request.num_test_samples) + " test samples; each must be between 0 (1 "
        "for training) and " + std::to_string(most) + " ([federation] max_site_samples)");
  }
  if (Status s = CheckPreprocessing(site, request); !s.ok()) return s;
  if (Status s = CheckArchitecture(site, request, note); !s.ok()) return s;
  const ModelSpec& spec = requirements_.spec;
  if (requirements_.check_data_shape) {
    if (request.in_channels != spec.in_channels) {
      return Status::FailedPrecondition(
          site + "'s images have " + std::to_string(request.in_channels) +
          " channel(s) but the federation's model takes " + std::to_string(spec.in_channels));
    }
    if (request.num_classes > spec.num_classes) {
      return Status::FailedPrecondition(
          site + "'s labels have " + std::to_string(request.num_classes) +
          " classes but the federation's model has " + std::to_string(spec.num_classes));
    }
  }
  if (requirements_.secure_aggregation &&
      std::find(request.capabilities.begin(), request.capabilities.end(),
                std::string(kSecAggCapability)) == request.capabilities.end()) {
    return Status::FailedPrecondition(
        site + " does not support secure aggregation (it did not announce \"secagg-v1\": an "
               "older fedmed-site, or no audit key beside its TLS key to sign its keys with), "
               "which this federation requires ([secure_aggregation] enabled = true)");
  }
  return Status::OK();
}

Status RegistrationPolicy::CheckPreprocessing(const std::string& site,
                                              const RegistrationInfo& request) const {
  PreprocessSpec theirs;  // "" from an older site: it knows only the MedMNIST default
  try {
    if (!request.preprocessing.empty()) theirs = ParsePreprocessSpec(request.preprocessing);
  } catch (const Error& e) {
    return Status::InvalidArgument(site + " sent preprocessing that cannot be read: " + e.what());
  }
  if (theirs == requirements_.preprocessing) return Status::OK();
  return Status::FailedPrecondition(
      site + "'s preprocessing differs from the federation's: " +
      DescribePreprocessDifference(theirs, requirements_.preprocessing, "the coordinator", site) +
      " (every site must preprocess alike: set the site's [data] keys as the coordinator's "
      "[preprocessing])");
}

Status RegistrationPolicy::CheckArchitecture(const std::string& site,
                                             const RegistrationInfo& request,
                                             std::string* note) const {
  if (!requirements_.architecture) {
    if (request.architecture && requirements_.check_data_shape && note != nullptr) {
      *note = site + " has a [model] torchscript_path, but this federation trains the zoo model '" +
              requirements_.spec.name + "': the site's script is not used";
    }
    return Status::OK();
  }
  if (!request.architecture) {
    return Status::FailedPrecondition(
        site + " has no TorchScript model, but this federation trains one ([model] name = "
               "\"torchscript\"): set [model] torchscript_path in " + site +
        "'s site.toml to its copy of the federation's TorchScript file");
  }
  try {
    CheckSameArchitecture(*requirements_.architecture, "the coordinator's TorchScript model",
                          *request.architecture, site + "'s TorchScript model");
  } catch (const FormatError& e) {  // a description whose digest does not fit its list
    return Status::InvalidArgument(e.what());
  } catch (const Error& e) {  // ConfigError: the architectures differ
    return Status::FailedPrecondition(e.what());
  }
  return Status::OK();
}

}  // namespace fedmed
