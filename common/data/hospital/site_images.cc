#include "common/data/hospital/site_images.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>

#include "common/data/hospital/dicom.h"
#include "common/data/hospital/image_folder.h"
#include "common/data/partition.h"
#include "common/data/preprocess.h"
#include "common/util/data_path.h"
#include "common/util/error.h"

namespace fedmed {

namespace fs = std::filesystem;

namespace {

ImageSet EmptySet(const PreprocessSpec& spec, int64_t num_classes) {
  ImageSet set;
  set.height = set.width = spec.image_size;
  set.channels = spec.channels;
  set.num_classes = num_classes;
  SetNormalization(spec, &set);
  return set;
}

bool IsDir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

ImageSet LoadFolderSplit(const std::string& root, Split split, const PreprocessSpec& spec,
                         LoadOptions options, LoadReport* report) {
  const char* names[] = {"train", "val", "test"};
  bool split_folders = false;
  std::set<std::string> classes;
  for (const char* name : names) {
    const fs::path sub = fs::path(root) / name;
    if (!IsDir(sub)) continue;
    split_folders = true;
    for (std::string& c : ImageFolderClasses(sub.string())) classes.insert(std::move(c));
  }
  if (!split_folders) {
    if (split == Split::kTrain) return LoadImageFolder(root, spec, options, report);
    const int64_t k = options.class_names.empty()
                          ? static_cast<int64_t>(ImageFolderClasses(root).size())
                          : static_cast<int64_t>(options.class_names.size());
    return EmptySet(spec, k);
  }
  if (options.class_names.empty()) options.class_names.assign(classes.begin(), classes.end());
  const fs::path sub = fs::path(root) / SplitName(split);
  if (!IsDir(sub)) {
    if (report != nullptr) report->class_names = options.class_names;
    return EmptySet(spec, static_cast<int64_t>(options.class_names.size()));
  }
  return LoadImageFolder(sub.string(), spec, options, report);
}

// Step 2 of LoadSiteSplit: the site's shard of `set`.
ImageSet Shard(ImageSet set, const SiteDataConfig& data, Split split) {
  if (data.partition == "none" || set.size() == 0) return set;
  PartitionSpec spec;
  spec.scheme = ParsePartitionScheme(data.partition);
  spec.num_sites = data.num_shards;
  spec.alpha = data.alpha;
  spec.seed = data.seed;
  spec.min_samples_per_site = split == Split::kTrain ? 10 : 1;
  return set.Subset(ShardIndices(set.labels, set.num_classes, spec, data.shard - 1));
}

}  // namespace

ImageSet LoadSiteSplit(const SiteDataConfig& data, Split split, const std::string& data_root,
                       LoadReport* report, const MedMnist* preloaded) {
  const std::optional<DataFormat> format = ParseDataFormat(data.format);
  if (!format) {
    throw ConfigError("LoadSiteSplit: [data] format: expected \"medmnist\", \"image_folder\", "
                      "\"csv\" or \"dicom\", got \"" + data.format + "\"");
  }
  ValidatePreprocessSpec(data.preprocess, "LoadSiteSplit: [data]");
  if (preloaded != nullptr && *format != DataFormat::kMedMnist) {
    throw ConfigError("LoadSiteSplit: a preloaded MedMNIST file was given for [data] format \"" +
                      data.format + "\" (" + data.path + ")");
  }
  ImageSet set;
  if (preloaded != nullptr) {
    set = preloaded->split(split);
    PreprocessImageSet(data.preprocess, &set);
    return Shard(std::move(set), data, split);
  }
  const std::string path = ResolveDataPath(data.path, data_root);
  LoadOptions options;
  options.decode_threads = data.decode_threads;
  options.max_bad_fraction = data.max_bad_fraction;
  options.max_image_pixels = data.max_image_pixels;
  if (*format == DataFormat::kMedMnist) {
    set = LoadMedMnistSplit(path, split);
    PreprocessImageSet(data.preprocess, &set);
  } else if (*format == DataFormat::kImageFolder) {
    set = LoadFolderSplit(path, split, data.preprocess, options, report);
  } else if (*format == DataFormat::kCsv) {
    set = LoadImageManifest(path, SplitName(split), data.preprocess, options, report);
  } else {  // DataFormat::kDicom
    DicomOptions dicom;
    dicom.load = options;
    if (!data.dicom_dir.empty()) dicom.dicom_dir = ResolveDataPath(data.dicom_dir, data_root);
    dicom.window_center = data.window_center;
    dicom.window_width = data.window_width;
    set = LoadDicomManifest(path, SplitName(split), data.preprocess, dicom, report);
  }
  return Shard(std::move(set), data, split);
}

}  // namespace fedmed
