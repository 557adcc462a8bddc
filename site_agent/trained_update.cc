#include "site_agent/trained_update.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "common/util/error.h"

namespace fedmed {

namespace {

std::optional<UpdateEncoding> TaskEncoding(const SiteTask& task) {
  return ParseUpdateEncoding(task.update_encoding.empty() ? "float32" : task.update_encoding);
}

}  // namespace

const KeptUpdate* KeptUpdates::Find(int round, const std::string& model_sha256) const {
  for (const KeptUpdate& k : kept_) {
    if (k.round == round && k.model_sha256 == model_sha256) return &k;
  }
  return nullptr;
}

void KeptUpdates::Keep(KeptUpdate update) {
  kept_.erase(std::remove_if(kept_.begin(), kept_.end(),
                             [&](const KeptUpdate& k) { return k.round == update.round; }),
              kept_.end());
  kept_.push_back(std::move(update));
  while (kept_.size() > capacity_) kept_.pop_front();
}

std::string UpdateEncodingProblem(const SiteTask& task) {
  if (TaskEncoding(task)) return "";
  return "the coordinator asks for update encoding \"" + task.update_encoding.substr(0, 64) +
         "\", which this site does not know (it has \"float32\", \"float16\" and \"int8\"): "
         "upgrade fedmed at this site";
}

std::string EncodePlainUpdate(const SiteTask& task, const ModelState& delta, uint64_t seed) {
  const std::optional<UpdateEncoding> encoding = TaskEncoding(task);
  if (!encoding) throw FormatError(UpdateEncodingProblem(task));
  return EncodeModelState(delta, *encoding, seed);
}

}  // namespace fedmed
