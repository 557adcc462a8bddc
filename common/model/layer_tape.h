// A per-thread recorder of the layer calls of one forward pass: which layer was called, on what
// input, giving what output. DP-SGD (common/privacy/per_sample_gradients.h) needs exactly that to
// compute per-sample gradients from a layer's activations and the gradients of its outputs, as
// Opacus's grad samplers do with forward and backward hooks (LibTorch's C++ modules have no
// hooks, so the zoo's forward code calls its parametrised layers through Taped() instead).
//
// When no tape is active on the calling thread, Taped() costs one thread-local pointer read on
// top of the layer call: non-private training does not pay for the tape.
//
// Include this header only from .cc files that need LibTorch.
#ifndef FEDMED_COMMON_MODEL_LAYER_TAPE_H_
#define FEDMED_COMMON_MODEL_LAYER_TAPE_H_

#include <torch/torch.h>

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fedmed {

// The layer calls of the forward passes run on one thread while the tape is active (see Scope).
// Not thread-safe itself: a tape is written by the one thread it is active on.
class LayerTape {
 public:
  // One call of a parametrised layer.
  struct Record {
    const torch::nn::Module* module = nullptr;  // the layer (the Impl, e.g. Conv2dImpl)
    // Its qualified name in the root module given to the constructor, the prefix of its
    // parameters' names in root.named_parameters() (e.g. "layer1.0.conv1" for
    // "layer1.0.conv1.weight"); "" if the tape has no root or the layer is not inside it.
    std::string name;
    torch::Tensor input;   // what the layer was called on (its activations), e.g. (B, C, H, W)
    torch::Tensor output;  // what the layer returned, still attached to the autograd graph
  };

  // A tape without a root: records carry no names.
  LayerTape() = default;
  // A tape that names the layers of `root` as root.named_modules() does. `root` must outlive
  // the tape's recording (only the module addresses are kept).
  explicit LayerTape(const torch::nn::Module& root);

  LayerTape(const LayerTape&) = delete;
  LayerTape& operator=(const LayerTape&) = delete;

  // Makes `tape` the active tape of the calling thread for the Scope's lifetime, then restores
  // the previously active one (scopes nest). Create and destroy it on the same thread.
  class Scope {
   public:
    explicit Scope(LayerTape& tape);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    LayerTape* previous_;
  };

  // The tape active on the calling thread, or nullptr.
  static LayerTape* Active();

  // Appends a record of `module` called on `input`, giving `output`.
  void Add(const torch::nn::Module& module, const torch::Tensor& input,
           const torch::Tensor& output);

  // The records in call order (a layer called twice appears twice).
  const std::vector<Record>& records() const { return records_; }
  // Forgets the records (the module names are kept).
  void Clear() { records_.clear(); }

 private:
  std::unordered_map<const torch::nn::Module*, std::string> names_;
  std::vector<Record> records_;
};

// Calls `call(input)` (which must run `layer` on `input`) and, when a tape is active on this
// thread, records (layer, input, result) on it. Returns call's result. Use it for every layer
// with parameters of a model that DP-SGD trains, including layers that the model computes with
// another kernel than the module's own forward (e.g. oneDNN's inner product for a Linear).
template <typename Fn>
torch::Tensor Taped(const torch::nn::Module& layer, const torch::Tensor& input, Fn&& call) {
  torch::Tensor output = std::forward<Fn>(call)(input);
  if (LayerTape* tape = LayerTape::Active()) tape->Add(layer, input, output);
  return output;
}

// Taped() for a module holder called as itself, e.g. Taped(conv1_, x) for conv1_(x) where
// conv1_ is a torch::nn::Conv2d.
template <typename Holder>
torch::Tensor Taped(Holder& layer, const torch::Tensor& input) {
  return Taped(*layer, input, [&layer](const torch::Tensor& x) { return layer->forward(x); });
}

}  // namespace fedmed

#endif  // FEDMED_COMMON_MODEL_LAYER_TAPE_H_
