// fedmed-simulate's definitions of what only fedmed-simulate-inprocess runs (threads mode, the
// pooled baseline, model selection): fedmed-simulate hands every invocation that needs them to
// that executable before it starts (in_process_handoff.h), so these throw only on a bug there.
#include <string>

#include "common/util/error.h"
#include "simulator/baseline.h"
#include "simulator/in_process_handoff.h"
#include "simulator/model_selection.h"
#include "simulator/threads_mode.h"

namespace fedmed {

namespace {

[[noreturn]] void Unavailable(const std::string& what) {
  throw Error(what + " runs in " + kInProcessSimulator + ", not in fedmed-simulate (an invocation "
              "that needs it should have been handed over: simulator/in_process_handoff.h)");
}

}  // namespace

ModeOutcome RunThreads(const SimulationConfig&, const PreparedRun&, const std::string&,
                       LoadedFiles*, std::ostream&) {
  Unavailable("threads mode");
}

BaselineResult RunBaseline(const SimulationConfig&, const std::string&, int) {
  Unavailable("the pooled baseline");
}

ModelSelection SelectCheckpoint(const SimulationConfig&, const std::string&, const std::string&) {
  Unavailable("model selection");
}

}  // namespace fedmed
