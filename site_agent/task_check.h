// Whether this site can run a task the coordinator gave it, before it downloads anything: the
// federation's preprocessing against the site's own, and the model the task names against what
// the site has (a TorchScript model needs the site's copy of the file). No gRPC, no LibTorch.
#ifndef FEDMED_SITE_AGENT_TASK_CHECK_H_
#define FEDMED_SITE_AGENT_TASK_CHECK_H_

#include <string>

#include "common/config/site_config.h"
#include "common/model/model_spec.h"
#include "common/transport/messages.h"

namespace fedmed {

// "" when a site configured by `config` can run `task`, with the model spec it trains or
// evaluates in *spec (the task's, with the site's [model] torchscript_path for a TorchScript
// model); otherwise why not, naming the config keys to set, for the decline. Never throws.
std::string CheckTask(const SiteTask& task, const SiteConfig& config, ModelSpec* spec);

}  // namespace fedmed

#endif  // FEDMED_SITE_AGENT_TASK_CHECK_H_
