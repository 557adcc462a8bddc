// MedMNIST 2D datasets (Yang et al., "MedMNIST v2 - A large-scale lightweight benchmark for 2D and
// 3D biomedical image classification", Scientific Data 2023).
//
// A MedMNIST .npz file holds six arrays:
//   train_images, val_images, test_images: uint8, (N, H, W) grayscale or (N, H, W, 3) RGB
//                                          channels-last; any H, W (28, 64, 128 and 224 exist)
//   train_labels, val_labels, test_labels: integer class indices, (N, 1) or (N,)
// Every single-label 2D dataset (PathMNIST, PneumoniaMNIST, DermaMNIST, BloodMNIST, ...) loads.
// Multi-label files (labels (N, K) with K > 1, i.e. ChestMNIST) are refused.
#ifndef FEDMED_COMMON_DATA_MEDMNIST_H_
#define FEDMED_COMMON_DATA_MEDMNIST_H_

#include <string>

#include "common/data/image_set.h"

namespace fedmed {

enum class Split { kTrain, kVal, kTest };

// "train" | "val" | "test". Throws ConfigError naming the accepted values otherwise.
Split ParseSplit(const std::string& name);

// "train", "val" or "test".
const char* SplitName(Split split);

struct MedMnist {
  ImageSet train, val, test;
  // 1 + the largest label of all three splits; equal to each split's num_classes.
  int64_t num_classes = 0;

  const ImageSet& split(Split s) const;
};

// Loads all three splits of the MedMNIST file at `path`.
// Throws DataError naming the file, the array and what was expected when: the file is missing or
// not an .npz archive; an array is missing; images are not uint8 (N,H,W) or (N,H,W,3); labels are
// not an integer (N,1) or (N,) array (multi-label (N,K) files are refused as unsupported); a
// split's image and label counts differ; the splits' H, W or C differ; or a label is negative or
// not below kMaxClasses (image_set.h). Arrays are read with NpzFile::Read's default bound
// (kDefaultMaxNpyBytes, npz.h).
MedMnist LoadMedMnist(const std::string& path);

// Loads one split only (the other splits' images are not read). num_classes is still computed
// from the labels of all three splits, so it agrees with LoadMedMnist. Throws as LoadMedMnist,
// except that the other splits' image arrays are not checked.
ImageSet LoadMedMnistSplit(const std::string& path, Split split);

}  // namespace fedmed

#endif  // FEDMED_COMMON_DATA_MEDMNIST_H_
