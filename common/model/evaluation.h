// Evaluation of a model state on labelled images (LibTorch inside, not in this header): what the
// coordinator does with the global model on its held-out set and each site on its test set.
#ifndef FEDMED_COMMON_MODEL_EVALUATION_H_
#define FEDMED_COMMON_MODEL_EVALUATION_H_

#include "common/data/image_set.h"
#include "common/metrics/classification_metrics.h"
#include "common/model/model_spec.h"
#include "common/model/model_state.h"

namespace fedmed {

// Metrics of the model `spec` with parameters `state` on `data`, computed in eval mode (dropout
// off) without gradients, batch_size images at a time (it bounds the memory, not the result).
// The class probabilities are the softmax of the logits (ComputeClassificationMetrics in
// common/metrics/classification_metrics.h); .loss is the mean cross-entropy in nats, from the
// log-softmax. Images are normalised as ImageSet::CopyNormalizedChw does. Thread-safe.
// Throws ConfigError for a bad spec or batch_size < 1; FormatError if `state` does not have the
// model's layout (naming the first differing parameter); DataError if `data` is empty or does not
// fit the model (channels, size, classes, labels).
ClassificationMetrics EvaluateModel(const ModelSpec& spec, const ModelState& state,
                                    const ImageSet& data, int batch_size);

}  // namespace fedmed

#endif  // FEDMED_COMMON_MODEL_EVALUATION_H_
