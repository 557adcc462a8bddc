// RoundFlow: resumable transfers on the round's side (round_flow.h, "a cut transfer is
// resumed"). The service keeps the bytes of an upload that ended part-way (partial_uploads.h),
// the site those of a download; this keeps the site's place in the round meanwhile, so that
// when its link returns it polls with the same session, is asked for the same round again,
// and resumes the download, or resends (resumes) the update it kept instead of training again
// (site_agent/trained_update.h). The round's deadline still applies: a site that is not back
// in time is left out like any other.
#include <spdlog/spdlog.h>

#include <chrono>

#include "coordinator/round_flow.h"

namespace fedmed {

bool RoundFlow::KeepPlaceForResumeLocked(const std::string& site,
                                         const std::string& session_id) {
  const auto transfer = in_transfer_.find(site);
  if (config_.resume_seconds <= 0 || secure_ || transfer == in_transfer_.end() ||
      transfer->second != rsm_.round() || rsm_.phase() != Phase::kTraining ||
      training_closed_) {
    return false;
  }
  log_->warn("round {}: the connection of {} ended during its download or upload: keeping its "
             "place in the round for up to {:g} s ([transport] resume_seconds) for it to "
             "reconnect and resume",
             rsm_.round(), site, config_.resume_seconds);
  std::unique_ptr<EventLoop::Timer>& timer = resume_timers_[site];
  if (!timer) timer = loop_->MakeTimer();
  const auto wait = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(config_.resume_seconds));
  timer->Arm(loop_->Now() + wait, [this, site, session_id] {
    {
      MutexLock lock(&mu_);
      if (in_transfer_.erase(site) == 0) return;  // its transfer ended meanwhile
      log_->warn("round {}: {} did not come back within [transport] resume_seconds", rsm_.round(),
                 site);
    }
    SiteGone(site, session_id);  // no transfer in flight now: gone like any other site
  });
  return true;
}

void RoundFlow::SiteBackLocked(const std::string& site) {
  const auto timer = resume_timers_.find(site);
  if (timer == resume_timers_.end()) return;
  timer->second->Cancel();
  if (in_transfer_.count(site) != 0) {
    log_->info("round {}: {} is back; its place in the round was kept for it to resume its "
               "transfer", rsm_.round(), site);
  }
}

}  // namespace fedmed
