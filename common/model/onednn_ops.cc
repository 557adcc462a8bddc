#include "common/model/onednn_ops.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <array>
#include <map>
#include <unordered_map>

namespace fedmed {

namespace {

using Tag = dnnl::memory::format_tag;
using Dims = dnnl::memory::dims;
constexpr auto kF32 = dnnl::memory::data_type::f32;

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Runs `primitive` on this thread's stream and waits for it (the CPU stream is synchronous in
// effect; waiting keeps that explicit).
void Execute(const dnnl::primitive& primitive,
             const std::unordered_map<int, dnnl::memory>& args) {
  thread_local dnnl::stream stream(Engine());
  primitive.execute(stream, args);
  stream.wait();
}

dnnl::memory Memory(const dnnl::memory::desc& desc, const torch::Tensor& t) {
  return dnnl::memory(desc, Engine(), t.data_ptr());
}

// ---- 2x2 max-pool, stride 2, over NCHW ----

struct PoolPrimitives {
  dnnl::memory::desc src, dst;
  dnnl::pooling_forward::primitive_desc forward_pd;
  dnnl::pooling_forward forward;
  dnnl::pooling_backward backward;  // empty for inference
};

// This thread's primitives for input `shape` (N, C, H, W), training (with workspace and backward)
// or inference.
const PoolPrimitives& PoolFor(const Dims& shape, bool training) {
  thread_local std::map<std::pair<Dims, bool>, PoolPrimitives> cache;
  const auto key = std::make_pair(shape, training);
  if (const auto it = cache.find(key); it != cache.end()) return it->second;
  PoolPrimitives p;
  p.src = dnnl::memory::desc(shape, kF32, Tag::nchw);
  p.dst = dnnl::memory::desc({shape[0], shape[1], shape[2] / 2, shape[3] / 2}, kF32, Tag::nchw);
  const Dims strides = {2, 2}, kernel = {2, 2}, padding = {0, 0};
  const auto prop = training ? dnnl::prop_kind::forward_training
                             : dnnl::prop_kind::forward_inference;
  p.forward_pd = dnnl::pooling_forward::primitive_desc(
      dnnl::pooling_forward::desc(prop, dnnl::algorithm::pooling_max, p.src, p.dst, strides,
                                  kernel, padding, padding),
      Engine());
  p.forward = dnnl::pooling_forward(p.forward_pd);
  if (training) {
    p.backward = dnnl::pooling_backward(dnnl::pooling_backward::primitive_desc(
        dnnl::pooling_backward::desc(dnnl::algorithm::pooling_max, p.src, p.dst, strides, kernel,
                                     padding, padding),
        Engine(), p.forward_pd));
  }
  return cache.emplace(key, std::move(p)).first->second;
}

torch::Tensor PoolForward(const torch::Tensor& x, bool training, torch::Tensor* workspace) {
  const PoolPrimitives& p = PoolFor(x.sizes().vec(), training);
  torch::Tensor y = torch::empty({x.size(0), x.size(1), x.size(2) / 2, x.size(3) / 2},
                                 x.options());
  std::unordered_map<int, dnnl::memory> args = {{DNNL_ARG_SRC, Memory(p.src, x)},
                                                {DNNL_ARG_DST, Memory(p.dst, y)}};
  if (training) {
    const auto ws_desc = p.forward_pd.workspace_desc();
    *workspace = torch::empty({static_cast<int64_t>(ws_desc.get_size())},
                              x.options().dtype(torch::kByte));
    args.emplace(DNNL_ARG_WORKSPACE, Memory(ws_desc, *workspace));
  }
  Execute(p.forward, args);
  return y;
}

class MaxPool2x2Function : public torch::autograd::Function<MaxPool2x2Function> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
    const torch::Tensor input = x.contiguous();
    torch::Tensor workspace;
    torch::Tensor y = PoolForward(input, /*training=*/true, &workspace);
    ctx->save_for_backward({workspace});
    ctx->saved_data["shape"] = input.sizes().vec();
    return y;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const Dims shape = ctx->saved_data["shape"].toIntVector();
    const torch::Tensor workspace = ctx->get_saved_variables()[0];
    const torch::Tensor grad_y = grads[0].contiguous();
    const PoolPrimitives& p = PoolFor(shape, /*training=*/true);
    torch::Tensor grad_x = torch::empty(shape, grad_y.options());
    Execute(p.backward, {{DNNL_ARG_DIFF_DST, Memory(p.dst, grad_y)},
                         {DNNL_ARG_DIFF_SRC, Memory(p.src, grad_x)},
                         {DNNL_ARG_WORKSPACE, Memory(p.forward_pd.workspace_desc(), workspace)}});
    return {grad_x};
  }
};

// ---- matrix products ----

// C (M, N) = op(A) (M, K) x op(B) (K, N) [+ bias (N)], every operand contiguous float32; a
// transposed operand is given as stored, (K, M) or (N, K).
torch::Tensor Product(const torch::Tensor& a, bool transpose_a, const torch::Tensor& b,
                      bool transpose_b, const torch::Tensor* bias) {
  const int64_t m = transpose_a ? a.size(1) : a.size(0);
  const int64_t k = transpose_a ? a.size(0) : a.size(1);
  const int64_t n = transpose_b ? b.size(0) : b.size(1);
  // The key: M, K, N, the two transpositions and the bias.
  using Key = std::array<int64_t, 6>;
  struct MatMulPrimitive {
    dnnl::memory::desc a, b, bias, c;
    dnnl::matmul matmul;
  };
  thread_local std::map<Key, MatMulPrimitive> cache;
  const Key key = {m, k, n, transpose_a, transpose_b, bias != nullptr};
  auto it = cache.find(key);
  if (it == cache.end()) {
    MatMulPrimitive p;
    p.a = dnnl::memory::desc({m, k}, kF32, transpose_a ? Tag::ba : Tag::ab);
    p.b = dnnl::memory::desc({k, n}, kF32, transpose_b ? Tag::ba : Tag::ab);
    if (bias) p.bias = dnnl::memory::desc({1, n}, kF32, Tag::ab);
    p.c = dnnl::memory::desc({m, n}, kF32, Tag::ab);
    p.matmul = dnnl::matmul(
        dnnl::matmul::primitive_desc(dnnl::matmul::desc(p.a, p.b, p.bias, p.c), Engine()));
    it = cache.emplace(key, std::move(p)).first;
  }
  const MatMulPrimitive& p = it->second;
  torch::Tensor c = torch::empty({m, n}, a.options());
  std::unordered_map<int, dnnl::memory> args = {{DNNL_ARG_SRC, Memory(p.a, a)},
                                                {DNNL_ARG_WEIGHTS, Memory(p.b, b)},
                                                {DNNL_ARG_DST, Memory(p.c, c)}};
  if (bias) args.emplace(DNNL_ARG_BIAS, Memory(p.bias, *bias));
  Execute(p.matmul, args);
  return c;
}

class LinearFunction : public torch::autograd::Function<LinearFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias) {
    const torch::Tensor input = x.contiguous(), w = weight.contiguous(), b = bias.contiguous();
    ctx->save_for_backward({input, w});
    return Product(input, false, w, true, &b);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const torch::autograd::variable_list saved = ctx->get_saved_variables();
    const torch::Tensor& input = saved[0];
    const torch::Tensor& w = saved[1];
    const torch::Tensor grad_y = grads[0].contiguous();
    torch::Tensor grad_x, grad_w, grad_b;
    if (ctx->needs_input_grad(0)) grad_x = Product(grad_y, false, w, false, nullptr);
    if (ctx->needs_input_grad(1)) grad_w = Product(grad_y, true, input, false, nullptr);
    if (ctx->needs_input_grad(2)) grad_b = grad_y.sum(0);
    return {grad_x, grad_w, grad_b};
  }
};

bool NeedsGradient(std::initializer_list<const torch::Tensor*> inputs) {
  if (!torch::GradMode::is_enabled()) return false;
  for (const torch::Tensor* t : inputs) {
    if (t->requires_grad()) return true;
  }
  return false;
}

}  // namespace

bool OneDnnSupports(const torch::Tensor& x) {
  return x.defined() && x.scalar_type() == torch::kFloat && x.device().is_cpu() &&
         !x.is_mkldnn() && !x.is_sparse();
}

torch::Tensor OneDnnMaxPool2x2(const torch::Tensor& x) {
  if (!OneDnnSupports(x) || x.dim() != 4 || x.size(2) % 2 != 0 || x.size(3) % 2 != 0 ||
      x.numel() == 0) {
    return torch::max_pool2d(x, 2);
  }
  if (NeedsGradient({&x})) return MaxPool2x2Function::apply(x);
  torch::Tensor unused;
  return PoolForward(x.contiguous(), /*training=*/false, &unused);
}

torch::Tensor OneDnnLinear(const torch::Tensor& x, const torch::Tensor& weight,
                           const torch::Tensor& bias) {
  if (!OneDnnSupports(x) || !OneDnnSupports(weight) || !OneDnnSupports(bias) || x.dim() != 2 ||
      weight.dim() != 2 || bias.dim() != 1 || x.size(1) != weight.size(1) ||
      bias.size(0) != weight.size(0) || x.numel() == 0 || weight.numel() == 0) {
    return torch::linear(x, weight, bias);
  }
  if (NeedsGradient({&x, &weight, &bias})) return LinearFunction::apply(x, weight, bias);
  const torch::Tensor b = bias.contiguous();
  return Product(x.contiguous(), false, weight.contiguous(), true, &b);
}

torch::Tensor OneDnnMatMul(const torch::Tensor& a, const torch::Tensor& b, bool transpose_a,
                           bool transpose_b) {
  const bool agree = a.dim() == 2 && b.dim() == 2 &&
                     (transpose_a ? a.size(0) : a.size(1)) == (transpose_b ? b.size(1) : b.size(0));
  if (!OneDnnSupports(a) || !OneDnnSupports(b) || !agree || a.numel() == 0 || b.numel() == 0) {
    return torch::mm(transpose_a ? a.t() : a, transpose_b ? b.t() : b);
  }
  return Product(a.contiguous(), transpose_a, b.contiguous(), transpose_b, nullptr);
}

}  // namespace fedmed
