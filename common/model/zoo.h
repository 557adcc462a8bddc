// The model zoo: image classifiers selected by name (ModelSpec::name), built with LibTorch.
//
// Include this header only from .cc files that need LibTorch; code that merely names a model uses
// common/model/model_spec.h.
//
// Every network normalises with GroupNorm (Wu & He, ECCV 2018), never BatchNorm: BatchNorm mixes
// the samples of a batch, which breaks the per-sample gradients of DP-SGD, and its running
// statistics are buffers that federated averaging handles badly. So the networks have parameters
// and no buffers.
//
// Initialisation is PyTorch's default: every Conv2d and Linear weight and bias uniform in
// +-1/sqrt(fan_in), GroupNorm weight 1 and bias 0; except that ResNet-18's convolutions are drawn
// as torchvision draws them, normal with std sqrt(2 / fan_out) (He et al., ICCV 2015).
//
// Parameter names are those of the equivalent PyTorch modules below; they are the keys of the
// checkpoints (common/model/checkpoint.h), so that `model.load_state_dict(torch.load(path))` works
// in Python.
//
// "cnn": the MNIST CNN of the PyTorch examples that Flower's and Opacus's tutorials use, with a
// GroupNorm after each convolution. 8 groups in both: 4 channels per group after conv1 and 8
// after conv2, between LayerNorm (1 group) and InstanceNorm (1 channel per group), in the range
// where Wu & He found GroupNorm insensitive to the group count. For in_channels C, num_classes
// K and image_size S (1,199,042 parameters for C = 1, K = 2, S = 28):
//
//   class Cnn(nn.Module):
//       def __init__(self, C=1, K=2, S=28):
//           super().__init__()
//           self.conv1 = nn.Conv2d(C, 32, 3)
//           self.gn1 = nn.GroupNorm(8, 32)
//           self.conv2 = nn.Conv2d(32, 64, 3)
//           self.gn2 = nn.GroupNorm(8, 64)
//           self.fc1 = nn.Linear(64 * ((S - 4) // 2) ** 2, 128)
//           self.fc2 = nn.Linear(128, K)
//       def forward(self, x):
//           x = F.relu(self.gn1(self.conv1(x)))
//           x = F.relu(self.gn2(self.conv2(x)))
//           x = F.dropout(F.max_pool2d(x, 2), 0.25, self.training).flatten(1)
//           x = F.dropout(F.relu(self.fc1(x)), 0.5, self.training)
//           return self.fc2(x)
//
// "resnet18": ResNet-18 (He et al., CVPR 2016) as MedMNIST v2 trains it at 28 px: a 3x3 stride-1
// first convolution and no max-pool, BasicBlocks [2, 2, 2, 2] of 64/128/256/512 channels, global
// average pooling, fc. GroupNorm with 32 groups (min(32, channels); every width here is >= 64)
// replaces BatchNorm; convolutions have no bias. It is torchvision's resnet18 with
// norm_layer=lambda c: nn.GroupNorm(32, c), conv1 = nn.Conv2d(C, 64, 3, 1, 1, bias=False) and
// maxpool = nn.Identity(), except that the norms are called gn1/gn2 instead of bn1/bn2:
//
//   class BasicBlock(nn.Module):
//       def __init__(self, cin, cout, stride):
//           super().__init__()
//           self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
//           self.gn1 = nn.GroupNorm(32, cout)
//           self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
//           self.gn2 = nn.GroupNorm(32, cout)
//           self.downsample = None
//           if stride != 1 or cin != cout:
//               self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
//                                               nn.GroupNorm(32, cout))
//       def forward(self, x):
//           y = self.gn2(self.conv2(F.relu(self.gn1(self.conv1(x)))))
//           return F.relu(y + (x if self.downsample is None else self.downsample(x)))
//   class ResNet18(nn.Module):
//       def __init__(self, C=1, K=2):
//           super().__init__()
//           self.conv1 = nn.Conv2d(C, 64, 3, 1, 1, bias=False)
//           self.gn1 = nn.GroupNorm(32, 64)
//           widths, cin = [64, 128, 256, 512], 64
//           for i, w in enumerate(widths):
//               stride = 1 if i == 0 else 2
//               setattr(self, f"layer{i + 1}",
//                       nn.Sequential(BasicBlock(cin, w, stride), BasicBlock(w, w, 1)))
//               cin = w
//           self.fc = nn.Linear(512, K)
//       def forward(self, x):
//           x = F.relu(self.gn1(self.conv1(x)))
//           x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
//           return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))
#ifndef FEDMED_COMMON_MODEL_ZOO_H_
#define FEDMED_COMMON_MODEL_ZOO_H_

#include <torch/torch.h>

#include <memory>

#include "common/model/model_spec.h"

namespace fedmed {

// An image classifier of the zoo.
class Classifier : public torch::nn::Module {
 public:
  // images: (B, in_channels, image_size, image_size) float32 -> logits (B, num_classes) float32.
  // (A model converted with to(torch::kFloat64) maps float64 images to float64 logits, slower;
  // gradient checks use that.) Every layer with parameters is called through Taped()
  // (common/model/layer_tape.h): when a LayerTape is active on the calling thread, the forward
  // records each layer's input and output on it, which is what DP-SGD's per-sample gradients
  // are computed from.
  virtual torch::Tensor forward(torch::Tensor images) = 0;

  // The random source of dropout in training mode. Until one is set, dropout draws from
  // LibTorch's global generator. Local training sets its own, seeded one, so that its result
  // depends on the seed alone even when several trainings run at once in one process.
  void set_dropout_generator(at::Generator generator) { dropout_generator_ = std::move(generator); }

 protected:
  // Inverted dropout (Srivastava et al., JMLR 2014) in training mode: zeroes each element with
  // probability p and scales the others by 1 / (1 - p). The identity in eval mode.
  torch::Tensor Dropout(const torch::Tensor& x, double p);

 private:
  c10::optional<at::Generator> dropout_generator_;
};

// Builds the network `spec` names, its parameters drawn from a private generator seeded with
// `seed` from the distributions PyTorch initialises the equivalent modules with (see above): the
// same seed gives the same parameters, whatever else runs in the process (LibTorch's global
// generator is not used, so this is thread-safe). The model is in training mode.
// For spec.name == kTorchScriptModelName it returns LoadScriptedClassifier(spec)
// (common/model/torchscript_model.h): the network and its parameters come from the file
// spec.torchscript_path and `seed` is ignored.
// Throws ConfigError as ValidateModelSpec (model_spec.h) for an unknown name (the message lists
// ModelNames()) or bad in_channels, num_classes, image_size or torchscript_path; for a
// TorchScript model, ConfigError as LoadScriptedClassifier (unreadable file, buffers, a forward
// that does not map (B, C, S, S) images to (B, num_classes) logits, ...).
std::shared_ptr<Classifier> MakeModel(const ModelSpec& spec, uint64_t seed = 0);

}  // namespace fedmed

#endif  // FEDMED_COMMON_MODEL_ZOO_H_
