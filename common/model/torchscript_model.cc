#include "common/model/torchscript_model.h"

#include <new>
#include <set>
#include <utility>
#include <vector>

#include "common/model/torch_archive.h"
#include "common/model/torch_state.h"
#include "common/util/error.h"
#include "common/util/file_io.h"

namespace fedmed {

namespace {

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

std::string ShapeString(c10::IntArrayRef sizes) {
  std::string s = "(";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i > 0 ? ", " : "") + std::to_string(sizes[i]);
  return s + (sizes.size() == 1 ? ",)" : ")");
}

// PyTorch's dtype names for the common float types, LibTorch's otherwise.
std::string DtypeText(c10::ScalarType type) {
  switch (type) {
    case torch::kFloat: return "float32";
    case torch::kDouble: return "float64";
    case torch::kHalf: return "float16";
    case torch::kBFloat16: return "bfloat16";
    default: return c10::toString(type);
  }
}

std::vector<std::string> SplitDotted(const std::string& name) {
  std::vector<std::string> parts;
  size_t begin = 0;
  while (true) {
    const size_t dot = name.find('.', begin);
    parts.push_back(name.substr(begin, dot == std::string::npos ? std::string::npos : dot - begin));
    if (dot == std::string::npos) return parts;
    begin = dot + 1;
  }
}

// Registers every parameter of `script` on `owner` under its dotted name, creating (or reusing)
// one plain holder submodule per name component but the last. Checks what the header promises.
void ExposeScriptParameters(const torch::jit::Module& script, torch::nn::Module& owner,
                            const std::string& path) {
  const std::string where = "TorchScript model '" + path + "'";
  std::vector<std::string> buffers;
  for (const auto& b : script.named_buffers(/*recurse=*/true)) buffers.push_back(b.name);
  if (!buffers.empty()) {
    std::string list;
    for (size_t i = 0; i < buffers.size() && i < 5; ++i) list += (i ? ", " : "") + buffers[i];
    if (buffers.size() > 5) list += ", ... (" + std::to_string(buffers.size()) + " in all)";
    throw ConfigError(where + " has buffers (" + list +
                      "), which fedmed cannot train or average: its model state and updates "
                      "carry parameters only, so buffers such as BatchNorm's running statistics "
                      "would stay at the file's values at every party. Use GroupNorm or "
                      "LayerNorm instead of BatchNorm (as the model zoo does), and plain "
                      "attributes instead of register_buffer for constants");
  }
  std::set<const c10::TensorImpl*> seen;
  std::vector<std::string> order;
  for (const auto& p : script.named_parameters(/*recurse=*/true)) {
    const std::string& name = p.name;
    torch::Tensor tensor = p.value;
    if (tensor.scalar_type() != torch::kFloat) {
      throw ConfigError(where + ": parameter '" + name + "' is " +
                        DtypeText(tensor.scalar_type()) +
                        ", expected float32 (call model.float() before torch.jit.save)");
    }
    if (!seen.insert(tensor.unsafeGetTensorImpl()).second) {
      throw ConfigError(where + ": parameter '" + name +
                        "' is the same tensor as an earlier parameter (tied weights), which is "
                        "not supported: the optimizer would update it once per name");
    }
    const std::vector<std::string> parts = SplitDotted(name);
    torch::nn::Module* holder = &owner;
    try {
      for (size_t i = 0; i + 1 < parts.size(); ++i) {
        auto children = holder->named_children();
        if (const auto* child = children.find(parts[i])) {
          holder = child->get();
        } else {
          holder = holder->register_module(parts[i], std::make_shared<torch::nn::Module>()).get();
        }
      }
      holder->register_parameter(parts.back(), tensor, /*requires_grad=*/true);
    } catch (const c10::Error& e) {
      throw ConfigError(where + ": parameter '" + name + "' cannot be exposed: " +
                        FirstLine(e.what_without_backtrace()));
    }
    order.push_back(name);
  }
  if (order.empty()) {
    throw ConfigError(where + " has no parameters: there is nothing to train");
  }
  const auto exposed = owner.named_parameters(/*recurse=*/true);
  for (size_t i = 0; i < order.size(); ++i) {
    if (exposed[i].key() != order[i]) {
      throw ConfigError(where + ": named_parameters() lists '" + order[i] + "' at position " +
                        std::to_string(i) + ", where a module-by-module order (own parameters "
                        "first, then each submodule's) has '" + exposed[i].key() +
                        "'; fedmed needs the latter (scripts made with torch.jit.script or "
                        "torch.jit.trace have it)");
    }
  }
}

}  // namespace

ScriptedClassifier::ScriptedClassifier(torch::jit::Module script, std::string path)
    : script_(std::move(script)), path_(std::move(path)) {
  ExposeScriptParameters(script_, *this, path_);
  train(true);
}

torch::Tensor ScriptedClassifier::forward(torch::Tensor images) {
  return script_.forward({std::move(images)}).toTensor();
}

void ScriptedClassifier::train(bool on) {
  Classifier::train(on);
  script_.train(on);
}

torch::jit::Module LoadTorchScriptFile(const std::string& path, const std::string& what) {
  std::string bytes;
  try {
    bytes = ReadFile(path, "TorchScript file");
  } catch (const Error& e) {
    throw ConfigError(what + ": cannot open TorchScript file '" + path + "' (" + e.what() + ")");
  }
  try {
    // Declared sizes first: torch::jit::load trusts them (fuzz/fuzz_checkpoint).
    CheckTorchArchive(bytes, "TorchScript file '" + path + "'");
  } catch (const FormatError& e) {
    throw ConfigError(what + ": " + e.what());
  }
  try {
    return torch::jit::load(BoundedArchiveReader(std::move(bytes)), torch::kCPU);
  } catch (const c10::Error& e) {
    throw ConfigError(what + ": '" + path +
                      "' is not a TorchScript file (expected the output of torch.jit.save of a "
                      "torch.jit.script or torch.jit.trace module): " +
                      FirstLine(e.what_without_backtrace()));
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    // A TorchScript compilation error in the archive's code (torch::jit::ErrorReport) is not a
    // c10::Error.
    throw ConfigError(what + ": '" + path +
                      "' is not a TorchScript file (expected the output of torch.jit.save of a "
                      "torch.jit.script or torch.jit.trace module): " + FirstLine(e.what()));
  }
}

std::shared_ptr<ScriptedClassifier> LoadScriptedClassifier(const ModelSpec& spec) {
  ValidateModelSpec(spec);
  const std::string& path = spec.torchscript_path;
  auto model = std::make_shared<ScriptedClassifier>(
      LoadTorchScriptFile(path, "model.torchscript_path"), path);

  const int64_t c = spec.in_channels;
  const int64_t s = spec.image_size;
  const torch::Tensor probe = torch::linspace(-1, 1, 2 * c * s * s).reshape({2, c, s, s});
  const std::string input = "a " + ShapeString(probe.sizes()) + " float32 input";
  const std::string where = "TorchScript model '" + path + "'";
  c10::IValue output;
  model->eval();
  {
    torch::NoGradGuard no_grad;
    try {
      output = model->script().forward({probe});
    } catch (const std::exception& e) {
      const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
      throw ConfigError(where + ": forward fails on " + input + " (model.in_channels = " +
                        std::to_string(c) + ", model.image_size = " + std::to_string(s) +
                        "): " + FirstLine(c10_error ? c10_error->what_without_backtrace()
                                                    : e.what()));
    }
  }
  model->train(true);
  const std::string expected = "expected (2, " + std::to_string(spec.num_classes) +
                               ") float32 logits (model.num_classes = " +
                               std::to_string(spec.num_classes) + ")";
  if (!output.isTensor()) {
    throw ConfigError(where + ": forward maps " + input + " to a " + output.tagKind() + ", " +
                      expected);
  }
  const torch::Tensor logits = output.toTensor();
  if (logits.dim() != 2 || logits.size(0) != 2 || logits.size(1) != spec.num_classes ||
      logits.scalar_type() != torch::kFloat) {
    throw ConfigError(where + ": forward maps " + input + " to a " +
                      ShapeString(logits.sizes()) + " " + DtypeText(logits.scalar_type()) +
                      " output, " + expected);
  }
  return model;
}

ModelState ScriptParameterState(const torch::jit::Module& script, const std::string& path) {
  torch::nn::Module holder;
  ExposeScriptParameters(script, holder, path);
  return ExportState(holder);
}

}  // namespace fedmed
