#include "simulator/in_process_handoff.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/util/error.h"

namespace fedmed {

bool NeedsInProcessRuntime(const SimulationConfig& config, bool select_only) {
  return select_only || config.mode == "threads" || config.baseline ||
         !config.select_split.empty();
}

void HandOffToInProcessSimulator(const std::string& bin_dir, int argc, char** argv) {
  const std::string path = bin_dir + "/" + kInProcessSimulator;
  std::vector<char*> args;
  args.push_back(const_cast<char*>(path.c_str()));
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  execv(path.c_str(), args.data());
  throw Error("cannot start " + path + " (threads mode, the pooled baseline and model selection "
              "run there): " + std::strerror(errno));
}

}  // namespace fedmed
