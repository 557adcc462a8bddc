#include "coordinator/secure_round.h"

#include <algorithm>
#include <utility>

#include "common/transport/secagg_wire.h"
#include "common/util/error.h"

namespace fedmed {

SecureRound::SecureRound(SecureAggregationConfig config, std::string ca_pem)
    : settings_(std::move(config)), ca_pem_(std::move(ca_pem)) {}

std::string SecureRound::Begin(int round, int attempt, const std::vector<std::string>& participants,
                               int64_t weight_normalizer, int64_t num_values, std::time_t now) {
  SecAggRoundConfig c;
  c.round = round;
  c.attempt = attempt;
  c.participants = participants;
  const int n = static_cast<int>(c.participants.size());
  c.neighbours = settings_.neighbours;
  // Holders of each site's shares: itself and its neighbours (everyone without SecAgg+).
  const int holders = settings_.neighbours > 0 ? std::min(settings_.neighbours, n - 1) + 1 : n;
  c.threshold = settings_.threshold > 0 ? settings_.threshold : std::max(2, holders / 2 + 1);
  c.clip_range = settings_.clip_range;
  c.quantization_bits = settings_.quantization_bits;
  c.weight_normalizer = std::max<int64_t>(1, weight_normalizer);
  c.num_values = num_values;
  u3_.clear();
  server_.reset();
  if (holders < c.threshold || n < 2) {
    config_.reset();
    return std::to_string(n) + " site(s) selected: each site's shares would have " +
           std::to_string(holders) + " holder(s), fewer than the threshold of " +
           std::to_string(std::max(2, c.threshold));
  }
  config_ = c;
  server_ = std::make_shared<SecAggServer>(c, ca_pem_, now);
  return "";
}

void SecureRound::Abort(const std::string& why) {
  failure_ = why;
  server_.reset();
}

SecAggServer::Stage SecureRound::stage() const {
  return server_ ? server_->stage() : SecAggServer::Stage::kDone;
}

bool SecureRound::KeyExchangeOpen() const {
  return server_ && (server_->stage() == SecAggServer::Stage::kKeys ||
                     server_->stage() == SecAggServer::Stage::kShares);
}

bool SecureRound::CollectingMaskedInputs() const {
  return server_ && server_->stage() == SecAggServer::Stage::kMaskedInput;
}

bool SecureRound::TakesTrainee(const std::string& site) const {
  return server_ && server_->stage() == SecAggServer::Stage::kKeys && !server_->Advertised(site);
}

Status SecureRound::Add(const std::string& site, const SecAggMessage& m, std::string* excluded) {
  excluded->clear();
  if (!server_ || !config_ || m.round != config_->round || m.attempt != config_->attempt) {
    return Status::FailedPrecondition("round " + std::to_string(m.round) + " attempt " +
                                      std::to_string(m.attempt) +
                                      " has no secure-aggregation stage open");
  }
  std::string refused;
  switch (m.stage) {
    case SecAggMessage::Stage::kKeys:
      refused = server_->AddKeys(site, m.keys);
      if (!refused.empty() && server_->excluded().count(site)) *excluded = refused;
      break;
    case SecAggMessage::Stage::kShares:
      refused = server_->AddShares(site, m.shares);
      break;
    case SecAggMessage::Stage::kUnmask:
      refused = server_->AddUnmaskShares(site, m.unmask);
      break;
    case SecAggMessage::Stage::kNone:
      refused = "empty secure-aggregation message";
  }
  if (!refused.empty()) return Status::FailedPrecondition(refused);
  return Status::OK();
}

Status SecureRound::AddMaskedInput(const std::string& site, const UpdateHeader& header,
                                   const std::string& bytes) {
  if (!CollectingMaskedInputs() || !config_ || config_->round != header.info.round) {
    return Status::FailedPrecondition("round " + std::to_string(header.info.round) +
                                      " is not collecting masked inputs now");
  }
  for (const uint32_t v : header.info.secagg_complaints) {
    if (v < 1 || v > config_->participants.size()) {
      return Status::InvalidArgument("masked input of " + site + " complains about participant " +
                                     std::to_string(v) + ", which this round does not have");
    }
  }
  MaskedInput input;
  try {
    input.masked = DecodeMaskedInput(bytes, "masked input of " + site);
  } catch (const FormatError& e) {
    return Status::InvalidArgument(e.what());
  }
  input.complaints = header.info.secagg_complaints;
  const std::string refused = server_->AddMaskedInput(site, std::move(input));
  if (!refused.empty()) return Status::FailedPrecondition(refused);
  return Status::OK();
}

bool SecureRound::Answer(const std::string& site, const SecAggPoll& poll, SecAggStage* out) const {
  const auto abort = [out](const std::string& why) {
    out->status = SecAggStage::Status::kAborted;
    out->reason = why;
    return true;
  };
  const uint32_t index = config_ ? config_->IndexOf(site) : 0;
  if (server_ && index != 0) {
    const auto stage = server_->stage();
    if (poll.stage == 1 && stage != SecAggServer::Stage::kKeys) {
      // Each site gets its own keys and its neighbours' (with SecAgg+, only those: what it
      // uses; the others' would only cost bandwidth, O(n) per site).
      const std::vector<uint32_t> mine = config_->Neighbours(index);
      bool in = false;
      for (const AdvertisedKeys& k : server_->u1()) {
        if (k.index == index) in = true;
        if (k.index == index || std::binary_search(mine.begin(), mine.end(), k.index)) {
          out->keys.push_back(k);
        }
      }
      if (!in) return abort(site + " did not advertise valid keys in time");
      out->status = SecAggStage::Status::kReady;
      return true;
    }
    if (poll.stage == 2 && stage != SecAggServer::Stage::kKeys &&
        stage != SecAggServer::Stage::kShares) {
      const auto& u2 = server_->u2();
      if (!std::binary_search(u2.begin(), u2.end(), index)) {
        return abort(site + " did not share its keys in time");
      }
      out->inbox = server_->InboxFor(index);
      out->u2 = u2;
      out->status = SecAggStage::Status::kReady;
      return true;
    }
  }
  if (poll.stage == 3 && !u3_.empty()) {
    if (!std::binary_search(u3_.begin(), u3_.end(), index)) {
      return abort(site + " is not among the round's survivors");
    }
    out->u3 = u3_;
    out->status = SecAggStage::Status::kReady;
    return true;
  }
  return false;
}

SecureRound::Step SecureRound::Close(bool timeout) {
  if (!server_) return Step::kNothing;
  switch (server_->stage()) {
    case SecAggServer::Stage::kKeys:
      if (!timeout && !server_->KeysComplete()) return Step::kNothing;
      server_->CloseKeys();
      return Step::kKeysClosed;
    case SecAggServer::Stage::kShares:
      if (!timeout && !server_->SharesComplete()) return Step::kNothing;
      server_->CloseShares();
      return Step::kSharesClosed;
    case SecAggServer::Stage::kUnmasking:
      if (!timeout && !server_->UnmaskComplete()) return Step::kNothing;
      return Step::kUnmask;
    default:
      return Step::kNothing;
  }
}

bool SecureRound::MaskedInputComplete() const {
  return CollectingMaskedInputs() && server_->MaskedInputComplete();
}

const std::vector<uint32_t>& SecureRound::CloseMaskedInput() {
  u3_ = server_->CloseMaskedInput();
  return u3_;
}

std::map<std::string, std::string> SecureRound::excluded() const {
  return server_ ? server_->excluded() : std::map<std::string, std::string>{};
}

std::vector<std::string> SecureRound::Dropped() const {
  std::vector<std::string> dropped;
  if (!server_ || !config_) return dropped;
  for (const uint32_t v : server_->u2()) {
    const std::string& site = config_->SiteAt(v);
    if (!std::binary_search(u3_.begin(), u3_.end(), v) && !server_->excluded().count(site)) {
      dropped.push_back(site);
    }
  }
  return dropped;
}

std::shared_ptr<SecAggServer> SecureRound::TakeServer() { return std::move(server_); }

SecureRound::Result SecureRound::Unmask(SecAggServer& server, const ModelState& layout) {
  const SecAggSum sum = server.Unmask();
  Result result;
  result.contributors = sum.contributors;
  result.total_samples = sum.total_samples;
  // The weighted mean update: sum_k (n_k / n_ref) delta_k * n_ref / N.
  const double scale = static_cast<double>(server.config().weight_normalizer) /
                       static_cast<double>(sum.total_samples);
  result.mean = layout;
  size_t i = 0;
  for (NamedTensor& t : result.mean.tensors) {
    for (float& v : t.values) v = static_cast<float>(sum.weighted_sum[i++] * scale);
  }
  return result;
}

}  // namespace fedmed
