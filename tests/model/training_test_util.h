// Shared by the tests of local training on real images (local_training_test,
// fedprox_training_test): a suite fixture holding the first images of PneumoniaMNIST, the cnn
// and its initial model.
#ifndef FEDMED_TESTS_MODEL_TRAINING_TEST_UTIL_H_
#define FEDMED_TESTS_MODEL_TRAINING_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <vector>

#include "common/data/medmnist.h"
#include "common/model/local_training.h"
#include "common/util/data_path.h"

namespace fedmed::testing {

// The first `n` images of `set`, in order.
inline ImageSet FirstImages(const ImageSet& set, int64_t n) {
  std::vector<int64_t> first(static_cast<size_t>(n));
  std::iota(first.begin(), first.end(), 0);
  return set.Subset(first);
}

// A suite on the first `kTrainImages` PneumoniaMNIST training images (train_) and the first
// `kValImages` validation images (val_), with the cnn for them (spec_: 1 channel, 2 classes,
// 28 px) and its initial model with seed 1 (global_). One compute thread, so that results are
// reproducible.
template <int64_t kTrainImages, int64_t kValImages = 0>
class PneumoniaTrainingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SetComputeThreads(1);
    const MedMnist data = LoadMedMnist(ResolveDataPath("medmnist/pneumoniamnist.npz"));
    train_ = new ImageSet(FirstImages(data.train, kTrainImages));
    val_ = new ImageSet(FirstImages(data.val, kValImages));
    global_ = new ModelState(InitialModelState(spec_, 1));
  }
  static void TearDownTestSuite() {
    delete train_;
    delete val_;
    delete global_;
  }

  // One local epoch of SGD (momentum 0.9, the default), batch 32, learning rate 0.01.
  static TrainSettings Settings(uint64_t seed) {
    TrainSettings s;
    s.local_epochs = 1;
    s.batch_size = 32;
    s.learning_rate = 0.01;
    s.seed = seed;
    return s;
  }

  static inline const ModelSpec spec_{"cnn", 1, 2, 28};
  static inline ImageSet* train_ = nullptr;
  static inline ImageSet* val_ = nullptr;
  static inline ModelState* global_ = nullptr;
};

}  // namespace fedmed::testing

#endif  // FEDMED_TESTS_MODEL_TRAINING_TEST_UTIL_H_
