#include "coordinator/federation_model.h"

#include <spdlog/spdlog.h>

#include "common/data/medmnist.h"
#include "common/data/preprocess.h"
#include "common/model/frozen_layers.h"
#include "common/model/local_training.h"
#include "common/model/model_io.h"
#include "common/util/data_path.h"
#include "common/util/error.h"

namespace fedmed {

FederationModel LoadFederationModel(const CoordinatorConfig& config, const std::string& data_root,
                                    std::optional<ModelState> initial_model, bool custom,
                                    spdlog::logger& log) {
  FederationModel m;
  m.custom = custom;
  log.info("preprocessing of every site and of the held-out set: {}",
           config.preprocessing.Canonical());
  if (!config.eval_data.empty()) m.heldout = LoadHeldOutSet(config, data_root, config.eval_split);
  m.spec = FederationModelSpec(config, m.heldout ? &*m.heldout : nullptr);
  if (m.heldout) {
    const std::string path = ResolveDataPath(config.eval_data, data_root);
    if (m.heldout->channels != m.spec.in_channels || m.heldout->height != m.spec.image_size) {
      throw ConfigError(config.config_path + ": [evaluation] data " + path + " has " +
                        std::to_string(m.heldout->channels) + "-channel " +
                        std::to_string(m.heldout->height) + " px images but [model] expects " +
                        std::to_string(m.spec.in_channels) + " channel(s) at " +
                        std::to_string(m.spec.image_size) + " px");
    }
    log.info("held-out set: {} split of {} ({} images, {} classes)", config.eval_split, path,
             m.heldout->size(), m.heldout->num_classes);
  }
  if (custom) {
    m.initial_state = initial_model ? std::move(*initial_model)
                                    : InitialModelState(m.spec, config.seed);
    m.heldout.reset();
    return m;
  }
  ValidateModelSpec(m.spec, config.config_path + ": [model]");
  const ModelState layout = InitialModelState(m.spec, config.seed);
  if (initial_model.has_value()) {
    m.initial_state = std::move(*initial_model);
    CheckSameLayout(layout, m.initial_state, "initial model");
  } else if (!config.initial_weights.empty()) {
    m.initial_state = LoadInitialWeights(config.initial_weights, layout);
    log.info("initial weights: {} ([model] initial_weights)", config.initial_weights);
  } else {
    m.initial_state = layout;
  }
  if (m.spec.name == kTorchScriptModelName) {
    m.architecture = DescribeArchitecture(layout);
    log.info("model: TorchScript file {} ({} parameter tensors, architecture digest {}...); "
             "every site must hold a script of the same architecture",
             m.spec.torchscript_path, m.architecture->parameters.size(),
             m.architecture->digest.substr(0, 12));
  }
  if (!config.training.frozen_layers.empty()) {
    std::vector<std::string> names;
    for (const NamedTensor& t : layout.tensors) names.push_back(t.name);
    try {
      MatchFrozenLayers(names, config.training.frozen_layers);
    } catch (const ConfigError& e) {
      throw ConfigError(config.config_path + ": [training] " + e.what());
    }
    std::string frozen;
    for (const std::string& layer : config.training.frozen_layers) {
      frozen += (frozen.empty() ? "" : ", ") + layer;
    }
    log.info("frozen layers (not trained by the sites): {}", frozen);
  }
  log.info("model '{}' ({} parameters), {} input channel(s), {} classes", m.spec.name,
           m.initial_state.NumValues(), m.spec.in_channels, m.spec.num_classes);
  return m;
}

ImageSet LoadHeldOutSet(const CoordinatorConfig& config, const std::string& data_root,
                        const std::string& split) {
  if (config.eval_data.empty()) {
    throw ConfigError(config.config_path +
                      ": there is no held-out set to evaluate on; set [evaluation] data");
  }
  ImageSet set =
      LoadMedMnistSplit(ResolveDataPath(config.eval_data, data_root), ParseSplit(split));
  PreprocessImageSet(config.preprocessing, &set);
  return set;
}

ModelSpec FederationModelSpec(const CoordinatorConfig& config, const ImageSet* heldout) {
  ModelSpec spec;
  spec.name = config.model;
  spec.image_size = config.image_size;
  spec.in_channels = config.in_channels;
  spec.num_classes = config.num_classes;
  spec.torchscript_path = config.torchscript_path;
  if (heldout != nullptr) {
    if (spec.in_channels == 0) spec.in_channels = heldout->channels;
    if (spec.num_classes == 0) spec.num_classes = heldout->num_classes;
  }
  return spec;
}

}  // namespace fedmed
