#include "common/model/model_io.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "common/model/checkpoint.h"
#include "common/model/torch_state.h"
#include "common/model/torchscript_model.h"
#include "common/model/zoo.h"
#include "common/util/error.h"
#include "common/util/file_io.h"

namespace fedmed {

namespace {

std::string ErrnoText() { return std::strerror(errno); }

void SaveModule(torch::jit::Module& module, const std::string& path) {
  module.eval();
  std::ostringstream out;
  module.save(out);
  try {
    WriteFileAtomically(path, out.str(), "TorchScript file");
  } catch (const Error& e) {
    throw DataError(e.what());
  }
}

// --- The zoo's networks as TorchScript modules built in C++ ---

// A class name for the module at `path` ("" for the root) of the exported `model`.
c10::QualifiedName ClassName(const std::string& model, const std::string& path) {
  std::string suffix = path.empty() ? "Model" : "M_" + path;
  std::replace(suffix.begin(), suffix.end(), '.', '_');
  return c10::QualifiedName("__torch__.fedmed_export." + model + "." + suffix);
}

// Modules of the exported network by dotted path ("" = root), each with its "training"
// attribute, and its parameters registered in `state` order.
class ModuleTree {
 public:
  ModuleTree(const std::string& model, const ModelState& state) : model_(model) {
    Get("");
    for (const NamedTensor& t : state.tensors) {
      const size_t dot = t.name.rfind('.');
      const std::string parent = dot == std::string::npos ? "" : t.name.substr(0, dot);
      const std::string leaf = dot == std::string::npos ? t.name : t.name.substr(dot + 1);
      torch::Tensor value =
          torch::from_blob(const_cast<float*>(t.values.data()), t.shape, torch::kFloat).clone();
      value.set_requires_grad(true);
      Get(parent).register_parameter(leaf, value, /*is_buffer=*/false);
    }
  }

  // The module at `path`, created (and registered in its parent) on first use.
  torch::jit::Module& Get(const std::string& path) {
    auto found = modules_.find(path);
    if (found != modules_.end()) return found->second;
    torch::jit::Module module(ClassName(model_, path));
    module.register_attribute("training", c10::BoolType::get(), false);
    if (!path.empty()) {
      const size_t dot = path.rfind('.');
      const std::string parent = dot == std::string::npos ? "" : path.substr(0, dot);
      Get(parent).register_module(dot == std::string::npos ? path : path.substr(dot + 1),
                                  module);
    }
    return modules_.emplace(path, module).first->second;
  }

 private:
  std::string model_;
  std::map<std::string, torch::jit::Module> modules_;
};

// TorchScript for "group_norm(conv2d(x, <conv>.weight, <bias>, stride, padding))" of zoo.cc, with
// `conv` and `norm` attribute expressions (e.g. "self.conv1", 'getattr(self.downsample, "0")').
std::string ConvNorm(const std::string& x, const std::string& conv, bool bias, int64_t stride,
                     int64_t padding, const std::string& norm, int64_t groups) {
  const std::string s = std::to_string(stride);
  const std::string p = std::to_string(padding);
  return "torch.group_norm(torch.conv2d(" + x + ", " + conv + ".weight, " +
         (bias ? conv + ".bias" : std::string("None")) + ", [" + s + ", " + s + "], [" + p +
         ", " + p + "]), " + std::to_string(groups) + ", " + norm + ".weight, " + norm +
         ".bias, 1e-05)";
}

int64_t Channels(const ModelState& state, const std::string& name) {
  return state.Find(name)->shape.at(0);
}

// zoo.cc's Cnn::forward in eval mode (GroupNorm groups min(8, channels), as zoo.cc).
void DefineCnn(ModuleTree& tree, const ModelState& state) {
  const int64_t g1 = std::min<int64_t>(8, Channels(state, "gn1.weight"));
  const int64_t g2 = std::min<int64_t>(8, Channels(state, "gn2.weight"));
  tree.Get("").define(
      "def forward(self, x):\n"
      "    x = torch.relu(" + ConvNorm("x", "self.conv1", true, 1, 0, "self.gn1", g1) + ")\n"
      "    x = torch.relu(" + ConvNorm("x", "self.conv2", true, 1, 0, "self.gn2", g2) + ")\n"
      "    x = torch.flatten(torch.max_pool2d(x, [2, 2], [2, 2]), 1)\n"
      "    x = torch.relu(torch.linear(x, self.fc1.weight, self.fc1.bias))\n"
      "    return torch.linear(x, self.fc2.weight, self.fc2.bias)\n");
}

// zoo.cc's ResNet18::forward and BasicBlock::forward (GroupNorm groups min(32, channels)).
void DefineResNet18(ModuleTree& tree, const ModelState& state) {
  for (int layer = 1; layer <= 4; ++layer) {
    const std::string stage = "layer" + std::to_string(layer);
    for (int block = 0; block < 2; ++block) {
      const std::string path = stage + "." + std::to_string(block);
      const int64_t stride = layer > 1 && block == 0 ? 2 : 1;
      const int64_t groups = std::min<int64_t>(32, Channels(state, path + ".gn1.weight"));
      const bool downsample = state.Find(path + ".downsample.0.weight") != nullptr;
      const std::string shortcut =
          downsample ? ConvNorm("x", "getattr(self.downsample, \"0\")", false, stride, 0,
                                "getattr(self.downsample, \"1\")", groups)
                     : "x";
      tree.Get(path).define(
          "def forward(self, x):\n"
          "    y = torch.relu(" +
          ConvNorm("x", "self.conv1", false, stride, 1, "self.gn1", groups) +
          ")\n"
          "    y = " +
          ConvNorm("y", "self.conv2", false, 1, 1, "self.gn2", groups) +
          "\n"
          "    return torch.relu(y + " +
          shortcut + ")\n");
    }
    tree.Get(stage).define(
        "def forward(self, x):\n"
        "    return getattr(self, \"1\").forward(getattr(self, \"0\").forward(x))\n");
  }
  const int64_t groups = std::min<int64_t>(32, Channels(state, "gn1.weight"));
  tree.Get("").define(
      "def forward(self, x):\n"
      "    x = torch.relu(" + ConvNorm("x", "self.conv1", false, 1, 1, "self.gn1", groups) + ")\n"
      "    x = self.layer4.forward(self.layer3.forward(self.layer2.forward("
      "self.layer1.forward(x))))\n"
      "    x = torch.flatten(torch.adaptive_avg_pool2d(x, [1, 1]), 1)\n"
      "    return torch.linear(x, self.fc.weight, self.fc.bias)\n");
}

bool IsTorchScriptArchive(const std::string& path) {
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    return reader.hasRecord("constants.pkl");
  } catch (const c10::Error&) {
    return false;  // not a zip archive at all: LoadCheckpoint reports it
  }
}

}  // namespace

void ExportTorchScript(const ModelSpec& spec, const ModelState& state, const std::string& path) {
  ValidateModelSpec(spec);
  const std::string what = "model state exported to '" + path + "'";
  if (spec.name == kTorchScriptModelName) {
    torch::jit::Module script =
        LoadTorchScriptFile(spec.torchscript_path, "model.torchscript_path");
    CheckSameLayout(ScriptParameterState(script, spec.torchscript_path), state, what);
    std::map<std::string, const NamedTensor*> by_name;
    for (const NamedTensor& t : state.tensors) by_name[t.name] = &t;
    {
      torch::NoGradGuard no_grad;
      for (const auto& p : script.named_parameters(/*recurse=*/true)) {
        const NamedTensor& source = *by_name.at(p.name);
        p.value.copy_(torch::from_blob(const_cast<float*>(source.values.data()), source.shape,
                                       torch::kFloat));
      }
    }
    SaveModule(script, path);
    return;
  }
  CheckSameLayout(ExportState(*MakeModel(spec, 0)), state, what);
  ModuleTree tree(spec.name, state);
  if (spec.name == "cnn") {
    DefineCnn(tree, state);
  } else {
    DefineResNet18(tree, state);
  }
  SaveModule(tree.Get(""), path);
}

ModelState LoadInitialWeights(const std::string& path, const ModelState& expected_layout) {
  if (!std::ifstream(path, std::ios::binary)) {
    throw DataError("cannot open initial weights file '" + path + "': " + ErrnoText());
  }
  ModelState state;
  std::string kind;
  if (IsTorchScriptArchive(path)) {
    torch::jit::Module script = LoadTorchScriptFile(path, "initial weights");
    state = ScriptParameterState(script, path);
    kind = "TorchScript file";
  } else {
    state = LoadCheckpoint(path);
    kind = "state dict";
  }
  CheckSameLayout(expected_layout, state,
                  "initial weights '" + path + "' (" + kind + ") do not fit the model");
  for (const NamedTensor& t : state.tensors) {
    for (float v : t.values) {
      if (!std::isfinite(v)) {
        throw FormatError("initial weights '" + path + "': parameter '" + t.name +
                          "' has a NaN or infinite value");
      }
    }
  }
  return state;
}

}  // namespace fedmed
