#include "coordinator/strategy/fedopt_strategy.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/util/error.h"

namespace fedmed {

namespace {

const char* VariantName(FedOptVariant variant) {
  switch (variant) {
    case FedOptVariant::kAdam: return "fedadam";
    case FedOptVariant::kYogi: return "fedyogi";
    case FedOptVariant::kAdagrad: return "fedadagrad";
  }
  return "fedopt";
}

void Require(bool ok, const std::string& strategy, const char* param, const char* expected,
             double got) {
  if (!ok) {
    throw ConfigError(strategy + ": " + param + " must be " + expected + ", got " +
                      std::to_string(got));
  }
}

double Sign(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }

constexpr double kFloatMax = std::numeric_limits<float>::max();

// The layout of `layout` with every value set to `value`.
ModelState Filled(const ModelState& layout, float value) {
  ModelState filled = layout;
  for (NamedTensor& t : filled.tensors) std::fill(t.values.begin(), t.values.end(), value);
  return filled;
}

}  // namespace

FedOptStrategy::FedOptStrategy(const FedOptParams& params) : params_(params) {
  const std::string n = name();
  const FedOptParams& p = params_;
  Require(std::isfinite(p.server_learning_rate) && p.server_learning_rate > 0, n,
          "server_learning_rate", "a finite number > 0", p.server_learning_rate);
  Require(p.beta1 >= 0 && p.beta1 < 1, n, "beta1", "in [0, 1)", p.beta1);
  Require(p.beta2 >= 0 && p.beta2 < 1, n, "beta2", "in [0, 1)", p.beta2);
  Require(std::isfinite(p.tau) && p.tau > 0, n, "tau", "a finite number > 0", p.tau);
}

std::string FedOptStrategy::name() const { return VariantName(params_.variant); }

void FedOptStrategy::DoBeginRound(const ModelState& layout) {
  if (!m_.tensors.empty()) {
    CheckSameLayout(layout, m_, name() + " server state (moments m and v) for the global model");
  }
  sum_ = std::make_unique<FedAvgAggregator>(layout);
}

void FedOptStrategy::DoAddUpdate(const ModelState& delta, int64_t num_samples) {
  sum_->Add(delta, num_samples, "update");
}

ModelState FedOptStrategy::DoAggregate(const ModelState& global) {
  // Δ_t: the weighted mean update, rounded to float32 once.
  const ModelState mean = sum_->Apply(Filled(global, 0.0f));
  const FedOptParams& p = params_;
  const bool first = m_.tensors.empty();
  ModelState m = first ? Filled(global, 0.0f) : m_;
  ModelState v = first ? Filled(global, static_cast<float>(p.tau * p.tau)) : v_;
  ModelState next = global;
  for (std::size_t i = 0; i < next.tensors.size(); ++i) {
    const std::vector<float>& delta = mean.tensors[i].values;
    std::vector<float>& mi = m.tensors[i].values;
    std::vector<float>& vi = v.tensors[i].values;
    std::vector<float>& xi = next.tensors[i].values;
    for (std::size_t j = 0; j < xi.size(); ++j) {
      const double d = delta[j];
      const double d2 = d * d;
      const double m_prev = mi[j];
      const double v_prev = vi[j];
      const double m_new = p.beta1 * m_prev + (1 - p.beta1) * d;
      double v_new = 0;
      switch (p.variant) {
        case FedOptVariant::kAdagrad: v_new = v_prev + d2; break;
        case FedOptVariant::kAdam: v_new = p.beta2 * v_prev + (1 - p.beta2) * d2; break;
        case FedOptVariant::kYogi: v_new = v_prev - (1 - p.beta2) * d2 * Sign(v_prev - d2); break;
      }
      const double x_new =
          static_cast<double>(xi[j]) + p.server_learning_rate * m_new / (std::sqrt(v_new) + p.tau);
      if (!(std::fabs(m_new) <= kFloatMax && v_new <= kFloatMax && std::fabs(x_new) <= kFloatMax)) {
        throw Error(name() + ": tensor '" + next.tensors[i].name + "' value " +
                    std::to_string(j) + ": the update is too large for float32 (mean update " +
                    std::to_string(d) + "); the round is not applied");
      }
      mi[j] = static_cast<float>(m_new);
      vi[j] = static_cast<float>(v_new);
      xi[j] = static_cast<float>(x_new);
    }
  }
  m_ = std::move(m);
  v_ = std::move(v);
  ++steps_;
  return next;
}

std::string FedOptStrategy::SaveState() const {
  if (m_.tensors.empty()) return "";
  ModelState state;
  state.tensors.push_back(NamedTensor{name() + ".steps", {}, {static_cast<float>(steps_)}});
  for (const NamedTensor& t : m_.tensors) {
    state.tensors.push_back(NamedTensor{"m/" + t.name, t.shape, t.values});
  }
  for (const NamedTensor& t : v_.tensors) {
    state.tensors.push_back(NamedTensor{"v/" + t.name, t.shape, t.values});
  }
  return EncodeModelState(state);
}

void FedOptStrategy::LoadState(const std::string& bytes) {
  const std::string what = name() + " server state";
  if (bytes.empty()) {
    m_ = ModelState();
    v_ = ModelState();
    steps_ = 0;
    return;
  }
  ModelState state = DecodeModelState(bytes, what);
  const std::string steps_name = name() + ".steps";
  if (state.tensors.empty() || state.tensors[0].name != steps_name ||
      !state.tensors[0].shape.empty()) {
    throw FormatError(what + ": expected a first tensor '" + steps_name + "' of rank 0, found " +
                      (state.tensors.empty() ? std::string("no tensor")
                                             : "'" + state.tensors[0].name + "'") +
                      " (a state saved by another strategy?)");
  }
  const float steps = state.tensors[0].values[0];
  if (!(steps >= 1 && steps <= 16777216.0f && steps == std::floor(steps))) {
    throw FormatError(what + ": '" + steps_name + "' must be an integer between 1 and 2^24, got " +
                      std::to_string(steps));
  }
  const std::size_t rest = state.tensors.size() - 1;
  if (rest == 0 || rest % 2 != 0) {
    throw FormatError(what + ": expected as many 'v/' tensors as 'm/' tensors, got " +
                      std::to_string(rest) + " tensors after the steps");
  }
  const std::size_t count = rest / 2;
  ModelState m, v;
  for (std::size_t i = 0; i < count; ++i) {
    NamedTensor& mt = state.tensors[1 + i];
    NamedTensor& vt = state.tensors[1 + count + i];
    if (mt.name.rfind("m/", 0) != 0 || vt.name.rfind("v/", 0) != 0 ||
        mt.name.substr(2) != vt.name.substr(2) || mt.shape != vt.shape) {
      throw FormatError(what + ": tensors '" + mt.name + "' and '" + vt.name +
                        "' should be 'm/<name>' and 'v/<name>' of the same shape");
    }
    for (const float value : vt.values) {
      if (!(value >= 0)) {
        throw FormatError(what + ": '" + vt.name + "' holds a negative second moment " +
                          std::to_string(value));
      }
    }
    m.tensors.push_back(NamedTensor{mt.name.substr(2), mt.shape, std::move(mt.values)});
    v.tensors.push_back(NamedTensor{vt.name.substr(2), vt.shape, std::move(vt.values)});
  }
  m_ = std::move(m);
  v_ = std::move(v);
  steps_ = static_cast<int64_t>(steps);
}

}  // namespace fedmed
