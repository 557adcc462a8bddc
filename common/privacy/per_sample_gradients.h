// Per-sample gradients for DP-SGD (Abadi et al., "Deep Learning with Differential Privacy",
// CCS 2016), vectorised over the batch.
//
// DP-SGD clips the gradient of every sample's loss to L2 norm C before summing, so it needs each
// sample's gradient (or at least its norm), not only the batch's. Running forward and backward
// once per sample gives them, at B times the cost. Instead, as Opacus's grad samplers do, one
// forward records each parametrised layer's input A (its activations) on a LayerTape
// (common/model/layer_tape.h), one backward of the summed per-sample losses gives the gradient G
// of the loss with respect to each layer's output, and the per-sample gradients follow per layer
// from A and G, because sample b's loss depends only on row b of every layer's input and output:
//
//   Linear  y = x W^T + b, x (B, ..., in), y (B, ..., out):
//           dW_b = sum_t G_bt^T A_bt  (out, in),  db_b = sum_t G_bt  (summing the extra dims t)
//   Conv2d  with A_b = unfold(x_b) (Cin*kh*kw, L), G_b (Cout, L), L = output pixels:
//           dW_b = G_b A_b^T reshaped to (Cout, Cin, kh, kw),  db_b = sum_L G_b
//   GroupNorm with x_hat = the normalised input (no affine), per channel c:
//           dgamma_bc = sum_hw G_bchw x_hat_bchw,  dbeta_bc = sum_hw G_bchw
//
// A layer called more than once in one forward gets the sum of its calls' contributions.
//
// The clipped sum sum_b c_b g_b (c_b = min(1, C / (||g_b|| + 1e-6))) needs the norms ||g_b||,
// which need not materialise the g_b ("ghost clipping", Goodfellow 2015; Li et al., ICLR 2022):
// for a Linear on (B, in) inputs ||dW_b||^2 = ||G_b||^2 ||A_b||^2; for a Conv2d
// ||G_b A_b^T||_F^2 = sum((G_b^T G_b) * (A_b^T A_b)) with two L x L Gram matrices. That is cheaper
// than materialising exactly when L (Cin*kh*kw + Cout) < Cin*kh*kw * Cout (few output pixels,
// many channels: ResNet's deep layers), otherwise materialising is: ComputeClippedGradientSum
// picks per layer, the "mixed ghost clipping" of Bu et al., "Scalable and Efficient Training of
// Large Convolutional Neural Networks with Differential Privacy", NeurIPS 2022. The clipped sum
// itself is then one weighted product per layer, (c * G)^T A, computed by the same kernels as a
// normal backward (oneDNN's convolution and inner product for float32), never a per-sample tensor.
//
// Calls on different models may run at once in different threads (the tape is per thread).
//
// Include this header only from .cc files that need LibTorch.
#ifndef FEDMED_COMMON_PRIVACY_PER_SAMPLE_GRADIENTS_H_
#define FEDMED_COMMON_PRIVACY_PER_SAMPLE_GRADIENTS_H_

#include <torch/torch.h>

#include <string>
#include <vector>

#include "common/model/zoo.h"

namespace fedmed {

// Checks that per-sample gradients can be computed for `model`: every module that has parameters
// of its own (the model itself included) must be a torch::nn::Linear, a torch::nn::Conv2d with
// groups == 1, padding_mode zeros and numeric or "valid" padding (any stride and dilation), or a
// torch::nn::GroupNorm (affine; a non-affine one has no parameters and is not checked).
// Throws ConfigError naming the first offending module by its qualified name (e.g.
// "layer1.0.bn1"), its type and why it is refused — BatchNorm mixes the samples of a batch, so a
// sample's gradient depends on the others (use GroupNorm) — and listing what is supported.
// Throws ConfigError naming the file for a TorchScript model (ScriptedClassifier,
// common/model/torchscript_model.h): its layers cannot be recorded on the layer tape.
void CheckDpSgdSupport(torch::nn::Module& model);

// The per-sample gradients of the cross-entropy loss of each sample, materialised: one forward
// of `model` on the whole batch with a LayerTape, one backward (torch::autograd::grad of the sum
// of the B losses with respect to the taped layer outputs; no parameter's .grad is read or
// written), then the formulas above.
//   images: (B, C, H, W), B >= 1, the dtype of the model's parameters (float32, or float64 for a
//           model converted with to(torch::kFloat64)).
//   labels: (B,) int64 class indices in [0, num_classes).
// Returns, for each parameter in model.named_parameters() order, a (B, *parameter_shape) tensor
// of the parameter's dtype: row b is the gradient of sample b's loss (nats) alone. The model's
// train/eval mode is used as is (in train mode every sample gets its own dropout mask, as in the
// batch forward).
// Throws ConfigError as CheckDpSgdSupport, or if two taped layers share a parameter (naming it);
// DataError if images or labels do not have the shapes and dtypes above (naming which), or a
// label is out of range; Error if a parameter receives no per-sample gradient because
// its layer was not called through Taped() in the model's forward (naming the parameter), or if
// a taped layer's output does not require grad (its parameters are frozen).
std::vector<torch::Tensor> PerSampleGradients(Classifier& model, const torch::Tensor& images,
                                              const torch::Tensor& labels);

// How ComputeClippedGradientSum gets each layer's per-sample gradient norms.
enum class NormMethod {
  kAuto,         // per layer, whichever of kGhost and kMaterialize costs fewer operations
  kGhost,        // ghost norms wherever a layer allows them (Linear and Conv2d called once)
  kMaterialize,  // materialise every per-sample gradient (as PerSampleGradients)
};

// The result of one batch: the clipped sum and what led to it. B = the batch size.
struct ClippedGradientSum {
  // For each parameter in model.named_parameters() order: sum_b c_b g_b, the parameter's shape
  // and dtype. Zeros for an empty batch. No noise added, not divided by anything.
  std::vector<torch::Tensor> sum;
  torch::Tensor norms;         // (B,) ||g_b||, the L2 norm over all parameters, parameter dtype
  torch::Tensor clip_factors;  // (B,) c_b = min(1, C / (norms_b + 1e-6)), parameter dtype
  torch::Tensor losses;        // (B,) each sample's cross-entropy (nats), detached
};

// c = min(1, clipping_norm / (norms + 1e-6)), elementwise, in the dtype of `norms` (any shape).
// The 1e-6 guards a zero norm, as Opacus does. Throws ConfigError unless clipping_norm is finite
// and > 0.
torch::Tensor ClipFactors(const torch::Tensor& norms, double clipping_norm);

// The clipped per-sample gradient sum of DP-SGD for one batch, without materialising per-sample
// gradients where a ghost norm is cheaper (see the top of this header): one taped forward, one
// backward to the layer outputs, per-layer norms, clip factors, per-layer weighted products.
// images and labels as for PerSampleGradients, except that B = 0 is allowed (an empty Poisson
// batch: no forward, zero sums, empty (0,) norms, factors and losses). clipping_norm is C (same
// units as the gradient: nats per unit of parameter). After this call every clipped per-sample
// gradient c_b g_b has norm <= C (up to rounding); parameters' .grad are not touched.
// Throws as PerSampleGradients, and ConfigError unless clipping_norm is finite and > 0.
ClippedGradientSum ComputeClippedGradientSum(Classifier& model, const torch::Tensor& images,
                                             const torch::Tensor& labels, double clipping_norm,
                                             NormMethod method = NormMethod::kAuto);

}  // namespace fedmed

#endif  // FEDMED_COMMON_PRIVACY_PER_SAMPLE_GRADIENTS_H_
