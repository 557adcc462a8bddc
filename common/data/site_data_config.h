// The [data] section of a site's configuration as a plain struct: which images a site trains on,
// in which format, which share of them, and how they are preprocessed and augmented. It lives
// with the data code (LoadSiteSplit, common/data/hospital/site_images.h, loads what it describes)
// so that loading data does not depend on the configuration library; common/config/site_config.h
// reads, validates and renders it (ValidateSiteDataConfig). Header only; no TOML. It describes
// every format (MedMNIST included) and is read by the configuration library, so it stays in
// common/data/ rather than common/data/hospital/ (whose library links stb and DCMTK).
#ifndef FEDMED_COMMON_DATA_SITE_DATA_CONFIG_H_
#define FEDMED_COMMON_DATA_SITE_DATA_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>

#include "common/data/augmentation_spec.h"
#include "common/data/image_set.h"
#include "common/data/preprocess.h"

namespace fedmed {

// Which part of the data file this site trains on. A real hospital uses all of its own data
// (partition "none"); demonstrations on one machine split one file across sites, the way
// hospitals differ (see common/data/partition.h).
//
// The hospital's images come in one of four formats (docs/DATA.md, "Hospital data"), loaded by
// LoadSiteSplit (common/data/hospital/site_images.h):
//   "medmnist"      path = a MedMNIST .npz archive (common/data/medmnist.h)
//   "image_folder"  path = a folder in torchvision's ImageFolder convention; with subfolders
//                   train/, val/, test/ each is a split, else every image is training data
//                   (common/data/hospital/image_folder.h)
//   "csv"           path = a CSV manifest path,label[,split] of PNG/JPEG files
//   "dicom"         path = a CSV manifest path,label[,split] or sop_instance_uid,label[,split] of
//                   DICOM files (common/data/hospital/dicom.h); dicom_dir, window_center/width
//                   apply
// Preprocessing (image_size, channels, normalization, mean, std, equalize; common/data/
// preprocess.h) applies to every format and must be the same at every site of a federation.
struct SiteDataConfig {
  std::string path;                 // the site's images: see format
  std::string partition = "none";   // "none" | "iid" | "dirichlet" | "quantity"
  int shard = 1;                    // 1-based, 1..num_shards
  int num_shards = 1;               // >= 1; must be 1 with partition "none"
  double alpha = 0.5;               // Dirichlet concentration (dirichlet, quantity); > 0
  uint64_t seed = 0;                // seed of the split, the same at every site; <= 2^63 - 1
  // (The fields below come after those above so that aggregate initialisers written before
  // they existed keep their meaning.)
  std::string format = "medmnist";  // "medmnist" | "image_folder" | "csv" | "dicom"
  // Image files (formats other than medmnist): the site refuses to start when more than this
  // fraction of a split's files are bad (undecodable, wrong channels or size, no label); in [0, 1].
  double max_bad_fraction = 0.05;
  int decode_threads = 0;           // background decoding threads; 0 = one per core; >= 0
  // Keys image_size, channels, normalization, mean (1 or 3 numbers), std, equalize.
  PreprocessSpec preprocess{};
  // DICOM only: window override (both or neither; width >= 1, modality units such as HU) and
  // the directory indexed for sop_instance_uid manifests (resolved like path).
  std::optional<double> window_center{}, window_width{};
  std::string dicom_dir{};
  // Training-time augmentation (keys augment_<field>; common/data/augmentation_spec.h); the site
  // agent copies it into TrainSettings::augmentation.
  AugmentationSpec augmentation{};
  // Image files: the most pixels (width x height) one image may declare, >= 1; a larger file is a
  // bad file, refused from its header before its pixels are allocated.
  int64_t max_image_pixels = kDefaultMaxImagePixels;
};

// (operator== is declared in common/config/site_config.h: it follows from the [data] key table.)

// SiteDataConfig::format, parsed.
enum class DataFormat { kMedMnist, kImageFolder, kCsv, kDicom };

// The format named `name` ("medmnist", "image_folder", "csv", "dicom"), or nullopt. Never throws.
inline std::optional<DataFormat> ParseDataFormat(const std::string& name) {
  if (name == "medmnist") return DataFormat::kMedMnist;
  if (name == "image_folder") return DataFormat::kImageFolder;
  if (name == "csv") return DataFormat::kCsv;
  if (name == "dicom") return DataFormat::kDicom;
  return std::nullopt;
}

}  // namespace fedmed

#endif  // FEDMED_COMMON_DATA_SITE_DATA_CONFIG_H_
