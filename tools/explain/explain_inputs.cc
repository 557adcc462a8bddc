#include "tools/explain/explain_inputs.h"

#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/data/hospital/site_images.h"
#include "common/data/medmnist.h"
#include "common/model/checkpoint.h"
#include "common/model/local_training.h"
#include "common/model/model_io.h"
#include "common/util/data_path.h"
#include "common/util/error.h"
#include "tools/explain/image_paths.h"

namespace fedmed::explain {

namespace fs = std::filesystem;

namespace {

// What the config file is: a site.toml has a [site] table (its name), a coordinator.toml has
// none (its [coordinator] table is optional).
bool IsCoordinatorConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("--config " + path + ": cannot be opened");
  const std::regex site_table(R"(^\s*\[\s*site\s*\]\s*(#.*)?$)");
  std::string line;
  while (std::getline(in, line)) {
    if (std::regex_match(line, site_table)) return false;
  }
  return true;
}

std::string FormatOf(const InputOptions& o) {
  if (!o.format.empty()) {
    if (!ParseDataFormat(o.format)) {
      throw ConfigError("--format \"" + o.format +
                        "\": expected medmnist, image_folder, csv or dicom");
    }
    return o.format;
  }
  const fs::path p(o.data);
  if (fs::is_directory(p)) return "image_folder";
  if (p.extension() == ".npz") return "medmnist";
  if (p.extension() == ".csv") return "csv";
  throw ConfigError("--data " + o.data +
                    ": cannot tell its format from the name; give --format (medmnist, "
                    "image_folder, csv or dicom)");
}

// The zoo network whose parameter names `weights` has (a site config names none).
std::string ZooNameOf(const ModelState& weights) {
  return weights.Find("layer4.1.conv2.weight") != nullptr ? "resnet18" : "cnn";
}

}  // namespace

Inputs LoadInputs(const InputOptions& o) {
  if (o.run_dir.empty() == o.config_path.empty()) {
    throw ConfigError("give either --run RUN_DIR or --config FILE --weights FILE (not both)");
  }
  std::string config_path = o.config_path;
  std::string weights = o.weights;
  if (!o.run_dir.empty()) {
    config_path = (fs::path(o.run_dir) / "pki" / "coordinator" / "coordinator.toml").string();
    if (!fs::exists(config_path)) {
      throw ConfigError("--run " + o.run_dir +
                        ": not a fedmed-simulate run directory (no " + config_path + ")");
    }
    if (weights.empty()) {
      weights = (fs::path(o.run_dir) / "coordinator" / "global_model.pt").string();
      if (!fs::exists(weights)) {
        throw ConfigError("--run " + o.run_dir + ": no final global model " + weights +
                          " (did the run finish a round?)");
      }
    }
  } else if (weights.empty()) {
    throw ConfigError("--config " + config_path +
                      " needs --weights FILE (a state dict written by the coordinator, e.g. "
                      "global_model.pt or checkpoints/round-NNNN.pt)");
  }

  Inputs in;
  in.weights_path = weights;
  SiteDataConfig data;
  Split split = ParseSplit(o.split);
  ModelSpec spec;
  bool site = false;
  if (IsCoordinatorConfig(config_path)) {
    const CoordinatorConfig c = LoadCoordinatorConfig(config_path);
    data.preprocess = c.preprocessing;
    data.path = c.eval_data;
    if (o.data.empty() && c.eval_data.empty()) {
      throw ConfigError(config_path + ": [evaluation] data is not set; give --data PATH");
    }
    spec.name = c.model;
    spec.image_size = c.image_size;
    spec.in_channels = c.in_channels;
    spec.num_classes = c.num_classes;
    spec.torchscript_path = c.torchscript_path;
  } else {
    site = true;
    const SiteConfig c = LoadSiteConfig(config_path);
    data = c.data;
    spec.torchscript_path = c.model.torchscript_path;
    spec.name = !o.model.empty()            ? o.model
                : !spec.torchscript_path.empty() ? std::string(kTorchScriptModelName)
                                                 : "";
  }
  if (!o.data.empty()) {
    data.path = o.data;
    data.format = FormatOf(o);
    data.partition = "none";
    data.shard = data.num_shards = 1;
  }
  LoadReport report;
  ImageSet all = LoadSiteSplit(data, split, o.data_root, &report);
  SiteDataConfig resolved = data;
  resolved.path = ResolveDataPath(data.path, o.data_root);
  const std::optional<std::vector<std::string>> files =
      ImagePaths(resolved, SplitName(split), all.size(), report.skipped.size());
  const int64_t n = o.limit > 0 ? std::min<int64_t>(o.limit, all.size()) : all.size();
  if (n < all.size()) {
    std::vector<int64_t> first(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) first[static_cast<size_t>(i)] = i;
    in.images = all.Subset(first);
  } else {
    in.images = std::move(all);
  }
  if (in.images.size() == 0) {
    throw DataError("no images to explain in split \"" + o.split + "\" of " + data.path);
  }
  // A site's shard is numbered on its own: say so, so that an index is not read as the file's.
  const std::string part =
      data.partition == "none" ? std::string(SplitName(split))
                               : std::string(SplitName(split)) + "/shard" +
                                     std::to_string(data.shard) + "of" +
                                     std::to_string(data.num_shards);
  for (int64_t i = 0; i < in.images.size(); ++i) {
    in.names.push_back(files ? (*files)[static_cast<size_t>(i)]
                             : data.path + "#" + part + "[" + std::to_string(i) + "]");
  }
  in.class_names = report.class_names;
  for (int64_t k = static_cast<int64_t>(in.class_names.size()); k < in.images.num_classes; ++k) {
    in.class_names.push_back(std::to_string(k));
  }
  in.preprocessing = data.preprocess.Canonical();

  if (spec.in_channels == 0) spec.in_channels = in.images.channels;
  if (site) spec.image_size = in.images.height;
  if (site && spec.name != kTorchScriptModelName) {
    // The weights say which zoo network and how many classes.
    const ModelState raw = LoadCheckpoint(weights);
    if (spec.name.empty()) spec.name = ZooNameOf(raw);
    if (!raw.tensors.empty() && raw.tensors.back().shape.size() == 1) {
      spec.num_classes = raw.tensors.back().shape[0];
    }
  }
  if (spec.num_classes == 0) spec.num_classes = in.images.num_classes;
  ValidateModelSpec(spec, config_path + ": [model]");
  in.state = LoadInitialWeights(weights, InitialModelState(spec, 0));
  in.spec = spec;
  return in;
}

}  // namespace fedmed::explain
