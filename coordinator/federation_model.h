// The federation's model and held-out set, loaded once when the coordinator starts: the model
// spec ([model], filled in from the held-out set), the initial global model (the zoo's, the
// TorchScript file's, or [model] initial_weights), a TorchScript model's architecture (which
// registering sites must match) and the held-out set the global model is evaluated on.
#ifndef FEDMED_COORDINATOR_FEDERATION_MODEL_H_
#define FEDMED_COORDINATOR_FEDERATION_MODEL_H_

#include <memory>
#include <optional>
#include <string>

#include "common/config/coordinator_config.h"
#include "common/data/image_set.h"
#include "common/model/architecture.h"
#include "common/model/model_spec.h"
#include "common/model/model_state.h"

namespace spdlog {
class logger;
}

namespace fedmed {

struct FederationModel {
  ModelSpec spec;
  ModelState initial_state;
  std::optional<ModelArchitecture> architecture;  // of a TorchScript model; unset for the zoo
  std::optional<ImageSet> heldout;                // [evaluation] data's split; unset without
  // True for a federation of arbitrary tensors (tests): no network is built, the held-out set
  // is dropped, and sites' channels and classes are not checked.
  bool custom = false;
};

// Loads the held-out set (preprocessed with [preprocessing]) and the initial model, and checks
// [training] frozen_layers against the model's parameter names; logs what it loaded.
// `initial_model`: start from it instead (its layout must match the configured model unless
// `custom`). `data_root`: for relative data paths (the --data flag).
// Throws ConfigError for a model spec or TorchScript file that cannot be used, a held-out set
// whose images do not fit [model], or frozen_layers matching no parameter or every one (naming
// the key); DataError / FormatError naming initial_weights when it cannot be read or does not
// have the model's layout.
FederationModel LoadFederationModel(const CoordinatorConfig& config, const std::string& data_root,
                                    std::optional<ModelState> initial_model, bool custom,
                                    spdlog::logger& log);

// The coordinator's held-out set: split `split` ("train" | "val" | "test") of [evaluation] data
// (a MedMNIST .npz file, resolved against `data_root` as ResolveDataPath does), preprocessed with
// [preprocessing]. The coordinator evaluates on [evaluation] split; the simulator's pooled
// baseline and model selection use the same function. Throws ConfigError naming the config file
// when [evaluation] data is empty, or the split name is unknown; DataError / FormatError as
// LoadMedMnistSplit.
ImageSet LoadHeldOutSet(const CoordinatorConfig& config, const std::string& data_root,
                        const std::string& split);

// The model the coordinator trains: [model] name, image_size and torchscript_path, and
// in_channels / num_classes from [model], or where it leaves them 0, from `heldout` (when not
// null). Not validated: see ValidateModelSpec (common/model/model_spec.h).
ModelSpec FederationModelSpec(const CoordinatorConfig& config, const ImageSet* heldout);

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_FEDERATION_MODEL_H_
