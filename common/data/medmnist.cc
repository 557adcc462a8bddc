#include "common/data/medmnist.h"

#include <algorithm>
#include <array>

#include "common/data/npz.h"
#include "common/util/error.h"

namespace fedmed {

namespace {

constexpr std::array<Split, 3> kSplits = {Split::kTrain, Split::kVal, Split::kTest};

std::string ArrayName(Split split, const char* kind) {
  return std::string(SplitName(split)) + "_" + kind;
}

// Reads `<split>_labels` as class indices, checking shape (N,1) or (N,) and the range
// [0, kMaxClasses).
std::vector<int64_t> ReadLabels(const NpzFile& npz, Split split) {
  const std::string name = ArrayName(split, "labels");
  const NpyArray array = npz.Read(name);
  const std::string where = npz.path() + ": array '" + name + "'";
  const auto& shape = array.shape;
  if (shape.size() == 2 && shape[1] > 1) {
    throw DataError(where + " has shape " + FormatShape(shape) +
                    ": multi-label datasets (one column per label, e.g. ChestMNIST) are not "
                    "supported; expected (N,1) or (N,) class indices");
  }
  if (shape.empty() || shape.size() > 2 || (shape.size() == 2 && shape[1] != 1)) {
    throw DataError(where + " has shape " + FormatShape(shape) +
                    " but expected (N,1) or (N,) integer class indices");
  }
  std::vector<int64_t> labels = NpyToInt64(array, npz.path() + ":" + name + ".npy");
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0) {
      throw DataError(where + " holds the negative label " + std::to_string(labels[i]) +
                      " at row " + std::to_string(i) + "; expected class indices >= 0");
    }
    if (labels[i] >= kMaxClasses) {
      throw DataError(where + " holds the label " + std::to_string(labels[i]) + " at row " +
                      std::to_string(i) + "; class indices must be below " +
                      std::to_string(kMaxClasses) + " (kMaxClasses)");
    }
  }
  return labels;
}

// Reads `<split>_images` into `set` (geometry and pixels), checking dtype and shape.
void ReadImages(const NpzFile& npz, Split split, ImageSet* set) {
  const std::string name = ArrayName(split, "images");
  const NpyArray array = npz.Read(name);
  const auto& shape = array.shape;
  const bool rgb = shape.size() == 4 && shape[3] == 3;
  if (array.dtype != "|u1" || (shape.size() != 3 && !rgb)) {
    throw DataError(npz.path() + ": array '" + name + "' has shape " + FormatShape(shape) +
                    " and dtype " + array.dtype +
                    " but expected (N,H,W) or (N,H,W,3) uint8 (|u1)");
  }
  if (shape[0] != set->size()) {
    throw DataError(npz.path() + ": array '" + name + "' has " + std::to_string(shape[0]) +
                    " images but '" + ArrayName(split, "labels") + "' has " +
                    std::to_string(set->size()) + " labels; expected equal counts");
  }
  set->height = shape[1];
  set->width = shape[2];
  set->channels = rgb ? 3 : 1;
  set->pixels.assign(array.data.begin(), array.data.end());
}

// Checks that `set` has the geometry of `reference` (the first split loaded).
void CheckSameGeometry(const std::string& path, const ImageSet& reference, Split reference_split,
                       const ImageSet& set, Split split) {
  if (set.height != reference.height || set.width != reference.width ||
      set.channels != reference.channels) {
    auto geometry = [](const ImageSet& s) {
      return "H,W,C = " + std::to_string(s.height) + "," + std::to_string(s.width) + "," +
             std::to_string(s.channels);
    };
    throw DataError(path + ": array '" + ArrayName(split, "images") + "' has " + geometry(set) +
                    " but '" + ArrayName(reference_split, "images") + "' has " +
                    geometry(reference) + "; expected all splits to have the same geometry");
  }
}

// Reads every split's labels (into sets[0..2]) and returns 1 + the largest label.
int64_t ReadAllLabels(const NpzFile& npz, std::array<ImageSet, 3>* sets) {
  int64_t max_label = -1;
  for (size_t s = 0; s < kSplits.size(); ++s) {
    (*sets)[s].labels = ReadLabels(npz, kSplits[s]);
    for (int64_t label : (*sets)[s].labels) max_label = std::max(max_label, label);
  }
  for (ImageSet& set : *sets) set.num_classes = max_label + 1;
  return max_label + 1;
}

}  // namespace

Split ParseSplit(const std::string& name) {
  for (Split split : kSplits) {
    if (name == SplitName(split)) return split;
  }
  throw ConfigError("unknown split '" + name + "'; expected one of: train, val, test");
}

const char* SplitName(Split split) {
  switch (split) {
    case Split::kTrain:
      return "train";
    case Split::kVal:
      return "val";
    case Split::kTest:
      return "test";
  }
  return "unknown";
}

const ImageSet& MedMnist::split(Split s) const {
  switch (s) {
    case Split::kTrain:
      return train;
    case Split::kVal:
      return val;
    case Split::kTest:
      return test;
  }
  return train;
}

MedMnist LoadMedMnist(const std::string& path) {
  const NpzFile npz = NpzFile::Open(path);
  std::array<ImageSet, 3> sets;
  MedMnist data;
  data.num_classes = ReadAllLabels(npz, &sets);
  for (size_t s = 0; s < kSplits.size(); ++s) {
    ReadImages(npz, kSplits[s], &sets[s]);
    CheckSameGeometry(path, sets[0], kSplits[0], sets[s], kSplits[s]);
  }
  data.train = std::move(sets[0]);
  data.val = std::move(sets[1]);
  data.test = std::move(sets[2]);
  return data;
}

ImageSet LoadMedMnistSplit(const std::string& path, Split split) {
  const NpzFile npz = NpzFile::Open(path);
  std::array<ImageSet, 3> sets;
  ReadAllLabels(npz, &sets);
  ImageSet& set = sets[static_cast<size_t>(split)];
  ReadImages(npz, split, &set);
  return std::move(set);
}

}  // namespace fedmed
