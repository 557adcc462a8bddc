#include "tools/explain/grad_cam.h"

#include <torch/torch.h>

#include <algorithm>

#include "common/model/local_training.h"
#include "common/model/torch_state.h"
#include "common/model/zoo.h"
#include "common/util/error.h"
#include "tools/explain/layer_capture.h"

namespace fedmed::explain {

struct GradCamExplainer::Impl {
  ModelSpec spec;
  std::shared_ptr<Classifier> model;
  std::string layer;
};

GradCamExplainer::GradCamExplainer(const ModelSpec& spec, const ModelState& state,
                                   const std::string& layer, int threads)
    : impl_(std::make_unique<Impl>()) {
  if (threads > 0) SetComputeThreads(threads);
  impl_->spec = spec;
  impl_->model = MakeModel(spec, 0);
  ImportState(*impl_->model, state);
  impl_->model->eval();
  impl_->layer = layer.empty() ? DefaultLayer(*impl_->model, spec) : layer;
  // Fails early, with the list of layers, for a name the forward never reaches or a layer whose
  // output is not a feature map.
  torch::AutoGradMode grad(true);
  torch::Tensor activation;
  ForwardCapturing(*impl_->model, spec,
                   torch::zeros({1, spec.in_channels, spec.image_size, spec.image_size}),
                   impl_->layer, &activation);
}

GradCamExplainer::~GradCamExplainer() = default;

const std::string& GradCamExplainer::layer() const { return impl_->layer; }

std::vector<GradCam> GradCamExplainer::Explain(const ImageSet& images, int64_t begin,
                                               int64_t count,
                                               std::optional<int64_t> target_class,
                                               int64_t batch_size) {
  const ModelSpec& spec = impl_->spec;
  if (images.channels != spec.in_channels || images.height != spec.image_size ||
      images.width != spec.image_size) {
    throw DataError("fedmed-explain: images are " + std::to_string(images.channels) + "x" +
                    std::to_string(images.height) + "x" + std::to_string(images.width) +
                    " (channels x height x width), model \"" + spec.name + "\" expects " +
                    std::to_string(spec.in_channels) + "x" + std::to_string(spec.image_size) +
                    "x" + std::to_string(spec.image_size) + " (check [preprocessing])");
  }
  if (target_class && (*target_class < 0 || *target_class >= spec.num_classes)) {
    throw ConfigError("fedmed-explain: --class " + std::to_string(*target_class) +
                      " is outside 0.." + std::to_string(spec.num_classes - 1));
  }
  std::vector<GradCam> out;
  out.reserve(static_cast<size_t>(std::max<int64_t>(count, 0)));
  torch::AutoGradMode grad(true);
  for (int64_t start = begin; start < begin + count; start += batch_size) {
    const int64_t n = std::min(batch_size, begin + count - start);
    const torch::Tensor x = ImagesToTensor(images, start, n);  // (n, C, H, W)
    torch::Tensor a;                                            // (n, C', h, w)
    const torch::Tensor logits = ForwardCapturing(*impl_->model, spec, x, impl_->layer, &a);
    const torch::Tensor predicted = logits.argmax(1);
    const torch::Tensor k =
        target_class ? torch::full({n}, *target_class, torch::kLong) : predicted;
    const torch::Tensor score = logits.gather(1, k.unsqueeze(1)).sum();
    const torch::Tensor g = torch::autograd::grad({score}, {a})[0];  // d score / d A
    const torch::Tensor alpha = g.mean({2, 3}, /*keepdim=*/true);    // (n, C', 1, 1)
    const torch::Tensor cam = torch::relu((alpha * a).sum(1, /*keepdim=*/true)).detach();
    torch::Tensor up = torch::nn::functional::interpolate(
        cam, torch::nn::functional::InterpolateFuncOptions()
                 .size(std::vector<int64_t>{images.height, images.width})
                 .mode(torch::kBilinear)
                 .align_corners(false));
    up = up.flatten(1).contiguous();  // (n, H * W)
    const torch::Tensor probs = torch::softmax(logits.detach(), 1).contiguous();
    for (int64_t b = 0; b < n; ++b) {
      GradCam r;
      r.height = images.height;
      r.width = images.width;
      r.predicted = predicted[b].item<int64_t>();
      r.explained_class = k[b].item<int64_t>();
      const float* p = probs[b].data_ptr<float>();
      r.probabilities.assign(p, p + spec.num_classes);
      const torch::Tensor row = up[b];
      const float lo = row.min().item<float>();
      const float hi = row.max().item<float>();
      const torch::Tensor normalised =
          hi > lo ? ((row - lo) / (hi - lo)).contiguous() : torch::zeros_like(row);
      const float* m = normalised.data_ptr<float>();
      r.map.assign(m, m + normalised.numel());
      out.push_back(std::move(r));
    }
  }
  return out;
}

}  // namespace fedmed::explain
