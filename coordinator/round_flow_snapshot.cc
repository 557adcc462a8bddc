// RoundFlow::Snapshot (round_flow.h): the round flow's state for the status server
// (status/flow_snapshot.h), copied under its mutex; and Hello, which reads only constants.
#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "common/util/version.h"
#include "coordinator/round_flow.h"
#include "coordinator/status/flow_snapshot.h"

namespace fedmed {

namespace {

const char* SecAggStageName(SecAggServer::Stage stage) {
  switch (stage) {
    case SecAggServer::Stage::kKeys: return "keys";
    case SecAggServer::Stage::kShares: return "shares";
    case SecAggServer::Stage::kMaskedInput: return "masked_input";
    case SecAggServer::Stage::kUnmasking: return "unmasking";
    case SecAggServer::Stage::kDone: return "done";
  }
  return "";
}

}  // namespace

FlowSnapshot RoundFlow::Snapshot() const {
  MutexLock lock(&mu_);
  FlowSnapshot s;
  s.federation = config_.federation;
  s.phase = PhaseLabelLocked();
  s.round = rsm_.round();
  s.attempt = rsm_.attempt();
  s.total_rounds = rsm_.total_rounds();
  s.sites_to_start = rsm_.sites_to_start();
  for (const auto& [name, site] : rsm_.sites()) s.registered.insert(name);
  s.excluded = rsm_.excluded();
  s.selected = rsm_.selected();
  s.contributed = rsm_.contributed();
  s.declined = rsm_.declined();
  s.evaluated = rsm_.evaluated();
  if (rsm_.phase() == Phase::kEvaluating) {
    for (const auto& [name, site] : rsm_.sites()) {
      if (rsm_.ActionFor(name) == SiteAction::kEvaluate) s.evaluating.insert(name);
    }
  }
  s.update_norm = record_.update_norm;
  s.secure = secure_;
  if (secure_ && rsm_.phase() == Phase::kTraining && secure_round_.active()) {
    s.secagg_stage = SecAggStageName(secure_round_.stage());
  }
  const auto now = loop_->Now();
  if (rsm_.round() > 0 && rsm_.phase() != Phase::kFinished) {
    s.round_elapsed_seconds = std::chrono::duration<double>(now - round_start_).count();
  }
  if (rsm_.phase() == Phase::kTraining || rsm_.phase() == Phase::kEvaluating) {
    s.phase_seconds_left =
        std::max(0.0, std::chrono::duration<double>(phase_deadline_ - now).count());
  }
  return s;
}

Status RoundFlow::Hello(const std::string& site, const std::string& software_version,
                        HelloAnswer* answer) {
  answer->federation = config_.federation;  // const: no lock needed
  answer->coordinator_version = kFedmedVersion;
  answer->unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  answer->site = site;
  log_->info("Hello from {} ({}): answered, nothing registered", site,
             software_version.empty() ? "version not given" : software_version);
  return Status::OK();
}

}  // namespace fedmed
