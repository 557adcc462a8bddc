// Shared by the tests of aggregation (fedavg_aggregator_test, strategy_test): a small model whose
// values are easy to compute by hand.
#ifndef FEDMED_TESTS_COORDINATOR_STRATEGY_TEST_UTIL_H_
#define FEDMED_TESTS_COORDINATOR_STRATEGY_TEST_UTIL_H_

#include <utility>
#include <vector>

#include "common/model/model_state.h"

namespace fedmed::testing {

// A two-tensor model: "fc.weight" [2, 2] = `w` and "fc.bias" [2] = `b`; six values in all.
inline ModelState State(std::vector<float> w, std::vector<float> b) {
  ModelState s;
  s.tensors.push_back(NamedTensor{"fc.weight", {2, 2}, std::move(w)});
  s.tensors.push_back(NamedTensor{"fc.bias", {2}, std::move(b)});
  return s;
}

}  // namespace fedmed::testing

#endif  // FEDMED_TESTS_COORDINATOR_STRATEGY_TEST_UTIL_H_
