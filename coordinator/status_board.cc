#include "coordinator/status_board.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <system_error>

namespace fedmed {

namespace {

double NowUnix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool Contains(const std::string& text, const char* word) {
  return text.find(word) != std::string::npos;
}

double Num(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::numeric_limits<double>::quiet_NaN();
  return it->get<double>();
}

RoundStatus ParseRound(const nlohmann::json& j) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  RoundStatus r;
  r.round = j.value("round", 0);
  r.attempt = j.value("attempt", 1);
  r.unix_time = Num(j, "unix_time");
  r.train_loss = Num(j, "train_loss");
  r.global_auc = r.global_accuracy = r.global_loss = nan;
  r.federated_auc = r.federated_accuracy = r.federated_loss = nan;
  if (const auto g = j.find("global"); g != j.end() && g->is_object()) {
    r.global_auc = Num(*g, "auc");
    r.global_accuracy = Num(*g, "accuracy");
    r.global_loss = Num(*g, "loss");
  }
  if (const auto f = j.find("federated"); f != j.end() && f->is_object()) {
    r.federated_auc = Num(*f, "auc");
    r.federated_accuracy = Num(*f, "accuracy");
    r.federated_loss = Num(*f, "loss");
  }
  if (const auto s = j.find("seconds"); s != j.end() && s->is_object()) {
    r.round_seconds = Num(*s, "round");
    r.training_seconds = Num(*s, "training");
    r.aggregation_seconds = Num(*s, "aggregation");
    r.evaluation_seconds = Num(*s, "evaluation");
    r.checkpoint_seconds = Num(*s, "checkpoint");
  }
  if (const auto n = j.find("update_norm"); n != j.end() && n->is_object()) {
    for (const auto& [site, norm] : n->items()) {
      if (norm.is_number()) r.update_norm[site] = norm.get<double>();
    }
  }
  if (const auto s = j.find("sites"); s != j.end() && s->is_object()) {
    for (const auto& [site, metrics] : s->items()) {
      if (metrics.is_object()) r.site_auc[site] = Num(metrics, "auc");
    }
  }
  if (const auto c = j.find("contributors"); c != j.end() && c->is_array()) {
    for (const auto& name : *c) {
      if (name.is_string()) r.contributors.push_back(name.get<std::string>());
    }
  }
  return r;
}

std::string StageText(const FlowSnapshot& f) {
  if (f.phase == "waiting_for_sites") {
    return "waiting for sites: " + std::to_string(f.registered.size()) + " of " +
           std::to_string(f.sites_to_start) + " registered";
  }
  if (f.phase == "training") {
    std::string text = "training: " +
                       std::to_string(f.contributed.size() + f.declined.size()) + " of " +
                       std::to_string(f.selected.size()) + " sites answered";
    if (!f.secagg_stage.empty()) text += " (secure aggregation: " + f.secagg_stage + ")";
    if (f.attempt > 1) text += ", attempt " + std::to_string(f.attempt);
    return text;
  }
  if (f.phase == "evaluating") {
    return "evaluating: " + std::to_string(f.evaluated.size()) + " of " +
           std::to_string(f.evaluated.size() + f.evaluating.size()) + " site reports";
  }
  return f.phase;
}

}  // namespace

std::string RefusalReason(const Status& status) {
  const std::string& m = status.message();
  switch (status.code()) {
    case Status::Code::kInvalidArgument:
      if (Contains(m, "norm")) return "norm_bound";
      return "invalid_update";
    case Status::Code::kFailedPrecondition: return "unexpected";
    case Status::Code::kNotFound: return "unknown_session";
    case Status::Code::kResourceExhausted: return "limit";
    case Status::Code::kCancelled: return "upload_failed";
    default: return "other";
  }
}

int64_t ProcessRssBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages_total = 0, pages_resident = 0;
  if (!(statm >> pages_total >> pages_resident)) return 0;
  return pages_resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

StatusBoard::StatusBoard(SiteHandler* inner, std::function<FlowSnapshot()> snapshot,
                         std::string metrics_jsonl, std::vector<std::string> allowed_sites)
    : inner_(inner),
      snapshot_(std::move(snapshot)),
      metrics_jsonl_(std::move(metrics_jsonl)),
      allowed_sites_(std::move(allowed_sites)),
      started_unix_(NowUnix()) {}

void StatusBoard::Seen(const std::string& site) {
  std::lock_guard<std::mutex> lock(mu_);
  sites_[site].last_seen_unix = NowUnix();
}

void StatusBoard::AddEventLocked(const std::string& site, int round, const std::string& kind,
                                 const std::string& reason, const std::string& detail) {
  events_.push_back(StatusEvent{NowUnix(), site, round, kind, reason, detail});
  while (events_.size() > kMaxEvents) events_.pop_front();
}

void StatusBoard::Refused(const std::string& site, int round, const Status& why) {
  const bool excluded = snapshot_().excluded.count(site) != 0;
  std::lock_guard<std::mutex> lock(mu_);
  const std::string reason = RefusalReason(why);
  ++updates_refused_[reason];
  SiteRecord& r = sites_[site];
  r.uploading_round = 0;
  AddEventLocked(site, round, "refused", reason, why.message());
  if (excluded && !r.excluded_reported) {
    r.excluded_reported = true;
    AddEventLocked(site, round, "excluded", "",
                   "too many refused updates in a row ([federation] max_invalid_updates)");
  }
}

std::vector<RoundStatus> StatusBoard::Rounds() const {
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(metrics_jsonl_, ec);
  if (ec) return {};
  const auto mtime = std::filesystem::last_write_time(metrics_jsonl_, ec);
  if (ec) return {};
  const int64_t stamp = static_cast<int64_t>(mtime.time_since_epoch().count());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (size == metrics_size_ && stamp == metrics_mtime_) return rounds_;
  }
  std::vector<RoundStatus> rounds;
  std::ifstream in(metrics_jsonl_);
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) rounds.push_back(ParseRound(j));
  }
  std::lock_guard<std::mutex> lock(mu_);
  metrics_size_ = size;
  metrics_mtime_ = stamp;
  rounds_ = rounds;
  return rounds;
}

StatusView StatusBoard::View() const {
  StatusView v;
  v.flow = snapshot_();
  v.rounds = Rounds();
  v.stage = StageText(v.flow);
  v.started_unix = started_unix_;
  v.now_unix = NowUnix();
  v.rss_bytes = ProcessRssBytes();
  if (!v.rounds.empty() && v.flow.phase != "finished" && v.flow.phase != "stopped") {
    double sum = 0;
    for (const RoundStatus& r : v.rounds) sum += std::isfinite(r.round_seconds) ? r.round_seconds : 0;
    const double mean = sum / static_cast<double>(v.rounds.size());
    const int done = v.rounds.back().round;
    const double left = std::max(0, v.flow.total_rounds - done);
    v.eta_seconds = std::max(0.0, mean * left - v.flow.round_elapsed_seconds);
  } else if (v.flow.phase == "finished") {
    v.eta_seconds = 0;
  }
  const FlowSnapshot& f = v.flow;
  const bool training = f.phase == "training";
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& name : allowed_sites_) {
    SiteStatus s;
    s.name = name;
    const auto it = sites_.find(name);
    const SiteRecord* r = it == sites_.end() ? nullptr : &it->second;
    const bool selected =
        std::find(f.selected.begin(), f.selected.end(), name) != f.selected.end();
    if (f.excluded.count(name) != 0) {
      s.state = "excluded";
    } else if (f.registered.count(name) == 0) {
      s.state = r != nullptr && r->ever_registered ? "dead" : "not_registered";
    } else if (training && f.declined.count(name) != 0) {
      s.state = "declined";
    } else if (training && selected && f.contributed.count(name) == 0) {
      s.state = r != nullptr && r->uploading_round == f.round ? "uploading" : "training";
    } else if (f.evaluating.count(name) != 0) {
      s.state = "evaluating";
    } else {
      s.state = "registered";
    }
    if (r != nullptr) {
      s.last_seen_unix = r->last_seen_unix;
      s.rounds_contributed = r->rounds_contributed;
      s.last_update_bytes = r->last_update_bytes;
      s.last_update_norm = r->last_update_norm;
      s.software_version = r->software_version;
      s.certificate_not_after_unix = static_cast<double>(r->certificate_not_after);
      if (r->privacy) {
        s.privacy_mechanism = PrivacyModeName(r->privacy->mechanism.mode);
        s.epsilon_spent = r->privacy->epsilon_total;
        s.epsilon_budget = r->privacy->budget_epsilon;
        s.delta = r->privacy->delta;
      }
    }
    // This round's norm when its update is in, else the one of its latest completed round.
    if (const auto norm = f.update_norm.find(name); norm != f.update_norm.end()) {
      s.last_update_norm = norm->second;
    } else {
      for (auto round = v.rounds.rbegin(); round != v.rounds.rend(); ++round) {
        if (const auto n = round->update_norm.find(name); n != round->update_norm.end()) {
          s.last_update_norm = n->second;
          break;
        }
      }
    }
    v.sites.push_back(std::move(s));
  }
  v.events.assign(events_.begin(), events_.end());
  v.bytes_received = bytes_received_;
  v.bytes_sent = bytes_sent_;
  v.updates_accepted = updates_accepted_;
  v.updates_refused = updates_refused_;
  return v;
}

// ---- SiteHandler ----

Status StatusBoard::Register(const std::string& site, const RegistrationInfo& request,
                             Registration* reply) {
  const Status s = inner_->Register(site, request, reply);
  std::lock_guard<std::mutex> lock(mu_);
  SiteRecord& r = sites_[site];
  r.last_seen_unix = NowUnix();
  if (s.ok()) {
    r.ever_registered = true;
    r.gone = false;
    r.software_version = request.software_version;
    r.certificate_not_after = request.certificate_not_after;
  }
  return s;
}

Status StatusBoard::Poll(const std::string& site, const std::string& session_id, int wait_ms,
                         SiteTask* task) {
  Seen(site);
  const Status s = inner_->Poll(site, session_id, wait_ms, task);
  Seen(site);
  return s;
}

Status StatusBoard::GetModel(const std::string& site, const std::string& session_id,
                             int version, std::shared_ptr<const EncodedModel>* model) {
  const Status s = inner_->GetModel(site, session_id, version, model);
  std::lock_guard<std::mutex> lock(mu_);
  sites_[site].last_seen_unix = NowUnix();
  if (s.ok() && *model) bytes_sent_ += static_cast<int64_t>((*model)->bytes.size());
  return s;
}

Status StatusBoard::CheckUpdate(const std::string& site, const UpdateHeader& header) {
  const Status s = inner_->CheckUpdate(site, header);
  if (!s.ok()) {
    Refused(site, header.info.round, s);
  } else {
    std::lock_guard<std::mutex> lock(mu_);
    SiteRecord& r = sites_[site];
    r.last_seen_unix = NowUnix();
    r.uploading_round = header.info.round;
  }
  return s;
}

Status StatusBoard::AcceptUpdate(const std::string& site, const UpdateHeader& header,
                                 std::string bytes, double transfer_seconds) {
  const int64_t size = static_cast<int64_t>(bytes.size());
  const Status s = inner_->AcceptUpdate(site, header, std::move(bytes), transfer_seconds);
  if (!s.ok()) {
    Refused(site, header.info.round, s);
    return s;
  }
  std::lock_guard<std::mutex> lock(mu_);
  SiteRecord& r = sites_[site];
  r.last_seen_unix = NowUnix();
  r.uploading_round = 0;
  ++r.rounds_contributed;
  r.last_update_bytes = size;
  r.last_update_norm.reset();  // the snapshot's norm of this round replaces it
  if (header.has_privacy) r.privacy = header.info.privacy;
  bytes_received_ += size;
  ++updates_accepted_;
  return s;
}

Status StatusBoard::AcceptEvaluation(const std::string& site, const EvaluationReport& report) {
  Seen(site);
  return inner_->AcceptEvaluation(site, report);
}

Status StatusBoard::DeclineTask(const std::string& site, const DeclineRequest& request) {
  const Status s = inner_->DeclineTask(site, request);
  std::lock_guard<std::mutex> lock(mu_);
  SiteRecord& r = sites_[site];
  r.last_seen_unix = NowUnix();
  if (s.ok()) {
    if (request.privacy) r.privacy = *request.privacy;
    AddEventLocked(site, request.round, "declined", "", request.reason);
  }
  return s;
}

Status StatusBoard::SecAggSend(const std::string& site, const SecAggMessage& message) {
  Seen(site);
  return inner_->SecAggSend(site, message);
}

Status StatusBoard::SecAggReceive(const std::string& site, const SecAggPoll& poll,
                                  SecAggStage* stage) {
  Seen(site);
  return inner_->SecAggReceive(site, poll, stage);
}

void StatusBoard::RecordDownload(const std::string& site, double seconds) {
  inner_->RecordDownload(site, seconds);
}

void StatusBoard::UploadFailed(const std::string& site, const Status& why) {
  inner_->UploadFailed(site, why);
  int round = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    round = sites_[site].uploading_round;
  }
  Refused(site, round, why.code() == Status::Code::kInvalidArgument
                           ? why
                           : Status::Cancelled(why.message()));
}

Status StatusBoard::Attend(const std::string& site, const std::string& session_id) {
  Seen(site);
  return inner_->Attend(site, session_id);
}

Status StatusBoard::Hello(const std::string& site, const std::string& software_version,
                          HelloAnswer* answer) {
  return inner_->Hello(site, software_version, answer);
}

void StatusBoard::SiteGone(const std::string& site, const std::string& session_id) {
  const FlowSnapshot before = snapshot_();
  inner_->SiteGone(site, session_id);
  const FlowSnapshot after = snapshot_();
  if (before.registered.count(site) == 0 || after.registered.count(site) != 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  sites_[site].gone = true;
  sites_[site].uploading_round = 0;
  AddEventLocked(site, after.round, "gone", "", "its session stream ended");
}

}  // namespace fedmed
