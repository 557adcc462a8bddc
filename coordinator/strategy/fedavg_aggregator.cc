#include "coordinator/strategy/fedavg_aggregator.h"

#include "common/util/error.h"

namespace fedmed {

FedAvgAggregator::FedAvgAggregator(const ModelState& layout) {
  for (const NamedTensor& t : layout.tensors) {
    layout_.tensors.push_back(NamedTensor{t.name, t.shape, std::vector<float>(t.values.size())});
    sums_.emplace_back(t.values.size(), 0.0);
  }
}

void FedAvgAggregator::Add(const ModelState& delta, int64_t num_samples, const std::string& what) {
  if (num_samples < 1) {
    throw ConfigError(what + ": sample count must be >= 1, got " + std::to_string(num_samples));
  }
  CheckSameLayout(layout_, delta, what);
  const double weight = static_cast<double>(num_samples);
  std::lock_guard<std::mutex> lock(mu_);
  for (std::size_t i = 0; i < sums_.size(); ++i) {
    std::vector<double>& sum = sums_[i];
    const std::vector<float>& values = delta.tensors[i].values;
    for (std::size_t j = 0; j < sum.size(); ++j) sum[j] += weight * values[j];
  }
  ++contributions_;
  total_samples_ += num_samples;
}

ModelState FedAvgAggregator::Apply(const ModelState& global) const {
  CheckSameLayout(layout_, global, "global model");
  std::lock_guard<std::mutex> lock(mu_);
  if (contributions_ == 0) throw Error("FedAvg: no update to aggregate");
  const double inv_total = 1.0 / static_cast<double>(total_samples_);
  ModelState next = global;
  for (std::size_t i = 0; i < sums_.size(); ++i) {
    std::vector<float>& values = next.tensors[i].values;
    for (std::size_t j = 0; j < values.size(); ++j) {
      values[j] = static_cast<float>(static_cast<double>(values[j]) + sums_[i][j] * inv_total);
    }
  }
  return next;
}

void FedAvgAggregator::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  for (std::vector<double>& sum : sums_) std::fill(sum.begin(), sum.end(), 0.0);
  contributions_ = 0;
  total_samples_ = 0;
}

int FedAvgAggregator::contributions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return contributions_;
}

int64_t FedAvgAggregator::total_samples() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_samples_;
}

}  // namespace fedmed
