#include "tools/explain/layer_capture.h"

#include <algorithm>
#include <sstream>

#include "common/model/torchscript_model.h"
#include "common/util/error.h"

namespace fedmed::explain {

namespace nn = torch::nn;

namespace {


// Records the names the replay calls and keeps the output of the one asked for.
class Capture {
 public:
  explicit Capture(std::string layer) : layer_(std::move(layer)) {}
  // Returns `output` after noting that module `name` gave it.
  torch::Tensor operator()(const std::string& name, torch::Tensor output) {
    names_.push_back(name);
    if (name == layer_) captured_ = output;
    return output;
  }
  const std::vector<std::string>& names() const { return names_; }
  const torch::Tensor& captured() const { return captured_; }

 private:
  std::string layer_;
  std::vector<std::string> names_;
  torch::Tensor captured_;
};

using ModuleMap = torch::OrderedDict<std::string, std::shared_ptr<nn::Module>>;

template <typename Impl>
Impl& Get(const ModuleMap& modules, const std::string& name) {
  const std::shared_ptr<nn::Module>* found = modules.find(name);
  Impl* impl = found == nullptr ? nullptr : (*found)->as<Impl>();
  if (impl == nullptr) {
    throw Error("fedmed-explain: the zoo model has no module \"" + name +
                "\" of the expected type; tools/explain/layer_capture.cc no longer matches "
                "common/model/zoo.cc");
  }
  return *impl;
}

torch::Tensor ReplayCnn(const ModuleMap& m, torch::Tensor x, Capture& t) {
  x = t("conv1", Get<nn::Conv2dImpl>(m, "conv1").forward(x));
  x = torch::relu(t("gn1", Get<nn::GroupNormImpl>(m, "gn1").forward(x)));
  x = t("conv2", Get<nn::Conv2dImpl>(m, "conv2").forward(x));
  x = torch::relu(t("gn2", Get<nn::GroupNormImpl>(m, "gn2").forward(x)));
  x = torch::max_pool2d(x, 2).flatten(1);
  x = torch::relu(t("fc1", Get<nn::LinearImpl>(m, "fc1").forward(x)));
  return t("fc2", Get<nn::LinearImpl>(m, "fc2").forward(x));
}

torch::Tensor ReplayResNet18(const ModuleMap& m, torch::Tensor x, Capture& t) {
  x = t("conv1", Get<nn::Conv2dImpl>(m, "conv1").forward(x));
  x = torch::relu(t("gn1", Get<nn::GroupNormImpl>(m, "gn1").forward(x)));
  for (int stage = 1; stage <= 4; ++stage) {
    const std::string layer = "layer" + std::to_string(stage);
    for (int block = 0; block < 2; ++block) {
      const std::string p = layer + "." + std::to_string(block);
      const torch::Tensor in = x;
      torch::Tensor y = t(p + ".conv1", Get<nn::Conv2dImpl>(m, p + ".conv1").forward(in));
      y = torch::relu(t(p + ".gn1", Get<nn::GroupNormImpl>(m, p + ".gn1").forward(y)));
      y = t(p + ".conv2", Get<nn::Conv2dImpl>(m, p + ".conv2").forward(y));
      y = t(p + ".gn2", Get<nn::GroupNormImpl>(m, p + ".gn2").forward(y));
      torch::Tensor shortcut = in;
      if (m.contains(p + ".downsample")) {
        const std::string d = p + ".downsample";
        shortcut = t(d + ".0", Get<nn::Conv2dImpl>(m, d + ".0").forward(in));
        shortcut = t(d, t(d + ".1", Get<nn::GroupNormImpl>(m, d + ".1").forward(shortcut)));
      }
      x = t(p, torch::relu(y + shortcut));
    }
    x = t(layer, x);
  }
  return t("fc", Get<nn::LinearImpl>(m, "fc").forward(
                     torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1)));
}

std::string TypeName(const torch::jit::Module& module) {
  return module.type()->name() ? module.type()->name()->qualifiedName() : "?";
}

// Whether `module` is a scripted torch.nn.<file>.<cls>. TorchScript mangles the type names of
// differently configured instances: "__torch__.torch.nn.modules.conv.___torch_mangle_3.Conv2d".
bool IsTorchNn(const torch::jit::Module& module, const std::string& file, const std::string& cls) {
  const std::string name = TypeName(module);
  const std::string prefix = "__torch__.torch.nn.modules." + file + ".";
  if (name == prefix + cls) return true;
  const std::string mangled = prefix + "___torch_mangle_";
  const size_t last_dot = name.rfind('.');
  return name.rfind(mangled, 0) == 0 && last_dot != std::string::npos &&
         last_dot >= mangled.size() && name.substr(last_dot + 1) == cls &&
         name.find('.', mangled.size()) == last_dot;
}

bool IsSequential(const torch::jit::Module& module) {
  return IsTorchNn(module, "container", "Sequential");
}

[[noreturn]] void RefuseScript(const ModelSpec& spec, const torch::jit::Module& script) {
  throw ConfigError(
      "fedmed-explain: TorchScript model " + spec.torchscript_path + " (" + TypeName(script) +
      "): Grad-CAM needs the output of one of its layers, but LibTorch cannot hook the "
      "submodules of a TorchScript module, and this script's forward is not an nn.Sequential "
      "whose children can be called one by one. Save the network as an nn.Sequential of its "
      "layers (e.g. torch.jit.script(nn.Sequential(conv, nn.ReLU(), ..., nn.Flatten(), fc))), "
      "or explain it in Python with forward hooks");
}

torch::Tensor ReplaySequential(const torch::jit::Module& seq, const std::string& prefix,
                               torch::Tensor x, Capture& t) {
  for (const auto& child : seq.named_children()) {
    const std::string name = prefix.empty() ? child.name : prefix + "." + child.name;
    if (IsSequential(child.value)) {
      x = t(name, ReplaySequential(child.value, name, x, t));
    } else {
      torch::jit::Module module = child.value;
      x = t(name, module.forward({x}).toTensor());
    }
  }
  return x;
}

ScriptedClassifier* AsScript(Classifier& model, const ModelSpec& spec) {
  auto* scripted = dynamic_cast<ScriptedClassifier*>(&model);
  if (scripted != nullptr && !IsSequential(scripted->script())) RefuseScript(spec, scripted->script());
  return scripted;
}

// The replay on `images`, capturing `layer`.
torch::Tensor Replay(Classifier& model, const ModelSpec& spec, const torch::Tensor& images,
                     Capture& capture) {
  if (ScriptedClassifier* scripted = AsScript(model, spec)) {
    return ReplaySequential(scripted->script(), "", images, capture);
  }
  const ModuleMap modules = model.named_modules("", /*include_self=*/false);
  if (spec.name == "cnn") return ReplayCnn(modules, images, capture);
  if (spec.name == "resnet18") return ReplayResNet18(modules, images, capture);
  throw ConfigError("fedmed-explain: no layer replay for model \"" + spec.name + "\"");
}

std::string Joined(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

}  // namespace

std::string DefaultLayer(Classifier& model, const ModelSpec& spec) {
  std::string last;
  if (ScriptedClassifier* scripted = AsScript(model, spec)) {
    for (const auto& item : scripted->script().named_modules()) {
      if (IsTorchNn(item.value, "conv", "Conv2d")) last = item.name;
    }
    if (last.empty()) {
      throw ConfigError("fedmed-explain: TorchScript model " + spec.torchscript_path +
                        " has no torch.nn.Conv2d submodule; name a layer with --layer");
    }
    return last;
  }
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    if (item.value()->as<nn::Conv2d>() != nullptr) last = item.key();
  }
  if (last.empty()) throw ConfigError("fedmed-explain: the model has no Conv2d; use --layer");
  return last;
}

std::vector<std::string> CapturableLayers(Classifier& model, const ModelSpec& spec) {
  torch::NoGradGuard no_grad;
  Capture capture("");
  const torch::Tensor probe =
      torch::zeros({1, spec.in_channels, spec.image_size, spec.image_size});
  Replay(model, spec, probe, capture);
  return capture.names();
}

torch::Tensor ForwardCapturing(Classifier& model, const ModelSpec& spec,
                               const torch::Tensor& images, const std::string& layer,
                               torch::Tensor* activation) {
  Capture capture(layer);
  torch::Tensor logits = Replay(model, spec, images, capture);
  if (!capture.captured().defined()) {
    throw ConfigError("fedmed-explain: --layer \"" + layer + "\": the model (" + spec.name +
                      ") has no such module on its forward path; layers: " +
                      Joined(capture.names()));
  }
  if (capture.captured().dim() != 4) {
    std::ostringstream shape;
    shape << capture.captured().sizes();
    throw ConfigError("fedmed-explain: --layer \"" + layer + "\": its output has shape " +
                      shape.str() +
                      "; Grad-CAM needs a spatial feature map (B, C, h, w), e.g. a Conv2d's "
                      "output");
  }
  {
    torch::NoGradGuard no_grad;
    const torch::Tensor own = model.forward(images);
    const double scale = 1.0 + own.abs().max().item<double>();
    const double diff = (own - logits.detach()).abs().max().item<double>();
    if (!(diff <= 1e-4 * scale)) {
      throw Error("fedmed-explain: the replayed forward of model \"" + spec.name +
                  "\" differs from the model's own by " + std::to_string(diff) +
                  " in the logits; tools/explain/layer_capture.cc no longer matches the model");
    }
  }
  *activation = capture.captured();
  return logits;
}

}  // namespace fedmed::explain
