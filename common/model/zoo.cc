#include "common/model/zoo.h"

#include <algorithm>
#include <cmath>

#include "common/model/layer_tape.h"
#include "common/model/onednn_ops.h"
#include "common/model/torchscript_model.h"
#include "common/util/error.h"

namespace fedmed {

namespace nn = torch::nn;

namespace {

nn::Conv2d Conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding,
                bool bias) {
  return nn::Conv2d(
      nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(bias));
}

nn::GroupNorm GroupNorm(int64_t groups, int64_t channels) {
  return nn::GroupNorm(nn::GroupNormOptions(std::min(groups, channels), channels));
}

// See zoo.h for the architecture and its PyTorch equivalent. Every layer with parameters is
// called through Taped() (layer_tape.h), so that DP-SGD sees its input and output.
class Cnn : public Classifier {
 public:
  explicit Cnn(const ModelSpec& spec) {
    const int64_t pooled = (spec.image_size - 4) / 2;  // two unpadded 3x3 convs, 2x2 max-pool
    conv1_ = register_module("conv1", Conv(spec.in_channels, 32, 3, 1, 0, true));
    gn1_ = register_module("gn1", GroupNorm(8, 32));
    conv2_ = register_module("conv2", Conv(32, 64, 3, 1, 0, true));
    gn2_ = register_module("gn2", GroupNorm(8, 64));
    fc1_ = register_module("fc1", nn::Linear(64 * pooled * pooled, 128));
    fc2_ = register_module("fc2", nn::Linear(128, spec.num_classes));
  }

  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(Taped(gn1_, Taped(conv1_, x)));
    x = torch::relu(Taped(gn2_, Taped(conv2_, x)));
    // The max-pool and fc1 (97% of the parameters) on oneDNN directly: common/model/onednn_ops.h.
    x = Dropout(OneDnnMaxPool2x2(x), 0.25).flatten(1);
    x = Taped(*fc1_, x, [this](const torch::Tensor& in) {
      return OneDnnLinear(in, fc1_->weight, fc1_->bias);
    });
    x = Dropout(torch::relu(x), 0.5);
    return Taped(fc2_, x);
  }

 private:
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  nn::GroupNorm gn1_{nullptr}, gn2_{nullptr};
  nn::Linear fc1_{nullptr}, fc2_{nullptr};
};

// ResNet BasicBlock: two 3x3 convolutions and a shortcut (a 1x1 convolution where the shape
// changes).
class BasicBlock : public nn::Module {
 public:
  BasicBlock(int64_t in, int64_t out, int64_t stride) {
    conv1_ = register_module("conv1", Conv(in, out, 3, stride, 1, false));
    gn1_ = register_module("gn1", GroupNorm(32, out));
    conv2_ = register_module("conv2", Conv(out, out, 3, 1, 1, false));
    gn2_ = register_module("gn2", GroupNorm(32, out));
    if (stride != 1 || in != out) {
      // Registered as a Sequential for PyTorch's names ("downsample.0.weight"), called element
      // by element so that the tape sees both layers.
      downsample_conv_ = Conv(in, out, 1, stride, 0, false);
      downsample_gn_ = GroupNorm(32, out);
      register_module("downsample", nn::Sequential(downsample_conv_, downsample_gn_));
    }
  }

  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor y = torch::relu(Taped(gn1_, Taped(conv1_, x)));
    y = Taped(gn2_, Taped(conv2_, y));
    const torch::Tensor shortcut =
        downsample_conv_ ? Taped(downsample_gn_, Taped(downsample_conv_, x)) : x;
    return torch::relu(y + shortcut);
  }

 private:
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  nn::GroupNorm gn1_{nullptr}, gn2_{nullptr};
  nn::Conv2d downsample_conv_{nullptr};  // both null when the shortcut is the identity
  nn::GroupNorm downsample_gn_{nullptr};
};

class ResNet18 : public Classifier {
 public:
  explicit ResNet18(const ModelSpec& spec) {
    conv1_ = register_module("conv1", Conv(spec.in_channels, 64, 3, 1, 1, false));
    gn1_ = register_module("gn1", GroupNorm(32, 64));
    int64_t in = 64;
    const int64_t widths[4] = {64, 128, 256, 512};
    for (int i = 0; i < 4; ++i) {
      nn::Sequential layer(std::make_shared<BasicBlock>(in, widths[i], i == 0 ? 1 : 2),
                           std::make_shared<BasicBlock>(widths[i], widths[i], 1));
      layers_[i] = register_module("layer" + std::to_string(i + 1), layer);
      in = widths[i];
    }
    fc_ = register_module("fc", nn::Linear(512, spec.num_classes));
  }

  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(Taped(gn1_, Taped(conv1_, x)));
    for (nn::Sequential& layer : layers_) x = layer->forward(x);
    return Taped(fc_, torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1));
  }

 private:
  nn::Conv2d conv1_{nullptr};
  nn::GroupNorm gn1_{nullptr};
  nn::Sequential layers_[4] = {nullptr, nullptr, nullptr, nullptr};
  nn::Linear fc_{nullptr};
};

// PyTorch's default initialisation of Conv2d and Linear (kaiming_uniform_ with a = sqrt(5) for
// the weight, which comes to the same bound as the bias's): uniform in +-1/sqrt(fan_in).
void InitUniformFanIn(torch::Tensor& weight, torch::Tensor& bias, at::Generator& generator) {
  const int64_t fan_in = weight.numel() / weight.size(0);
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  weight.uniform_(-bound, bound, generator);
  if (bias.defined()) bias.uniform_(-bound, bound, generator);
}

std::string JoinedNames() {
  std::string s;
  for (const std::string& name : ModelNames()) s += (s.empty() ? "\"" : ", \"") + name + "\"";
  return s;
}

}  // namespace

std::vector<std::string> ModelNames() { return {"cnn", "resnet18"}; }

void ValidateModelSpec(const ModelSpec& spec, const std::string& what) {
  const std::vector<std::string> names = ModelNames();
  const bool scripted = spec.name == kTorchScriptModelName;
  if (!scripted && std::find(names.begin(), names.end(), spec.name) == names.end()) {
    throw ConfigError(what + ".name: unknown model \"" + spec.name + "\", expected one of " +
                      JoinedNames() + " or \"" + kTorchScriptModelName +
                      "\" (with torchscript_path)");
  }
  if (scripted && spec.torchscript_path.empty()) {
    throw ConfigError(what + ".torchscript_path: missing; model \"" + kTorchScriptModelName +
                      "\" needs the path of a TorchScript file (saved with torch.jit.save)");
  }
  if (!scripted && !spec.torchscript_path.empty()) {
    throw ConfigError(what + ".torchscript_path: set to \"" + spec.torchscript_path +
                      "\" but the model is \"" + spec.name + "\"; set name = \"" +
                      kTorchScriptModelName + "\" to train that file, or remove torchscript_path");
  }
  if (spec.in_channels != 1 && spec.in_channels != 3) {
    throw ConfigError(what + ".in_channels: " + std::to_string(spec.in_channels) +
                      ", expected 1 (grayscale) or 3 (RGB)");
  }
  if (spec.num_classes < 2) {
    throw ConfigError(what + ".num_classes: " + std::to_string(spec.num_classes) +
                      ", expected at least 2");
  }
  if (spec.image_size < 8 || spec.image_size > 256) {
    throw ConfigError(what + ".image_size: " + std::to_string(spec.image_size) +
                      ", expected 8 to 256 pixels");
  }
}

torch::Tensor Classifier::Dropout(const torch::Tensor& x, double p) {
  if (!is_training()) return x;
  torch::Tensor keep = torch::empty_like(x).bernoulli_(1.0 - p, dropout_generator_);
  return x * keep.div_(1.0 - p);
}

std::shared_ptr<Classifier> MakeModel(const ModelSpec& spec, uint64_t seed) {
  ValidateModelSpec(spec);
  if (spec.name == kTorchScriptModelName) return LoadScriptedClassifier(spec);
  std::shared_ptr<Classifier> model;
  if (spec.name == "cnn") {
    model = std::make_shared<Cnn>(spec);
  } else {
    model = std::make_shared<ResNet18>(spec);
  }
  // LibTorch's constructors initialised the parameters from the global generator; draw them
  // again, in modules() order, from a generator of our own. GroupNorm keeps its ones and zeros.
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const bool kaiming_normal_convs = spec.name == "resnet18";
  torch::NoGradGuard no_grad;
  for (const auto& module : model->modules(/*include_self=*/false)) {
    if (auto* conv = module->as<nn::Conv2d>()) {
      if (kaiming_normal_convs) {
        const int64_t fan_out = conv->weight.numel() / conv->weight.size(1);
        conv->weight.normal_(0.0, std::sqrt(2.0 / static_cast<double>(fan_out)), generator);
      } else {
        InitUniformFanIn(conv->weight, conv->bias, generator);
      }
    } else if (auto* linear = module->as<nn::Linear>()) {
      InitUniformFanIn(linear->weight, linear->bias, generator);
    }
  }
  return model;
}

}  // namespace fedmed
