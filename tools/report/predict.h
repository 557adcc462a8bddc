// The class probabilities of a model on images, for fedmed-report. Torch-free header (LibTorch in
// predict.cc).
#ifndef FEDMED_TOOLS_REPORT_PREDICT_H_
#define FEDMED_TOOLS_REPORT_PREDICT_H_

#include <cstdint>
#include <vector>

#include "common/data/image_set.h"
#include "common/model/model_spec.h"
#include "common/model/model_state.h"

namespace fedmed::report {

// softmax(model(x)) for every image of `images` (normalised as in training,
// ImageSet::CopyNormalizedChw), in eval mode without gradients, in batches of `batch_size`:
// images.size() rows of spec.num_classes probabilities, float64 (computed in float32).
// Throws ConfigError as MakeModel (common/model/zoo.h) for a bad spec; FormatError as ImportState
// when `state` does not have the model's layout; DataError when the images are not
// spec.in_channels x spec.image_size x spec.image_size.
std::vector<std::vector<double>> PredictProbabilities(const ModelSpec& spec,
                                                      const ModelState& state,
                                                      const ImageSet& images,
                                                      int64_t batch_size = 64);

}  // namespace fedmed::report

#endif  // FEDMED_TOOLS_REPORT_PREDICT_H_
