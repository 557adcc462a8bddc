// Where each image of a loaded split came from, for predictions.csv's path column: the sites'
// loaders (common/data/hospital/site_images.h) return pixels, not file names, so the files are
// listed again here in the loaders' documented order. Torch-free.
#ifndef FEDMED_TOOLS_EXPLAIN_IMAGE_PATHS_H_
#define FEDMED_TOOLS_EXPLAIN_IMAGE_PATHS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/data/site_data_config.h"

namespace fedmed::explain {

// The file of each image of split `split` ("train" | "val" | "test") of `data` (path resolved
// already), in the order LoadSiteSplit gives the images, when that order can be rebuilt:
//   image_folder  the split's subfolder when the folder has train/, val/ or test/, else the whole
//                 folder (the training split); classes in sorted order, each walked as
//                 sorted(os.walk(class_dir)) with sorted .png/.jpg/.jpeg names (image_folder.h);
//   csv, dicom    the manifest rows of that split, in file order: the path resolved against the
//                 manifest's folder, or "sop_instance_uid=<UID>" for a UID manifest.
// Returns nullopt for "medmnist" (no files), a partitioned set (data.partition other than
// "none"), when the loader skipped bad files (`skipped_files` > 0), or when the listing does not
// give exactly `expected` images; the caller then names images by index. Never throws (an
// unreadable folder or manifest gives nullopt: the loader has already reported it).
std::optional<std::vector<std::string>> ImagePaths(const SiteDataConfig& data,
                                                   const std::string& split, int64_t expected,
                                                   size_t skipped_files);

}  // namespace fedmed::explain

#endif  // FEDMED_TOOLS_EXPLAIN_IMAGE_PATHS_H_
