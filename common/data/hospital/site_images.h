// A site's images, whatever their format: the one call the site agent (and the simulator) makes to
// get its training or test set from its [data] config (SiteDataConfig, common/data/
// site_data_config.h; read and validated by common/config/site_config.h). Library
// fedmed_hospital_data (it links stb and DCMTK); no LibTorch, and no dependency on the
// configuration library.
#ifndef FEDMED_COMMON_DATA_HOSPITAL_SITE_IMAGES_H_
#define FEDMED_COMMON_DATA_HOSPITAL_SITE_IMAGES_H_

#include <string>

#include "common/data/hospital/image_loading.h"
#include "common/data/image_set.h"
#include "common/data/medmnist.h"
#include "common/data/site_data_config.h"

namespace fedmed {

// Loads this site's share of `split` as described by `data`:
//   1. the split, by data.format, from ResolveDataPath(data.path, data_root):
//      "medmnist"      LoadMedMnistSplit (common/data/medmnist.h), then
//                      PreprocessImageSet(data.preprocess): with the default preprocessing the
//                      pixels are the file's, bit for bit;
//      "image_folder"  if the folder has any of the subfolders train/, val/, test/, the split's
//                      subfolder (an absent one gives an empty set) with the classes of all
//                      three subfolders together (sorted, so every split numbers them alike);
//                      else the whole folder is the training split and val/test are empty;
//                      LoadImageFolder (image_folder.h);
//      "csv"           LoadImageManifest(path, SplitName(split)) (image_folder.h);
//      "dicom"         LoadDicomManifest(path, SplitName(split)) (dicom.h) with dicom_dir
//                      (ResolveDataPath'd) and the window override;
//      image files are preprocessed with data.preprocess, decoded in data.decode_threads
//      threads, bounded by data.max_image_pixels per image, and refused above
//      data.max_bad_fraction bad files (image_loading.h);
//   2. with data.partition other than "none", shard data.shard of data.num_shards of it
//      (ShardIndices, common/data/partition.h, with alpha and seed; at least 10 images per shard
//      for the training split, 1 for val and test), as the site agent has always done for .npz
//      files.
// The set's mean/std are data.preprocess's normalisation; its num_classes comes from the whole
// source (all splits), so that every split and every site agree on it. An empty split (no
// val/test folder or manifest lines) gives an empty set, which is not partitioned.
// report (may be null) receives the bad files of image formats (loaded = size before sharding).
// preloaded (may be null; format "medmnist" only): the contents of the file at data.path, already
// loaded by the caller (fedmed-simulate's threads mode shares one decoded file between its
// sites); the file is then not read again, and the result is the same as from the file.
// `data` should be valid (ValidateSiteDataConfig, common/config/site_config.h, which
// LoadSiteConfig runs); LoadSiteSplit itself checks only what it needs to choose a loader.
// Throws DataError when a file or folder is missing or unreadable (ResolveDataPath lists where
// it looked), and as the loaders (too many bad files, naming them); ConfigError for an unknown
// data.format or partition, invalid preprocessing (ValidatePreprocessSpec), a partition that
// cannot be made, or `preloaded` with a format other than "medmnist".
ImageSet LoadSiteSplit(const SiteDataConfig& data, Split split, const std::string& data_root = "",
                       LoadReport* report = nullptr, const MedMnist* preloaded = nullptr);

}  // namespace fedmed

#endif  // FEDMED_COMMON_DATA_HOSPITAL_SITE_IMAGES_H_
