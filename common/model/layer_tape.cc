#include "common/model/layer_tape.h"

namespace fedmed {

namespace {

thread_local LayerTape* active_tape = nullptr;

}  // namespace

LayerTape::LayerTape(const torch::nn::Module& root) {
  // Without include_self: a root that is not held by a shared_ptr works too.
  names_.emplace(&root, "");
  for (const auto& item : root.named_modules("", /*include_self=*/false)) {
    names_.emplace(item.value().get(), item.key());
  }
}

LayerTape::Scope::Scope(LayerTape& tape) : previous_(active_tape) { active_tape = &tape; }

LayerTape::Scope::~Scope() { active_tape = previous_; }

LayerTape* LayerTape::Active() { return active_tape; }

void LayerTape::Add(const torch::nn::Module& module, const torch::Tensor& input,
                    const torch::Tensor& output) {
  Record record;
  record.module = &module;
  const auto found = names_.find(&module);
  if (found != names_.end()) record.name = found->second;
  record.input = input;
  record.output = output;
  records_.push_back(std::move(record));
}

}  // namespace fedmed
