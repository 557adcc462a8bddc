#include "common/transport/wire.h"

#include <chrono>
#include <cmath>
#include <optional>

#include "common/transport/secagg_wire.h"
#include "common/util/error.h"
#include "proto/fedmed.pb.h"

namespace fedmed {

namespace {

void ToProto(const ModelSpec& in, v1::ModelSpec* out) {
  out->set_name(in.name);
  out->set_in_channels(in.in_channels);
  out->set_num_classes(in.num_classes);
  out->set_image_size(in.image_size);
}

ModelSpec FromProto(const v1::ModelSpec& in) {
  ModelSpec out;
  out.name = in.name();
  out.in_channels = in.in_channels();
  out.num_classes = in.num_classes();
  out.image_size = in.image_size();
  return out;
}

void ToProto(const TrainSettings& in, v1::TrainSettings* out) {
  out->set_local_epochs(in.local_epochs);
  out->set_batch_size(in.batch_size);
  out->set_optimizer(in.optimizer);
  out->set_learning_rate(in.learning_rate);
  out->set_momentum(in.momentum);
  out->set_weight_decay(in.weight_decay);
  out->set_seed(in.seed);
  out->set_proximal_mu(in.proximal_mu);
  for (const std::string& layer : in.frozen_layers) out->add_frozen_layers(layer);
}

TrainSettings FromProto(const v1::TrainSettings& in) {
  TrainSettings out;
  out.local_epochs = in.local_epochs();
  out.batch_size = in.batch_size();
  out.optimizer = in.optimizer();
  out.learning_rate = in.learning_rate();
  out.momentum = in.momentum();
  out.weight_decay = in.weight_decay();
  out.seed = in.seed();
  out.proximal_mu = in.proximal_mu();
  out.frozen_layers.assign(in.frozen_layers().begin(), in.frozen_layers().end());
  return out;
}

int64_t DeadlineMillis(double seconds_left, int64_t now_unix_ms) {
  return now_unix_ms + static_cast<int64_t>(std::llround(seconds_left * 1000.0));
}

}  // namespace

int64_t UnixMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void ToProto(const RegistrationInfo& in, v1::RegisterRequest* out) {
  out->set_site_name(in.site_name);
  out->set_num_train_samples(in.num_train_samples);
  out->set_num_test_samples(in.num_test_samples);
  out->set_in_channels(in.in_channels);
  out->set_num_classes(in.num_classes);
  out->set_software_version(in.software_version);
  for (const std::string& c : in.capabilities) out->add_capabilities(c);
  out->set_preprocessing(in.preprocessing);
  if (in.architecture) {
    out->set_architecture_digest(in.architecture->digest);
    for (const ParameterShape& p : in.architecture->parameters) {
      v1::ParameterShape* shape = out->add_architecture();
      shape->set_name(p.name);
      for (const int64_t d : p.shape) shape->add_shape(d);
    }
  }
}

RegistrationInfo FromProto(const v1::RegisterRequest& in) {
  RegistrationInfo out;
  out.site_name = in.site_name();
  out.num_train_samples = in.num_train_samples();
  out.num_test_samples = in.num_test_samples();
  out.in_channels = in.in_channels();
  out.num_classes = in.num_classes();
  out.software_version = in.software_version();
  out.capabilities.assign(in.capabilities().begin(), in.capabilities().end());
  out.preprocessing = in.preprocessing();
  if (!in.architecture_digest().empty()) {
    ModelArchitecture a;
    a.digest = in.architecture_digest();
    for (const v1::ParameterShape& p : in.architecture()) {
      a.parameters.push_back(ParameterShape{p.name(), {p.shape().begin(), p.shape().end()}});
    }
    out.architecture = std::move(a);
  }
  return out;
}

void ToProto(const Registration& in, v1::RegisterReply* out) {
  out->set_session_id(in.session_id);
  out->set_federation(in.federation);
  out->set_total_rounds(in.total_rounds);
}

Registration FromProto(const v1::RegisterReply& in) {
  return Registration{in.session_id(), in.federation(), in.total_rounds()};
}

void ToProto(const HelloAnswer& in, v1::HelloReply* out) {
  out->set_federation(in.federation);
  out->set_coordinator_version(in.coordinator_version);
  out->set_unix_ms(in.unix_ms);
  out->set_site(in.site);
}

HelloAnswer FromProto(const v1::HelloReply& in) {
  return HelloAnswer{in.federation(), in.coordinator_version(), in.unix_ms(), in.site()};
}

void ToProto(const ModelRef& in, v1::ModelRef* out) {
  out->set_version(in.version);
  out->set_sha256(in.sha256);
  out->set_size_bytes(in.size_bytes);
}

ModelRef FromProto(const v1::ModelRef& in) {
  return ModelRef{in.version(), in.sha256(), in.size_bytes()};
}

void ToProto(const SiteTask& in, int64_t now_unix_ms, v1::Task* out) {
  switch (in.kind) {
    case SiteTask::Kind::kWait:
      out->mutable_wait()->set_poll_again_ms(0);
      break;
    case SiteTask::Kind::kTrain: {
      v1::TrainTask* t = out->mutable_train();
      t->set_round(in.round);
      ToProto(in.model, t->mutable_model());
      ToProto(in.spec, t->mutable_spec());
      ToProto(in.settings, t->mutable_settings());
      t->set_preprocessing(in.preprocessing);
      if (in.secure) ToProto(*in.secure, t->mutable_secure_aggregation());
      t->set_update_encoding(in.update_encoding);
      t->set_deadline_unix_ms(DeadlineMillis(in.seconds_left, now_unix_ms));
      break;
    }
    case SiteTask::Kind::kEvaluate: {
      v1::EvaluateTask* t = out->mutable_evaluate();
      t->set_round(in.round);
      ToProto(in.model, t->mutable_model());
      ToProto(in.spec, t->mutable_spec());
      t->set_batch_size(in.eval_batch_size);
      t->set_preprocessing(in.preprocessing);
      t->set_deadline_unix_ms(DeadlineMillis(in.seconds_left, now_unix_ms));
      break;
    }
    case SiteTask::Kind::kFinish:
      out->mutable_finish()->set_reason(in.finish_reason);
      break;
  }
}

SiteTask FromProto(const v1::Task& in, int64_t now_unix_ms) {
  SiteTask task;
  auto seconds_left = [now_unix_ms](int64_t deadline_ms) {
    return static_cast<double>(deadline_ms - now_unix_ms) / 1000.0;
  };
  switch (in.kind_case()) {
    case v1::Task::kTrain: {
      const v1::TrainTask& t = in.train();
      task.kind = SiteTask::Kind::kTrain;
      task.round = t.round();
      task.model = FromProto(t.model());
      task.spec = FromProto(t.spec());
      task.settings = FromProto(t.settings());
      task.preprocessing = t.preprocessing();
      if (t.has_secure_aggregation()) task.secure = FromProto(t.secure_aggregation(), t.round());
      task.update_encoding = t.update_encoding();
      task.seconds_left = seconds_left(t.deadline_unix_ms());
      break;
    }
    case v1::Task::kEvaluate: {
      const v1::EvaluateTask& t = in.evaluate();
      task.kind = SiteTask::Kind::kEvaluate;
      task.round = t.round();
      task.model = FromProto(t.model());
      task.spec = FromProto(t.spec());
      task.eval_batch_size = t.batch_size();
      task.preprocessing = t.preprocessing();
      task.seconds_left = seconds_left(t.deadline_unix_ms());
      break;
    }
    case v1::Task::kFinish:
      task.kind = SiteTask::Kind::kFinish;
      task.finish_reason = in.finish().reason();
      break;
    default:
      task.kind = SiteTask::Kind::kWait;
  }
  return task;
}

void ToProto(const PrivacySpend& in, v1::PrivacySpend* out) {
  out->set_mechanism(PrivacyModeName(in.mechanism.mode));
  out->set_noise_multiplier(in.mechanism.noise_multiplier);
  out->set_clipping_norm(in.mechanism.clipping_norm);
  out->set_sampling_rate(in.mechanism.sampling_rate);
  out->set_steps(in.mechanism.steps);
  out->set_delta(in.delta);
  out->set_epsilon_round(in.epsilon_round);
  out->set_epsilon_total(in.epsilon_total);
  out->set_budget_epsilon(in.budget_epsilon);
}

PrivacySpend FromProto(const v1::PrivacySpend& in) {
  PrivacySpend out;
  const std::optional<PrivacyMode> mode = ParsePrivacyMode(in.mechanism());
  if (!mode) {
    throw FormatError("privacy.mechanism \"" + in.mechanism().substr(0, 64) +
                      "\": expected \"none\", \"dp-sgd\" or \"update\"");
  }
  out.mechanism.mode = *mode;
  out.mechanism.noise_multiplier = in.noise_multiplier();
  out.mechanism.clipping_norm = in.clipping_norm();
  out.mechanism.sampling_rate = in.sampling_rate();
  out.mechanism.steps = in.steps();
  out.delta = in.delta();
  out.epsilon_round = in.epsilon_round();
  out.epsilon_total = in.epsilon_total();
  out.budget_epsilon = in.budget_epsilon();
  return out;
}

void ToProto(const UpdateHeader& in, v1::UpdateHeader* out) {
  const UpdateInfo& info = in.info;
  out->set_session_id(in.session_id);
  out->set_round(info.round);
  out->set_base_version(info.base_version);
  out->set_num_samples(info.num_samples);
  out->set_size_bytes(in.size_bytes);
  out->set_sha256(in.sha256);
  out->set_local_steps(info.local_steps);
  out->set_train_loss(info.train_loss);
  out->set_train_seconds(info.train_seconds);
  out->set_compute_wait_seconds(info.compute_wait_seconds);
  if (in.has_privacy) ToProto(info.privacy, out->mutable_privacy());
  out->set_log_seq(info.log_seq);
  out->set_log_entry_sha256(info.log_entry_sha256);
  out->set_secure(info.secure);
  for (uint32_t v : info.secagg_complaints) out->add_secagg_complaints(v);
  out->set_offset(in.offset);
}

UpdateHeader FromProto(const v1::UpdateHeader& in) {
  UpdateHeader out;
  out.session_id = in.session_id();
  out.size_bytes = in.size_bytes();
  out.sha256 = in.sha256();
  UpdateInfo& info = out.info;
  info.round = in.round();
  info.base_version = in.base_version();
  info.num_samples = in.num_samples();
  info.local_steps = in.local_steps();
  info.train_loss = in.train_loss();
  info.train_seconds = in.train_seconds();
  info.compute_wait_seconds = in.compute_wait_seconds();
  out.has_privacy = in.has_privacy();
  if (out.has_privacy) info.privacy = FromProto(in.privacy());
  info.log_seq = in.log_seq();
  info.log_entry_sha256 = in.log_entry_sha256();
  info.secure = in.secure();
  info.secagg_complaints.assign(in.secagg_complaints().begin(), in.secagg_complaints().end());
  out.offset = in.offset();
  return out;
}

void ToProto(const ClassificationMetrics& in, v1::Metrics* out) {
  out->set_num_samples(in.num_samples);
  out->set_num_classes(in.num_classes);
  out->set_loss(in.loss);
  out->set_accuracy(in.accuracy);
  out->set_balanced_accuracy(in.balanced_accuracy);
  out->set_auc(in.auc);
  out->set_f1(in.f1);
  out->set_sensitivity(in.sensitivity);
  out->set_specificity(in.specificity);
  for (int64_t c : in.confusion) out->add_confusion(c);
}

ClassificationMetrics FromProto(const v1::Metrics& in) {
  ClassificationMetrics out;
  out.num_samples = in.num_samples();
  out.num_classes = in.num_classes();
  out.loss = in.loss();
  out.accuracy = in.accuracy();
  out.balanced_accuracy = in.balanced_accuracy();
  out.auc = in.auc();
  out.f1 = in.f1();
  out.sensitivity = in.sensitivity();
  out.specificity = in.specificity();
  out.confusion.assign(in.confusion().begin(), in.confusion().end());
  return out;
}

void ToProto(const EvaluationReport& in, v1::EvaluationReport* out) {
  out->set_session_id(in.session_id);
  out->set_round(in.round);
  out->set_model_version(in.model_version);
  out->set_eval_seconds(in.eval_seconds);
  ToProto(in.metrics, out->mutable_metrics());
}

EvaluationReport FromProto(const v1::EvaluationReport& in) {
  EvaluationReport out;
  out.session_id = in.session_id();
  out.round = in.round();
  out.model_version = in.model_version();
  out.metrics = FromProto(in.metrics());
  out.eval_seconds = in.eval_seconds();
  return out;
}

void ToProto(const DeclineRequest& in, v1::DeclineRequest* out) {
  out->set_session_id(in.session_id);
  out->set_round(in.round);
  out->set_reason(in.reason);
  if (in.privacy) ToProto(*in.privacy, out->mutable_privacy());
}

DeclineRequest FromProto(const v1::DeclineRequest& in) {
  DeclineRequest out;
  out.session_id = in.session_id();
  out.round = in.round();
  out.reason = in.reason();
  if (in.has_privacy()) out.privacy = FromProto(in.privacy());
  return out;
}

void ToProto(const SecAggMessage& in, v1::SecAggMessage* out) {
  out->set_session_id(in.session_id);
  out->set_round(in.round);
  out->set_attempt(in.attempt);
  switch (in.stage) {
    case SecAggMessage::Stage::kKeys:
      ToProto(in.keys, out->mutable_keys());
      break;
    case SecAggMessage::Stage::kShares:
      for (const EncryptedShare& e : in.shares) ToProto(e, out->mutable_shares()->add_shares());
      break;
    case SecAggMessage::Stage::kUnmask:
      for (const UnmaskShare& s : in.unmask) ToProto(s, out->mutable_unmask()->add_shares());
      break;
    case SecAggMessage::Stage::kNone:
      break;
  }
}

SecAggMessage FromProto(const v1::SecAggMessage& in) {
  SecAggMessage out;
  out.session_id = in.session_id();
  out.round = in.round();
  out.attempt = in.attempt();
  switch (in.stage_case()) {
    case v1::SecAggMessage::kKeys:
      out.stage = SecAggMessage::Stage::kKeys;
      out.keys = FromProto(in.keys());
      break;
    case v1::SecAggMessage::kShares:
      out.stage = SecAggMessage::Stage::kShares;
      for (const v1::SecAggShare& e : in.shares().shares()) out.shares.push_back(FromProto(e));
      break;
    case v1::SecAggMessage::kUnmask:
      out.stage = SecAggMessage::Stage::kUnmask;
      for (const v1::SecAggUnmaskShare& e : in.unmask().shares()) {
        out.unmask.push_back(FromProto(e));
      }
      break;
    default:
      out.stage = SecAggMessage::Stage::kNone;
  }
  return out;
}

void ToProto(const SecAggPoll& in, v1::SecAggPoll* out) {
  out->set_session_id(in.session_id);
  out->set_round(in.round);
  out->set_attempt(in.attempt);
  out->set_stage(in.stage);
  out->set_wait_ms(in.wait_ms);
}

SecAggPoll FromProto(const v1::SecAggPoll& in) {
  SecAggPoll out;
  out.session_id = in.session_id();
  out.round = in.round();
  out.attempt = in.attempt();
  out.stage = in.stage();
  out.wait_ms = in.wait_ms();
  return out;
}

void ToProto(const SecAggStage& in, v1::SecAggBroadcast* out) {
  switch (in.status) {
    case SecAggStage::Status::kReady:
      out->set_status(v1::SecAggBroadcast::READY);
      break;
    case SecAggStage::Status::kAborted:
      out->set_status(v1::SecAggBroadcast::ABORTED);
      break;
    case SecAggStage::Status::kWait:
      out->set_status(v1::SecAggBroadcast::WAIT);
      break;
  }
  out->set_reason(in.reason);
  for (const AdvertisedKeys& k : in.keys) ToProto(k, out->add_keys());
  for (const EncryptedShare& e : in.inbox) ToProto(e, out->add_inbox());
  for (uint32_t v : in.u2) out->add_u2(v);
  for (uint32_t v : in.u3) out->add_u3(v);
}

SecAggStage FromProto(const v1::SecAggBroadcast& in) {
  SecAggStage out;
  switch (in.status()) {
    case v1::SecAggBroadcast::READY:
      out.status = SecAggStage::Status::kReady;
      break;
    case v1::SecAggBroadcast::ABORTED:
      out.status = SecAggStage::Status::kAborted;
      break;
    default:
      out.status = SecAggStage::Status::kWait;
  }
  out.reason = in.reason();
  for (const v1::SecAggKeys& k : in.keys()) out.keys.push_back(FromProto(k));
  for (const v1::SecAggShare& e : in.inbox()) out.inbox.push_back(FromProto(e));
  out.u2.assign(in.u2().begin(), in.u2().end());
  out.u3.assign(in.u3().begin(), in.u3().end());
  return out;
}

}  // namespace fedmed
