#include "common/model/evaluation.h"

#include <torch/torch.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/model/torch_state.h"
#include "common/model/zoo.h"
#include "common/util/error.h"

namespace fedmed {

ClassificationMetrics EvaluateModel(const ModelSpec& spec, const ModelState& state,
                                    const ImageSet& data, int batch_size) {
  if (batch_size < 1) {
    throw ConfigError("evaluation batch_size: " + std::to_string(batch_size) + ", expected >= 1");
  }
  std::shared_ptr<Classifier> model = MakeModel(spec);
  ImportState(*model, state);
  if (data.size() == 0) throw DataError("evaluation: the evaluation data holds no images");
  CheckDataFitsModel(data, spec, "evaluation data");
  at::init_num_threads();  // apply SetComputeThreads to this thread
  model->eval();
  c10::InferenceMode inference;

  const int64_t n = data.size();
  const int64_t k = spec.num_classes;
  std::vector<float> probabilities(static_cast<size_t>(n * k));
  double loss_sum = 0;
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    const int64_t count = std::min<int64_t>(batch_size, n - begin);
    const torch::Tensor log_probs =
        torch::log_softmax(model->forward(ImagesToTensor(data, begin, count)), 1);
    loss_sum += torch::nll_loss(log_probs, LabelsToTensor(data, begin, count),
                                /*weight=*/{}, at::Reduction::Sum)
                    .item<double>();
    const torch::Tensor probs = log_probs.exp().contiguous();
    std::memcpy(probabilities.data() + begin * k, probs.data_ptr<float>(),
                static_cast<size_t>(count * k) * sizeof(float));
  }
  ClassificationMetrics metrics = ComputeClassificationMetrics(probabilities, data.labels, k);
  metrics.loss = loss_sum / static_cast<double>(n);
  return metrics;
}

}  // namespace fedmed
