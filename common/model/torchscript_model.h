// Bring your own model: a network defined in Python and saved as TorchScript, trained, averaged,
// evaluated and checkpointed by fedmed like a zoo network (common/model/zoo.h).
//
// In Python (any torch >= 1.6; the format is read by LibTorch 1.13):
//
//   model = MyNet()                              # an nn.Module: (B, C, S, S) -> (B, K) logits
//   torch.jit.script(model).save("mynet.pt")     # or torch.jit.trace(model, example_images)
//
// and in the model spec (model_spec.h): name = "torchscript", torchscript_path = "mynet.pt",
// in_channels = C, num_classes = K, image_size = S. Every party loads its own copy of the file;
// the parties compare the architecture they built (common/model/architecture.h) before the first
// round. See docs/MODELS.md.
//
// What a TorchScript model must be, and why (each refused with a ConfigError naming the file):
// - every parameter float32 (convert with model.float() before saving): fedmed's model state is
//   float32 (model_state.h);
// - no buffers (BatchNorm's running_mean/running_var/num_batches_tracked, or register_buffer):
//   a buffer is state that is not trained by gradients, and fedmed's model state, update and
//   aggregation carry parameters only, so buffers would silently stay at the file's values at
//   every party. Use GroupNorm or LayerNorm instead of BatchNorm, as the zoo does; constant
//   tensors can be plain (non-buffer) attributes;
// - at least one parameter, and none shared between two names (tied weights), which the
//   optimizer would step twice;
// - a forward(images) that maps a (2, C, S, S) float32 probe to (2, K) float32 logits.
//
// Differences from the zoo networks:
// - the parameters come from the file: MakeModel's seed is ignored (the file is the
//   initialisation, the same at every party);
// - random operations of the script (dropout) draw from LibTorch's global generator, not from
//   the generator of Classifier::set_dropout_generator: training a scripted network with
//   dropout is not reproducible from TrainSettings::seed alone (a network without random
//   operations is);
// - DP-SGD refuses them (CheckDpSgdSupport, common/privacy/per_sample_gradients.h): a script's
//   layers cannot be called through Taped() (layer_tape.h), so per-sample gradients cannot be
//   computed from their activations.
//
// Include this header only from .cc files that need LibTorch.
#ifndef FEDMED_COMMON_MODEL_TORCHSCRIPT_MODEL_H_
#define FEDMED_COMMON_MODEL_TORCHSCRIPT_MODEL_H_

#include <torch/script.h>
#include <torch/torch.h>

#include <memory>
#include <string>

#include "common/model/model_spec.h"
#include "common/model/model_state.h"
#include "common/model/zoo.h"

namespace fedmed {

// A Classifier whose forward is a TorchScript module's. The script's parameters are exposed as
// this module's parameters under the same dotted names, in the same order, as the script's
// named_parameters() (e.g. "features.0.weight": nested holder submodules "features" and "0"
// carry the parameter "weight"), and they are the same tensors (same storage, same autograd
// identity): ExportState / ImportState (torch_state.h), optimizers and TrainLocal see and change
// exactly what the script computes with. train() / eval() switch the script's modules too, so
// its dropout follows the mode.
class ScriptedClassifier : public Classifier {
 public:
  // Wraps `script` (a module on the CPU, e.g. from LoadTorchScriptFile), whose file `path` is
  // named in error messages. Marks every parameter as requiring gradients (which layers train is
  // decided by TrainSettings::frozen_layers, not by requires_grad flags saved in the file). Does
  // not run forward (LoadScriptedClassifier does). The classifier is in training mode.
  // Throws ConfigError naming `path` (and the tensor) when the script has no parameters, a
  // buffer, a parameter that is not float32, a parameter that is the same tensor as another
  // (tied), or a parameter layout that named_parameters() lists in an order other than module
  // by module (own parameters first, then each submodule's; torch.jit.script and
  // torch.jit.trace always do).
  ScriptedClassifier(torch::jit::Module script, std::string path);

  // images: (B, C, S, S) float32 -> whatever the script's forward returns, which
  // LoadScriptedClassifier checked to be (B, num_classes) float32 logits on a probe. Throws
  // c10::Error (LibTorch's) if the script fails, or if it returns something other than a tensor.
  torch::Tensor forward(torch::Tensor images) override;

  // Sets training mode (on) or eval mode (off) for this module and every module of the script.
  void train(bool on = true) override;

  // The file the script was loaded from.
  const std::string& path() const { return path_; }
  // The wrapped script (its parameters are this module's).
  torch::jit::Module& script() { return script_; }

 private:
  torch::jit::Module script_;
  std::string path_;
};

// Loads spec.torchscript_path (torch::jit::load, on the CPU), wraps it in a ScriptedClassifier
// and checks, in eval mode without gradients, that its forward maps the probe
// torch::linspace(-1, 1, 2 * C * S * S).reshape({2, C, S, S}) (float32, C = spec.in_channels,
// S = spec.image_size) to a (2, spec.num_classes) float32 tensor. Returns it in training mode.
// Thread-safe (every call loads its own copy of the file).
// Throws ConfigError as ValidateModelSpec for a bad spec; ConfigError naming the file when it
// cannot be opened, is not a TorchScript archive (e.g. a torch.save state dict, or a file cut
// short), when the ScriptedClassifier constructor refuses it, when forward throws on the probe
// (with the first line of the script's error), or returns something other than a tensor of
// that shape and dtype (naming the probe's and the output's shapes and dtypes).
std::shared_ptr<ScriptedClassifier> LoadScriptedClassifier(const ModelSpec& spec);

// torch::jit::load of the file at `path` on the CPU, after CheckTorchArchive (torch_archive.h)
// and through a reader bounded to the file's bytes, so a forged archive cannot make LibTorch
// allocate far more than the file's size. Throws ConfigError naming `what` (e.g.
// "model.torchscript_path") and `path` when the file cannot be read, declares more than it holds,
// or is not a TorchScript archive.
torch::jit::Module LoadTorchScriptFile(const std::string& path, const std::string& what);

// The parameters of `script` (loaded from `path`, named in errors) as a ModelState, in the order
// and under the names ExportState(ScriptedClassifier(script, path)) gives them. Marks the
// parameters as requiring gradients. Throws ConfigError as the ScriptedClassifier constructor.
ModelState ScriptParameterState(const torch::jit::Module& script, const std::string& path);

}  // namespace fedmed

#endif  // FEDMED_COMMON_MODEL_TORCHSCRIPT_MODEL_H_
