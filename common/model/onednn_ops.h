// Two layers of the zoo's cnn computed by oneDNN (libdnnl, the library LibTorch 1.13 already runs
// its CPU convolutions on) directly over LibTorch's plain row-major memory.
//
// Why: LibTorch's own routes for these layers either go to Debian's reference BLAS (torch::linear,
// ~6x slower) or wrap oneDNN in tensor conversions (to_mkldnn / to_dense: a copy of the input in
// and of the output out, on the forward and on the backward pass). Calling oneDNN's matmul and
// pooling primitives on the tensors' own buffers removes those copies: on one thread, one epoch
// of the cnn (1570 28 px images, batch 32) spent ~200 ms in fc1 and ~200 ms in the max-pool with
// conversions, ~120 ms and ~140 ms without (docs/BENCHMARKS.md, "Training step").
//
// Same functions: the max-pool's outputs and gradients are bit-identical to LibTorch's
// (max_pool2d, 2x2, stride 2; the gradient goes to the window's maximum); the linear layer's
// equal LibTorch's within float32 rounding (oneDNN sums in its own order).
//
// Both are autograd functions: their backward passes run on oneDNN too. Without gradients
// (torch::NoGradGuard, c10::InferenceMode, or an input that requires none) only the forward
// primitive runs. Primitives are created once per shape and thread, then reused.
//
// Include this header only from .cc files that need LibTorch.
#ifndef FEDMED_COMMON_MODEL_ONEDNN_OPS_H_
#define FEDMED_COMMON_MODEL_ONEDNN_OPS_H_

#include <torch/torch.h>

namespace fedmed {

// True when `x` can take the oneDNN routes below: a float32 CPU tensor (oneDNN's CPU kernels
// here are float32 only; a model converted to float64 for exact gradient checks takes LibTorch's
// own path). Never throws.
bool OneDnnSupports(const torch::Tensor& x);

// 2x2 max-pooling with stride 2 of x (N, C, H, W) float32, H and W even: (N, C, H/2, W/2), as
// torch::max_pool2d(x, 2). Other shapes and dtypes are passed to torch::max_pool2d, which also
// takes an unbatched (C, H, W) tensor and throws c10::Error (LibTorch's) for other ranks. Throws
// dnnl::error if oneDNN refuses a shape (it does not for these).
torch::Tensor OneDnnMaxPool2x2(const torch::Tensor& x);

// x (N, K) times weight (M, K) transposed, plus bias (M): (N, M) float32, as
// torch::linear(x, weight, bias). Other dtypes are passed to torch::linear. Throws c10::Error for
// shapes that do not agree (K), as torch::linear does.
torch::Tensor OneDnnLinear(const torch::Tensor& x, const torch::Tensor& weight,
                           const torch::Tensor& bias);

// a (M, K) times b (K, N) = (M, N), float32, without gradients: `a` or `b` transposed first when
// transpose_a or transpose_b (e.g. OneDnnMatMul(x, w, false, true) is x w^T). Other dtypes go to
// torch::mm. Throws c10::Error for shapes that do not agree.
torch::Tensor OneDnnMatMul(const torch::Tensor& a, const torch::Tensor& b, bool transpose_a,
                           bool transpose_b);

}  // namespace fedmed

#endif  // FEDMED_COMMON_MODEL_ONEDNN_OPS_H_
