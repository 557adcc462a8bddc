#include "common/privacy/per_sample_gradients.h"

#include <cmath>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/model/layer_tape.h"
#include "common/model/onednn_ops.h"
#include "common/model/torchscript_model.h"
#include "common/util/error.h"

namespace fedmed {

namespace nn = torch::nn;

namespace {

const char kSupported[] =
    "supported layers with parameters: Linear, Conv2d (groups 1, zero padding), GroupNorm";

std::string ShownName(const std::string& name) {
  return name.empty() ? "(the model itself)" : "\"" + name + "\"";
}

std::string ShapeOf(const torch::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::string s = "(";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + ")";
}

std::string DtypeOf(const torch::Tensor& t) { return std::string(c10::toString(t.scalar_type())); }

// x (N, K) times w (M, K) transposed: (N, M). On oneDNN for float32 (common/model/onednn_ops.h):
// Debian's LibTorch sends torch::mm and torch::bmm to the reference BLAS, 10-30x slower.
torch::Tensor MatMulNT(const torch::Tensor& x, const torch::Tensor& w) {
  return OneDnnMatMul(x, w, /*transpose_a=*/false, /*transpose_b=*/true);
}

// x (B, T, D) -> (B, T, T), x_b x_b^T for every b. For float32, one oneDNN product per sample
// (OneDnnMatMul is 2-D; oneDNN's matmul could take the batch in one call, not done): B of them
// beat one reference-BLAS bmm by ~10x.
torch::Tensor BatchedGram(const torch::Tensor& x) {
  if (!OneDnnSupports(x)) return at::bmm(x, x.transpose(1, 2));
  std::vector<torch::Tensor> grams;
  grams.reserve(static_cast<size_t>(x.size(0)));
  for (int64_t b = 0; b < x.size(0); ++b) {
    const torch::Tensor row = x[b].contiguous();
    grams.push_back(MatMulNT(row, row));
  }
  return torch::stack(grams);
}

// c (B,) viewed as (B, 1, ..., 1) to scale a (B, ...) tensor sample by sample.
torch::Tensor PerSample(const torch::Tensor& c, int64_t dims) {
  std::vector<int64_t> shape(static_cast<size_t>(dims), 1);
  shape[0] = c.size(0);
  return c.view(shape);
}

// sum_b c_b t_b for t (B, ...).
torch::Tensor WeightedSum(const torch::Tensor& per_sample, const torch::Tensor& c) {
  return (per_sample * PerSample(c, per_sample.dim())).sum(0);
}

// (B,) squared L2 norms of the rows of a (B, ...) tensor.
torch::Tensor RowNormsSquared(const torch::Tensor& t) { return t.flatten(1).square().sum(1); }

// ---- the layers ----

enum class LayerKind { kLinear, kConv2d, kGroupNorm };

struct ConvGeometry {
  std::vector<int64_t> kernel, stride, padding, dilation;
};

std::vector<int64_t> Pair(const torch::ExpandingArray<2>& a) { return {(*a)[0], (*a)[1]}; }

ConvGeometry GeometryOf(const nn::Conv2dImpl& conv) {
  ConvGeometry g;
  g.kernel = Pair(conv.options.kernel_size());
  g.stride = Pair(conv.options.stride());
  g.dilation = Pair(conv.options.dilation());
  const auto* padding = c10::get_if<torch::ExpandingArray<2>>(&conv.options.padding());
  g.padding = padding ? Pair(*padding) : std::vector<int64_t>{0, 0};  // "valid"
  return g;
}

// A parametrised layer and what the taped pass saw of it: one (input, output gradient) pair per
// call, and where its parameters sit in model.named_parameters().
struct LayerCalls {
  const nn::Module* module = nullptr;
  std::string name;
  LayerKind kind = LayerKind::kLinear;
  std::vector<torch::Tensor> inputs;        // A, detached
  std::vector<torch::Tensor> grad_outputs;  // G = d(sum of losses) / d(output)
  int64_t weight = -1;                      // parameter indices; -1: none
  int64_t bias = -1;
};

struct TapedPass {
  std::vector<std::string> names;  // named_parameters() order
  std::vector<torch::Tensor> params;
  std::vector<LayerCalls> layers;  // in order of first call
  torch::Tensor losses;            // (B,), detached
};

void CheckBatch(const std::vector<torch::Tensor>& params, const torch::Tensor& images,
                const torch::Tensor& labels, bool allow_empty) {
  if (params.empty()) throw ConfigError("DP-SGD: the model has no parameters to train");
  if (!images.defined() || images.dim() != 4) {
    throw DataError("DP-SGD: images have shape " + ShapeOf(images) + ", expected (B, C, H, W)");
  }
  if (images.scalar_type() != params.front().scalar_type()) {
    throw DataError("DP-SGD: images are " + DtypeOf(images) + ", expected " +
                    DtypeOf(params.front()) + " like the model's parameters");
  }
  if (!labels.defined() || labels.dim() != 1 || labels.scalar_type() != torch::kLong) {
    throw DataError("DP-SGD: labels have shape " + ShapeOf(labels) + " and dtype " +
                    (labels.defined() ? DtypeOf(labels) : std::string("none")) +
                    ", expected (B,) int64 class indices");
  }
  if (labels.size(0) != images.size(0)) {
    throw DataError("DP-SGD: " + std::to_string(images.size(0)) + " images but " +
                    std::to_string(labels.size(0)) + " labels");
  }
  if (images.size(0) == 0 && !allow_empty) {
    throw DataError("DP-SGD: the batch holds no images, expected at least 1");
  }
}

// The layer behind a tape record: its kind and parameter indices. False for a module without
// parameters of its own (nothing to compute).
bool Describe(const nn::Module& module,
              const std::unordered_map<const c10::TensorImpl*, int64_t>& index,
              LayerCalls& layer) {
  const auto find = [&](const torch::Tensor& t) -> int64_t {
    if (!t.defined()) return -1;
    const auto it = index.find(t.unsafeGetTensorImpl());
    return it == index.end() ? -1 : it->second;
  };
  if (const auto* linear = dynamic_cast<const nn::LinearImpl*>(&module)) {
    layer.kind = LayerKind::kLinear;
    layer.weight = find(linear->weight);
    layer.bias = find(linear->bias);
  } else if (const auto* conv = dynamic_cast<const nn::Conv2dImpl*>(&module)) {
    layer.kind = LayerKind::kConv2d;
    layer.weight = find(conv->weight);
    layer.bias = find(conv->bias);
  } else if (const auto* norm = dynamic_cast<const nn::GroupNormImpl*>(&module)) {
    layer.kind = LayerKind::kGroupNorm;
    layer.weight = find(norm->weight);
    layer.bias = find(norm->bias);
  } else {
    return false;  // CheckDpSgdSupport refused every other module with parameters
  }
  return layer.weight >= 0 || layer.bias >= 0;
}

// One forward of the whole batch with the tape, one backward to the taped layer outputs.
TapedPass RunTapedPass(Classifier& model, const torch::Tensor& images,
                       const torch::Tensor& labels) {
  CheckDpSgdSupport(model);
  TapedPass pass;
  for (const auto& item : model.named_parameters()) {
    pass.names.push_back(item.key());
    pass.params.push_back(item.value());
  }
  CheckBatch(pass.params, images, labels, /*allow_empty=*/false);
  std::unordered_map<const c10::TensorImpl*, int64_t> index;
  for (size_t i = 0; i < pass.params.size(); ++i) {
    index.emplace(pass.params[i].unsafeGetTensorImpl(), static_cast<int64_t>(i));
  }

  torch::AutoGradMode grad_mode(true);
  LayerTape tape(model);
  torch::Tensor logits;
  {
    LayerTape::Scope scope(tape);
    logits = model.forward(images);
  }
  const int64_t classes = logits.size(1);
  const int64_t low = labels.min().item<int64_t>();
  const int64_t high = labels.max().item<int64_t>();
  if (low < 0 || high >= classes) {
    throw DataError("DP-SGD: label " + std::to_string(low < 0 ? low : high) +
                    " is out of range, expected 0 to " + std::to_string(classes - 1));
  }
  const torch::Tensor losses = torch::nn::functional::cross_entropy(
      logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));

  std::unordered_map<const nn::Module*, size_t> slot;
  std::vector<torch::Tensor> outputs;
  std::vector<std::pair<size_t, size_t>> output_of;  // (layer, call) of each output
  for (const LayerTape::Record& record : tape.records()) {
    auto found = slot.find(record.module);
    if (found == slot.end()) {
      LayerCalls layer;
      layer.module = record.module;
      layer.name = record.name;
      if (!Describe(*record.module, index, layer)) continue;
      found = slot.emplace(record.module, pass.layers.size()).first;
      pass.layers.push_back(std::move(layer));
    }
    if (!record.output.requires_grad()) {
      throw Error("DP-SGD: the output of layer " + ShownName(record.name) +
                  " does not require grad (are its parameters frozen?)");
    }
    LayerCalls& layer = pass.layers[found->second];
    output_of.emplace_back(found->second, layer.inputs.size());
    layer.inputs.push_back(record.input.detach());
    outputs.push_back(record.output);
  }
  // Each parameter belongs to exactly one taped layer (a parameter shared by two layers would
  // need the norm of the sum of their contributions, which the per-layer norms do not give).
  std::vector<const LayerCalls*> owner(pass.params.size(), nullptr);
  for (const LayerCalls& layer : pass.layers) {
    for (const int64_t i : {layer.weight, layer.bias}) {
      if (i < 0) continue;
      const LayerCalls*& first = owner[static_cast<size_t>(i)];
      if (first != nullptr) {
        throw ConfigError("DP-SGD: parameter \"" + pass.names[static_cast<size_t>(i)] +
                          "\" is shared by layers " + ShownName(first->name) + " and " +
                          ShownName(layer.name) +
                          "; per-sample gradients support unshared parameters only (call one "
                          "layer several times instead)");
      }
      first = &layer;
    }
  }
  for (size_t i = 0; i < owner.size(); ++i) {
    if (owner[i] == nullptr) {
      throw Error("DP-SGD: parameter \"" + pass.names[i] +
                  "\" receives no per-sample gradient: its layer was not called through "
                  "Taped() (common/model/layer_tape.h) in the model's forward");
    }
  }

  const std::vector<torch::Tensor> grads =
      torch::autograd::grad({losses.sum()}, outputs, /*grad_outputs=*/{},
                            /*retain_graph=*/false, /*create_graph=*/false,
                            /*allow_unused=*/true);
  for (LayerCalls& layer : pass.layers) layer.grad_outputs.resize(layer.inputs.size());
  for (size_t i = 0; i < grads.size(); ++i) {
    const auto [layer, call] = output_of[i];
    // An output the loss does not depend on has gradient zero.
    pass.layers[layer].grad_outputs[call] =
        grads[i].defined() ? grads[i] : torch::zeros_like(outputs[i]).detach();
  }
  pass.losses = losses.detach();
  return pass;
}

// ---- per-sample gradients of one call, materialised: (B, *weight shape), (B, *bias shape) ----

// (B, out): the bias gradient of a Linear call, G summed over the extra dimensions.
torch::Tensor LinearBiasPerSample(const torch::Tensor& g) {
  return g.dim() == 2 ? g : g.reshape({g.size(0), -1, g.size(-1)}).sum(1);
}

std::pair<torch::Tensor, torch::Tensor> LinearPerSample(const torch::Tensor& a,
                                                        const torch::Tensor& g, bool bias) {
  const torch::Tensor bias_grad = bias ? LinearBiasPerSample(g) : torch::Tensor();
  if (a.dim() == 2) return {g.unsqueeze(2) * a.unsqueeze(1), bias_grad};
  const int64_t b = a.size(0);
  const torch::Tensor a3 = a.reshape({b, -1, a.size(-1)});
  const torch::Tensor g3 = g.reshape({b, -1, g.size(-1)});
  return {at::bmm(g3.transpose(1, 2), a3), bias_grad};
}

// The per-sample weight gradients of a convolution are the weight gradient of one grouped
// convolution with the batch as groups: sample b's input channels form group b, whose output
// channels are sample b's. So one call of LibTorch's convolution backward (oneDNN for float32)
// computes every G_b A_b^T without unfolding the input (which LibTorch 1.13's im2col does at
// ~1.5 GB/s) and without a batched product on the reference BLAS.
torch::Tensor ConvWeightPerSample(const nn::Conv2dImpl& conv, const torch::Tensor& a,
                                  const torch::Tensor& g) {
  const ConvGeometry geo = GeometryOf(conv);
  const int64_t b = a.size(0), cin = a.size(1), cout = g.size(1);
  // Only the shape of the grouped weight is used (no input gradient is asked for).
  const torch::Tensor grouped_weight =
      torch::zeros({b * cout, cin, geo.kernel[0], geo.kernel[1]}, a.options());
  const auto grads = at::convolution_backward(
      g.reshape({1, b * cout, g.size(2), g.size(3)}),
      a.reshape({1, b * cin, a.size(2), a.size(3)}), grouped_weight, c10::nullopt, geo.stride,
      geo.padding, geo.dilation, /*transposed=*/false, /*output_padding=*/{0, 0},
      /*groups=*/b, {false, true, false});
  return std::get<1>(grads).reshape({b, cout, cin, geo.kernel[0], geo.kernel[1]});
}

std::pair<torch::Tensor, torch::Tensor> GroupNormPerSample(const nn::GroupNormImpl& norm,
                                                           const torch::Tensor& a,
                                                           const torch::Tensor& g) {
  const torch::Tensor x_hat =
      at::group_norm(a, norm.options.num_groups(), {}, {}, norm.options.eps());
  const torch::Tensor weighted = g * x_hat;
  if (a.dim() == 2) return {weighted, g};
  return {weighted.flatten(2).sum(2), g.flatten(2).sum(2)};
}

std::pair<torch::Tensor, torch::Tensor> CallPerSample(const LayerCalls& layer, size_t call) {
  const torch::Tensor& a = layer.inputs[call];
  const torch::Tensor& g = layer.grad_outputs[call];
  switch (layer.kind) {
    case LayerKind::kLinear:
      return LinearPerSample(a, g, layer.bias >= 0);
    case LayerKind::kConv2d: {
      const auto& conv = dynamic_cast<const nn::Conv2dImpl&>(*layer.module);
      return {ConvWeightPerSample(conv, a, g),
              layer.bias >= 0 ? g.sum({2, 3}) : torch::Tensor()};
    }
    case LayerKind::kGroupNorm:
      return GroupNormPerSample(dynamic_cast<const nn::GroupNormImpl&>(*layer.module), a, g);
  }
  throw Error("DP-SGD: unknown layer kind");  // unreachable
}

// Summed over the layer's calls.
std::pair<torch::Tensor, torch::Tensor> LayerPerSample(const LayerCalls& layer) {
  std::pair<torch::Tensor, torch::Tensor> total = CallPerSample(layer, 0);
  for (size_t call = 1; call < layer.inputs.size(); ++call) {
    const auto [weight, bias] = CallPerSample(layer, call);
    total.first = total.first + weight;
    if (bias.defined()) total.second = total.second + bias;
  }
  return total;
}

// ---- ghost norms and weighted products (single-call Linear and Conv2d) ----

// Operation counts per sample of the two ways to ||G_b A_b^T||^2 with A_b (k, L), G_b (m, L):
// two L x L Gram matrices, L^2 (k + m), against materialising, L k m.
bool GhostIsCheaper(int64_t l, int64_t k, int64_t m) { return l * (k + m) < k * m; }

bool LinearGhostIsCheaper(const torch::Tensor& a, const torch::Tensor& g) {
  const int64_t in = a.size(-1), out = g.size(-1);
  return GhostIsCheaper(a.numel() / (a.size(0) * in), in, out);
}

bool ConvGhostIsCheaper(const torch::Tensor& a, const torch::Tensor& g,
                        const nn::Conv2dImpl& conv) {
  const ConvGeometry geo = GeometryOf(conv);
  return GhostIsCheaper(g.size(2) * g.size(3), a.size(1) * geo.kernel[0] * geo.kernel[1],
                        g.size(1));
}

// (B,) ||dW_b||^2 of a Linear call.
torch::Tensor LinearGhostNormSquared(const torch::Tensor& a, const torch::Tensor& g) {
  if (a.dim() == 2) return RowNormsSquared(g) * RowNormsSquared(a);
  const int64_t b = a.size(0);
  const torch::Tensor a3 = a.reshape({b, -1, a.size(-1)});
  const torch::Tensor g3 = g.reshape({b, -1, g.size(-1)});
  return (BatchedGram(a3) * BatchedGram(g3)).sum({1, 2});
}

// (B,) ||dW_b||^2 of a Conv2d call, from the L x L Gram matrices of the unfolded input and of
// the output gradient.
torch::Tensor ConvGhostNormSquared(const nn::Conv2dImpl& conv, const torch::Tensor& a,
                                   const torch::Tensor& g) {
  const ConvGeometry geo = GeometryOf(conv);
  const int64_t b = a.size(0);
  const torch::Tensor unfolded =  // (B, Cin kh kw, L)
      at::im2col(a.contiguous(), geo.kernel, geo.dilation, geo.padding, geo.stride);
  const torch::Tensor a_t = unfolded.transpose(1, 2);             // (B, L, Cin kh kw)
  const torch::Tensor g_t = g.reshape({b, g.size(1), -1}).transpose(1, 2);  // (B, L, Cout)
  return (BatchedGram(a_t) * BatchedGram(g_t)).sum({1, 2});
}

// sum_b c_b dW_b of a Linear call: (out, in) = (c G)^T A, one product.
torch::Tensor LinearClippedWeightSum(const torch::Tensor& a, const torch::Tensor& g,
                                     const torch::Tensor& c) {
  const torch::Tensor a2 = a.reshape({-1, a.size(-1)});
  const torch::Tensor g2 = (g * PerSample(c, g.dim())).reshape({-1, g.size(-1)});
  return OneDnnMatMul(g2, a2, /*transpose_a=*/true, /*transpose_b=*/false);
}

// sum_b c_b dW_b of a Conv2d call: the weight gradient of the convolution for the output
// gradient c G, which is what a normal backward computes (oneDNN for float32).
torch::Tensor ConvClippedWeightSum(const nn::Conv2dImpl& conv, const torch::Tensor& a,
                                   const torch::Tensor& g, const torch::Tensor& c) {
  const ConvGeometry geo = GeometryOf(conv);
  const auto grads = at::convolution_backward(
      g * PerSample(c, g.dim()), a, conv.weight.detach(), c10::nullopt, geo.stride, geo.padding,
      geo.dilation, /*transposed=*/false, /*output_padding=*/{0, 0}, /*groups=*/1,
      {false, true, false});
  return std::get<1>(grads);
}

void CheckClippingNorm(double clipping_norm) {
  if (!std::isfinite(clipping_norm) || clipping_norm <= 0) {
    throw ConfigError("clipping_norm: " + std::to_string(clipping_norm) +
                      ", expected a finite value > 0");
  }
}

// Throws ConfigError unless `module` (named `name` in the model) is supported.
void CheckLayerSupport(const nn::Module& module, const std::string& name) {
  if (module.named_parameters(/*recurse=*/false).is_empty()) return;
  const std::string where = "DP-SGD: layer " + ShownName(name) + " (" + module.name() + ")";
  if (const auto* conv = module.as<nn::Conv2d>()) {
    const auto& options = conv->options;
    if (options.groups() != 1) {
      throw ConfigError(where + " has groups = " + std::to_string(options.groups()) +
                        "; per-sample gradients support Conv2d with groups = 1 only (" +
                        kSupported + ")");
    }
    if (!c10::get_if<torch::enumtype::kZeros>(&options.padding_mode())) {
      throw ConfigError(where + " pads with " +
                        torch::enumtype::get_enum_name(options.padding_mode()) +
                        "; per-sample gradients support zero padding only (" + kSupported + ")");
    }
    if (c10::get_if<torch::enumtype::kSame>(&options.padding())) {
      throw ConfigError(where + " has padding \"same\"; give the padding as numbers instead (" +
                        kSupported + ")");
    }
    return;
  }
  if (module.as<nn::Linear>() != nullptr || module.as<nn::GroupNorm>() != nullptr) return;
  const std::string why =
      module.name().find("BatchNorm") != std::string::npos
          ? "BatchNorm normalises each sample with statistics of the whole batch, so a "
            "sample's gradient depends on the other samples and per-sample clipping bounds "
            "nothing; use GroupNorm instead"
          : "it has parameters and no per-sample gradient rule";
  throw ConfigError(where + " is not supported by DP-SGD: " + why + " (" + kSupported + ")");
}

}  // namespace

void CheckDpSgdSupport(torch::nn::Module& model) {
  if (const auto* scripted = dynamic_cast<const ScriptedClassifier*>(&model)) {
    throw ConfigError("DP-SGD does not support TorchScript models (model \"" +
                      std::string(kTorchScriptModelName) + "\", file '" + scripted->path() +
                      "'): per-sample gradients are computed from the activations of the "
                      "model's layers, which a script's forward does not expose (the layer "
                      "tape); train it without DP, or use a zoo model (\"cnn\", \"resnet18\") "
                      "with DP-SGD");
  }
  // Without include_self: a model that is not held by a shared_ptr works too.
  CheckLayerSupport(model, "");
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    CheckLayerSupport(*item.value(), item.key());
  }
}

std::vector<torch::Tensor> PerSampleGradients(Classifier& model, const torch::Tensor& images,
                                              const torch::Tensor& labels) {
  TapedPass pass = RunTapedPass(model, images, labels);
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> result(pass.params.size());
  for (const LayerCalls& layer : pass.layers) {
    const auto [weight, bias] = LayerPerSample(layer);
    const int64_t b = images.size(0);
    const auto place = [&](int64_t index, const torch::Tensor& per_sample) {
      if (index < 0) return;
      std::vector<int64_t> shape = pass.params[static_cast<size_t>(index)].sizes().vec();
      shape.insert(shape.begin(), b);
      result[static_cast<size_t>(index)] = per_sample.reshape(shape).contiguous();
    };
    place(layer.weight, weight);
    place(layer.bias, bias);
  }
  return result;
}

torch::Tensor ClipFactors(const torch::Tensor& norms, double clipping_norm) {
  CheckClippingNorm(clipping_norm);
  return (clipping_norm / (norms + 1e-6)).clamp_max(1.0);
}

ClippedGradientSum ComputeClippedGradientSum(Classifier& model, const torch::Tensor& images,
                                             const torch::Tensor& labels, double clipping_norm,
                                             NormMethod method) {
  CheckClippingNorm(clipping_norm);
  ClippedGradientSum result;
  if (images.defined() && images.dim() == 4 && images.size(0) == 0) {
    std::vector<torch::Tensor> params = model.parameters();
    CheckDpSgdSupport(model);
    CheckBatch(params, images, labels, /*allow_empty=*/true);
    for (const torch::Tensor& p : params) result.sum.push_back(torch::zeros_like(p).detach());
    result.norms = torch::zeros({0}, params.front().options().requires_grad(false));
    result.clip_factors = result.norms.clone();
    result.losses = result.norms.clone();
    return result;
  }

  TapedPass pass = RunTapedPass(model, images, labels);
  torch::NoGradGuard no_grad;
  const int64_t b = images.size(0);

  // Per layer: either the per-sample tensors, or (ghost) the single call's A and G.
  struct Plan {
    const LayerCalls* layer = nullptr;
    bool ghost = false;
    torch::Tensor weight, bias;  // materialised per-sample gradients; bias always
  };
  std::vector<Plan> plans;
  plans.reserve(pass.layers.size());
  torch::Tensor norms_squared = torch::zeros({b}, pass.params.front().options());
  for (const LayerCalls& layer : pass.layers) {
    Plan plan;
    plan.layer = &layer;
    const bool single = layer.inputs.size() == 1;
    const torch::Tensor& a = layer.inputs.front();
    const torch::Tensor& g = layer.grad_outputs.front();
    if (single && layer.weight >= 0 && method != NormMethod::kMaterialize &&
        layer.kind == LayerKind::kLinear &&
        (method == NormMethod::kGhost || LinearGhostIsCheaper(a, g))) {
      plan.ghost = true;
      norms_squared += LinearGhostNormSquared(a, g);
      if (layer.bias >= 0) plan.bias = LinearBiasPerSample(g);
    } else if (single && layer.weight >= 0 && method != NormMethod::kMaterialize &&
               layer.kind == LayerKind::kConv2d) {
      const auto& conv = dynamic_cast<const nn::Conv2dImpl&>(*layer.module);
      if (method == NormMethod::kGhost || ConvGhostIsCheaper(a, g, conv)) {
        plan.ghost = true;
        norms_squared += ConvGhostNormSquared(conv, a, g);
        if (layer.bias >= 0) plan.bias = g.sum({2, 3});
      }
    }
    if (!plan.ghost) {
      std::tie(plan.weight, plan.bias) = LayerPerSample(layer);
      if (plan.weight.defined()) norms_squared += RowNormsSquared(plan.weight);
    }
    if (plan.bias.defined()) norms_squared += RowNormsSquared(plan.bias);
    plans.push_back(std::move(plan));
  }

  result.norms = norms_squared.sqrt();
  result.clip_factors = ClipFactors(result.norms, clipping_norm);
  const torch::Tensor& c = result.clip_factors;
  result.sum.resize(pass.params.size());
  for (const Plan& plan : plans) {
    const LayerCalls& layer = *plan.layer;
    if (layer.weight >= 0) {
      torch::Tensor sum;
      if (!plan.ghost) {
        sum = WeightedSum(plan.weight, c);
      } else if (layer.kind == LayerKind::kLinear) {
        sum = LinearClippedWeightSum(layer.inputs.front(), layer.grad_outputs.front(), c);
      } else {
        sum = ConvClippedWeightSum(dynamic_cast<const nn::Conv2dImpl&>(*layer.module),
                                   layer.inputs.front(), layer.grad_outputs.front(), c);
      }
      const torch::Tensor& param = pass.params[static_cast<size_t>(layer.weight)];
      result.sum[static_cast<size_t>(layer.weight)] = sum.reshape(param.sizes()).contiguous();
    }
    if (layer.bias >= 0) {
      const torch::Tensor& param = pass.params[static_cast<size_t>(layer.bias)];
      result.sum[static_cast<size_t>(layer.bias)] =
          WeightedSum(plan.bias, c).reshape(param.sizes()).contiguous();
    }
  }
  result.losses = pass.losses;
  return result;
}

}  // namespace fedmed
