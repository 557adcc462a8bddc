#include "site_agent/task_check.h"

#include "common/data/preprocess.h"
#include "common/util/error.h"

namespace fedmed {

std::string CheckTask(const SiteTask& task, const SiteConfig& config, ModelSpec* spec) {
  PreprocessSpec federation;
  try {
    if (!task.preprocessing.empty()) federation = ParsePreprocessSpec(task.preprocessing);
  } catch (const Error& e) {
    return std::string("the coordinator's preprocessing cannot be read: ") + e.what();
  }
  if (federation != config.data.preprocess) {
    return "this site's preprocessing differs from the federation's: " +
           DescribePreprocessDifference(config.data.preprocess, federation) + " (set the " +
           "[data] preprocessing keys of " + config.config_path + " as the coordinator's " +
           "[preprocessing])";
  }
  *spec = task.spec;
  spec->torchscript_path.clear();
  if (spec->name == kTorchScriptModelName) {
    if (config.model.torchscript_path.empty()) {
      return "the federation trains a TorchScript model, but this site has no [model] "
             "torchscript_path: set it in " + config.config_path +
             " to this site's copy of the federation's file";
    }
    spec->torchscript_path = config.model.torchscript_path;
  }
  return "";
}

}  // namespace fedmed
