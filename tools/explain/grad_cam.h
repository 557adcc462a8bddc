// Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
// Gradient-based Localization", ICCV 2017) for fedmed's classifiers. Torch-free header (LibTorch
// only in grad_cam.cc and layer_capture.cc).
//
// Definition (docs/EXPLAIN.md), for one image x, a module NAME and a class K:
//   1. the model is in eval mode (dropout is the identity);
//   2. A = the output of module NAME for x, shape (C, h, w) (layer_capture.h says how it is
//      reached);
//   3. score = the logit of class K (before softmax);
//   4. alpha_c = mean over (i, j) of d score / d A[c, i, j]   (c = 0 .. C-1);
//   5. cam = ReLU(sum_c alpha_c A[c]), shape (h, w);
//   6. cam is upsampled to the input's H x W by bilinear interpolation with align_corners = false
//      (torch::nn::functional::interpolate, as torch.nn.functional.interpolate in Python);
//   7. map = (cam - min) / (max - min) over the H x W values, or all zeros when max == min.
// All in float32. Images of a batch are independent (the networks normalise per sample), so a
// batch is explained with one forward and one backward of the sum of each image's score.
#ifndef FEDMED_TOOLS_EXPLAIN_GRAD_CAM_H_
#define FEDMED_TOOLS_EXPLAIN_GRAD_CAM_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/data/image_set.h"
#include "common/model/model_spec.h"
#include "common/model/model_state.h"

namespace fedmed::explain {

// The explanation of one image.
struct GradCam {
  std::vector<float> probabilities;  // softmax of the logits, num_classes values
  int64_t predicted = 0;             // argmax of the logits (the first on a tie)
  int64_t explained_class = 0;       // K: the class the map explains
  int64_t height = 0, width = 0;     // the input's H x W
  std::vector<float> map;            // H * W values in [0, 1], row-major (step 7 above)
};

// A model ready to explain images with Grad-CAM at one layer.
class GradCamExplainer {
 public:
  // Builds the model `spec` (MakeModel, common/model/zoo.h), loads `state` into it, puts it in
  // eval mode and selects module `layer` ("" = the last Conv2d of the model, DefaultLayer in
  // layer_capture.h). `threads` > 0 sets LibTorch's intra-op threads (0 leaves them).
  // Throws ConfigError as MakeModel for a bad spec or TorchScript file, or for a TorchScript
  // model whose layers cannot be reached (layer_capture.h gives the reason); ConfigError naming
  // `layer` and listing the model's layers when the model has no module of that name on its
  // forward path, or when its output is not a (B, C, h, w) feature map; FormatError (as
  // ImportState) when `state` does not have the model's layout.
  GradCamExplainer(const ModelSpec& spec, const ModelState& state, const std::string& layer,
                   int threads = 0);
  ~GradCamExplainer();
  GradCamExplainer(const GradCamExplainer&) = delete;
  GradCamExplainer& operator=(const GradCamExplainer&) = delete;

  // The module whose output is explained (e.g. "conv2", "layer4").
  const std::string& layer() const;

  // Explains images [begin, begin + count) of `images` (normalised as training normalises them,
  // ImageSet::CopyNormalizedChw), in batches of at most `batch_size`. `target_class`: K for
  // every image, or nullopt for each image's predicted class. Returns one GradCam per image, in
  // order. Throws DataError when the range is not inside the set or the images do not fit the
  // model (channels, image_size); ConfigError when target_class is outside [0, num_classes) or
  // the layer's output is not 4-D; Error when the model's forward cannot be replayed faithfully
  // (layer_capture.h).
  std::vector<GradCam> Explain(const ImageSet& images, int64_t begin, int64_t count,
                               std::optional<int64_t> target_class, int64_t batch_size = 32);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fedmed::explain

#endif  // FEDMED_TOOLS_EXPLAIN_GRAD_CAM_H_
