// Layer freezing for fine-tuning: which parameters local training leaves unchanged. No LibTorch.
//
// TrainSettings::frozen_layers (local_training.h) lists parameter-name prefixes, matched at
// dots: "conv1" freezes "conv1.weight" and "conv1.bias" (not "conv10.weight"); "layer1" freezes
// every parameter of ResNet-18's first stage ("layer1.0.conv1.weight", ...); a full name such as
// "fc.bias" freezes that parameter alone. A frozen parameter gets no gradient, is left out of the
// optimizer (so neither weight decay nor momentum moves it) and of FedProx's proximal term, and
// its delta is exactly 0.
#ifndef FEDMED_COMMON_MODEL_FROZEN_LAYERS_H_
#define FEDMED_COMMON_MODEL_FROZEN_LAYERS_H_

#include <string>
#include <vector>

namespace fedmed {

// True when `parameter_name` equals `prefix` or starts with prefix + ".".
bool MatchesLayerPrefix(const std::string& parameter_name, const std::string& prefix);

// Checks the shape of a frozen_layers list without a model. Throws ConfigError naming the field
// ("frozen_layers[i]") when an entry is empty, starts or ends with '.', contains "..", or
// repeats an earlier entry.
void ValidateFrozenLayers(const std::vector<std::string>& frozen_layers);

// For each of `parameter_names` (a model's, in order), whether one of `frozen_layers` matches it
// (MatchesLayerPrefix). Throws ConfigError as ValidateFrozenLayers; ConfigError naming the entry
// and listing the model's layers (its parameter names without the last component, e.g. "conv1",
// "layer1.0.gn2") when an entry matches no parameter, and when the entries together freeze every
// parameter (nothing would be trained).
std::vector<bool> MatchFrozenLayers(const std::vector<std::string>& parameter_names,
                                    const std::vector<std::string>& frozen_layers);

}  // namespace fedmed

#endif  // FEDMED_COMMON_MODEL_FROZEN_LAYERS_H_
