// Reaching the output of one named module of a classifier during its forward pass: what Grad-CAM
// (grad_cam.h) differentiates the class score by. Internal to fedmed-explain; LibTorch inside.
//
// LibTorch's C++ modules have no forward hooks, and a zoo network's forward (common/model/zoo.cc)
// does not expose its intermediate tensors, so the forward is REPLAYED here from the model's own
// submodules, in the order zoo.h's PyTorch code calls them, in eval mode (dropout is the identity):
//   cnn       conv1 -> gn1 -> relu -> conv2 -> gn2 -> relu -> max_pool2d(2) -> flatten -> fc1
//             -> relu -> fc2
//   resnet18  conv1 -> gn1 -> relu -> layer1 .. layer4 (each two BasicBlocks layerI.0, layerI.1:
//             conv1, gn1, relu, conv2, gn2, + shortcut (downsample.0, downsample.1), relu)
//             -> adaptive_avg_pool2d(1) -> flatten -> fc
// Every module name of named_modules() that the replay calls can be captured: leaves (conv1,
// layer4.1.conv2, ...) and the containers (layer4, layer4.1, layer4.1.downsample). The replayed
// logits are checked against the model's own forward on every call, so a zoo network changed
// without this file is refused, never explained wrongly.
//
// A TorchScript model (common/model/torchscript_model.h) can be replayed only when the script is
// an nn.Sequential (nested Sequentials included): its children are then called one by one.
// LibTorch cannot hook the submodules of any other script; such a model is refused with that
// reason.
#ifndef FEDMED_TOOLS_EXPLAIN_LAYER_CAPTURE_H_
#define FEDMED_TOOLS_EXPLAIN_LAYER_CAPTURE_H_

#include <torch/torch.h>

#include <string>
#include <vector>

#include "common/model/model_spec.h"
#include "common/model/zoo.h"

namespace fedmed::explain {

// The default Grad-CAM layer of `model`: the last Conv2d in named_modules() order ("conv2" for
// cnn, "layer4.1.conv2" for resnet18; for a TorchScript Sequential, its last submodule of type
// torch.nn.Conv2d). Throws ConfigError (naming spec.torchscript_path) for a TorchScript model
// that is not an nn.Sequential, or has no Conv2d.
std::string DefaultLayer(Classifier& model, const ModelSpec& spec);

// The module names `layer` may take for `model` (those the replay calls), in call order.
// Throws ConfigError as DefaultLayer for a TorchScript model that cannot be replayed.
std::vector<std::string> CapturableLayers(Classifier& model, const ModelSpec& spec);

// Runs `model` (in eval mode; the caller sets it) on `images`, (B, C, S, S) float32, by
// replaying its forward as described above, and returns the logits, (B, num_classes) float32,
// attached to the autograd graph (gradients must be enabled). *activation receives the output of
// module `layer` for the same batch, (B, C', h, w) float32, attached to the same graph, so that
// torch::autograd::grad(score, *activation) is d score / d A.
// Throws ConfigError naming `layer` and listing CapturableLayers when the replay never calls it;
// ConfigError when its output is not 4-D (e.g. "fc1": (B, 128)), since Grad-CAM needs a spatial
// feature map; ConfigError for a TorchScript model that cannot be replayed (see above); Error
// when the replayed logits differ from model.forward(images) by more than 1e-4 * (1 + max |logit|).
torch::Tensor ForwardCapturing(Classifier& model, const ModelSpec& spec,
                               const torch::Tensor& images, const std::string& layer,
                               torch::Tensor* activation);

}  // namespace fedmed::explain

#endif  // FEDMED_TOOLS_EXPLAIN_LAYER_CAPTURE_H_
