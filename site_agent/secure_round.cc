#include "site_agent/secure_round.h"

#include <spdlog/spdlog.h>

#include <ctime>

#include "common/transport/secagg_wire.h"
#include "common/util/error.h"

namespace fedmed {
namespace {

constexpr int kStageWaitMs = 5000;

const char* StageName(int stage) {
  switch (stage) {
    case 1:
      return "the advertised keys";
    case 2:
      return "the key shares";
    default:
      return "the survivors";
  }
}

}  // namespace

SecureRound::SecureRound(const SecAggRoundConfig& config, const std::string& site,
                         const std::string& audit_key_pem, std::string audit_cert_pem,
                         std::string ca_pem, std::shared_ptr<spdlog::logger> log)
    : client_(config, site, AuditSigningKey::FromPem(audit_key_pem, "the site's audit key"),
              std::move(audit_cert_pem), std::move(ca_pem)),
      log_(std::move(log)) {}

bool SecureRound::Await(CoordinatorConnection& connection, const std::string& session, int stage,
                        const std::atomic<bool>& stopping, SecAggStage* out) {
  const SecAggRoundConfig& c = client_.config();
  while (!stopping) {
    *out = connection.SecAggReceive(session, c.round, c.attempt, stage, kStageWaitMs);
    if (out->status == SecAggStage::Status::kReady) return true;
    if (out->status == SecAggStage::Status::kAborted) {
      log_->warn("round {}: secure aggregation attempt {} aborted while waiting for {}: {}",
                 c.round, c.attempt, StageName(stage), out->reason);
      return false;
    }
  }
  return false;
}

bool SecureRound::ExchangeKeys(CoordinatorConnection& connection, const std::string& session,
                               const std::atomic<bool>& stopping) {
  const SecAggRoundConfig& c = client_.config();
  connection.SecAggSendKeys(session, c.round, c.attempt, client_.AdvertiseKeys());
  SecAggStage stage;
  if (!Await(connection, session, 1, stopping, &stage)) return false;
  std::vector<EncryptedShare> shares;
  try {
    shares = client_.ShareKeys(stage.keys, std::time(nullptr));
  } catch (const SecAggAborted& e) {
    log_->error("round {}: {}; leaving this attempt", c.round, e.what());
    return false;
  }
  connection.SecAggSendShares(session, c.round, c.attempt, shares);
  if (!Await(connection, session, 2, stopping, &stage)) return false;
  inbox_ = std::move(stage.inbox);
  u2_ = std::move(stage.u2);
  log_->info("round {}: secure aggregation: keys shared with {} sites (attempt {}, threshold {})",
             c.round, u2_.size(), c.attempt, c.threshold);
  return true;
}

std::string SecureRound::MaskUpdate(const ModelState& delta, int64_t num_samples,
                                    UpdateInfo* info) {
  const SecAggRoundConfig& c = client_.config();
  std::vector<float> values;
  values.reserve(static_cast<size_t>(delta.NumValues()));
  const double weight = static_cast<double>(num_samples) / static_cast<double>(c.weight_normalizer);
  size_t clipped = 0;
  for (const NamedTensor& t : delta.tensors) {
    for (float v : t.values) {
      const double x = v * weight;
      if (x > c.clip_range || x < -c.clip_range) ++clipped;
      values.push_back(static_cast<float>(x));
    }
  }
  MaskedInput masked = client_.MaskInput(inbox_, u2_, values, num_samples);
  if (clipped > 0) {
    log_->warn("round {}: {} of {} weighted update values exceeded [secure_aggregation] "
               "clip_range {} and were clipped",
               c.round, clipped, values.size(), c.clip_range);
  }
  if (!masked.complaints.empty()) {
    std::string names;
    for (uint32_t v : masked.complaints) names += (names.empty() ? "" : ", ") + c.SiteAt(v);
    log_->warn("round {}: the key shares of {} failed authentication; reported to the "
               "coordinator",
               c.round, names);
  }
  std::string bytes = EncodeMaskedInput(masked.masked);
  info->secure = true;
  info->num_samples = 0;
  info->secagg_complaints = std::move(masked.complaints);
  return bytes;
}

bool SecureRound::Unmask(CoordinatorConnection& connection, const std::string& session,
                         const std::atomic<bool>& stopping) {
  const SecAggRoundConfig& c = client_.config();
  SecAggStage stage;
  if (!Await(connection, session, 3, stopping, &stage)) return false;
  std::vector<UnmaskShare> shares;
  try {
    shares = client_.Unmask(stage.u3);
  } catch (const SecAggAborted& e) {
    log_->error("round {}: {}; not revealing any share", c.round, e.what());
    return false;
  }
  connection.SecAggSendUnmask(session, c.round, c.attempt, shares);
  for (UnmaskShare& s : shares) SecretBytes(std::move(s.share)).Wipe();
  log_->info("round {}: secure aggregation: unmasking shares sent ({} survivors)", c.round,
             stage.u3.size());
  return true;
}

}  // namespace fedmed
