#include "common/model/frozen_layers.h"

#include <algorithm>

#include "common/util/error.h"

namespace fedmed {

namespace {

// The model's layers: parameter names without their last component (names without a dot as
// they are), each once, in order of first appearance.
std::string LayerList(const std::vector<std::string>& parameter_names) {
  std::vector<std::string> layers;
  for (const std::string& name : parameter_names) {
    const size_t dot = name.rfind('.');
    std::string layer = dot == std::string::npos ? name : name.substr(0, dot);
    if (std::find(layers.begin(), layers.end(), layer) == layers.end()) layers.push_back(layer);
  }
  std::string list;
  for (const std::string& layer : layers) list += (list.empty() ? "" : ", ") + layer;
  return list;
}

}  // namespace

bool MatchesLayerPrefix(const std::string& parameter_name, const std::string& prefix) {
  if (parameter_name.size() < prefix.size() ||
      parameter_name.compare(0, prefix.size(), prefix) != 0) {
    return false;
  }
  return parameter_name.size() == prefix.size() || parameter_name[prefix.size()] == '.';
}

void ValidateFrozenLayers(const std::vector<std::string>& frozen_layers) {
  for (size_t i = 0; i < frozen_layers.size(); ++i) {
    const std::string& entry = frozen_layers[i];
    const std::string field = "frozen_layers[" + std::to_string(i) + "]";
    if (entry.empty()) {
      throw ConfigError(field + ": empty, expected a parameter-name prefix such as \"conv1\"");
    }
    if (entry.front() == '.' || entry.back() == '.' || entry.find("..") != std::string::npos) {
      throw ConfigError(field + ": \"" + entry +
                        "\", expected dot-separated names such as \"layer1.0.conv1\" (no "
                        "leading, trailing or doubled dots)");
    }
    for (size_t j = 0; j < i; ++j) {
      if (frozen_layers[j] == entry) {
        throw ConfigError(field + ": \"" + entry + "\" repeats frozen_layers[" +
                          std::to_string(j) + "]");
      }
    }
  }
}

std::vector<bool> MatchFrozenLayers(const std::vector<std::string>& parameter_names,
                                    const std::vector<std::string>& frozen_layers) {
  ValidateFrozenLayers(frozen_layers);
  std::vector<bool> frozen(parameter_names.size(), false);
  for (size_t i = 0; i < frozen_layers.size(); ++i) {
    bool matched = false;
    for (size_t p = 0; p < parameter_names.size(); ++p) {
      if (MatchesLayerPrefix(parameter_names[p], frozen_layers[i])) {
        frozen[p] = true;
        matched = true;
      }
    }
    if (!matched) {
      throw ConfigError("frozen_layers[" + std::to_string(i) + "]: \"" + frozen_layers[i] +
                        "\" matches no parameter of the model; its layers are: " +
                        LayerList(parameter_names) +
                        " (a prefix matches at dots: \"conv1\" freezes conv1.weight and "
                        "conv1.bias)");
    }
  }
  if (!parameter_names.empty() &&
      std::all_of(frozen.begin(), frozen.end(), [](bool f) { return f; })) {
    throw ConfigError("frozen_layers: freezes every parameter of the model (" +
                      std::to_string(parameter_names.size()) +
                      "); nothing would be trained, leave at least one layer unfrozen");
  }
  return frozen;
}

}  // namespace fedmed
