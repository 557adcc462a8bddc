#include "site_agent/trained_update.h"

#include <optional>

#include "common/util/error.h"

namespace fedmed {

namespace {

std::optional<UpdateEncoding> TaskEncoding(const SiteTask& task) {
  return ParseUpdateEncoding(task.update_encoding.empty() ? "float32" : task.update_encoding);
}

}  // namespace

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
