#include "tools/report/predict.h"

#include <torch/torch.h>

#include <algorithm>

#include "common/model/torch_state.h"
#include "common/model/zoo.h"
#include "common/util/error.h"

namespace fedmed::report {

std::vector<std::vector<double>> PredictProbabilities(const ModelSpec& spec,
                                                      const ModelState& state,
                                                      const ImageSet& images,
                                                      int64_t batch_size) {
  if (images.channels != spec.in_channels || images.height != spec.image_size ||
      images.width != spec.image_size) {
    throw DataError("fedmed-report: images are " + std::to_string(images.channels) + "x" +
                    std::to_string(images.height) + "x" + std::to_string(images.width) +
                    ", model \"" + spec.name + "\" expects " + std::to_string(spec.in_channels) +
                    "x" + std::to_string(spec.image_size) + "x" +
                    std::to_string(spec.image_size));
  }
  std::shared_ptr<Classifier> model = MakeModel(spec, 0);
  ImportState(*model, state);
  model->eval();
  torch::NoGradGuard no_grad;
  std::vector<std::vector<double>> out;
  for (int64_t start = 0; start < images.size(); start += batch_size) {
    const int64_t n = std::min(batch_size, images.size() - start);
    const torch::Tensor p =
        torch::softmax(model->forward(ImagesToTensor(images, start, n)), 1).to(torch::kDouble);
    const torch::Tensor c = p.contiguous();
    const double* v = c.data_ptr<double>();
    for (int64_t b = 0; b < n; ++b) {
      out.emplace_back(v + b * spec.num_classes, v + (b + 1) * spec.num_classes);
    }
  }
  return out;
}

}  // namespace fedmed::report
