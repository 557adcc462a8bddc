// What fedmed-explain explains: a model (spec and weights) and images preprocessed exactly as in
// training, from a fedmed-simulate run directory or a coordinator / site config. Torch-free
// header.
#ifndef FEDMED_TOOLS_EXPLAIN_EXPLAIN_INPUTS_H_
#define FEDMED_TOOLS_EXPLAIN_EXPLAIN_INPUTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/data/image_set.h"
#include "common/model/model_spec.h"
#include "common/model/model_state.h"

namespace fedmed::explain {

// The command line's input options (fedmed-explain --help).
struct InputOptions {
  std::string run_dir;      // --run: a fedmed-simulate run directory
  std::string config_path;  // --config: coordinator.toml or site.toml
  std::string weights;      // --weights: a state dict (coordinator checkpoint, global_model.pt)
  std::string model;        // --model: zoo name for a site config ("" = from the weights' names)
  std::string data;         // --data: images to explain ("" = the config's own)
  std::string format;       // --format: medmnist | image_folder | csv | dicom ("" = from --data)
  std::string split = "test";  // --split: train | val | test
  std::string data_root;    // --data-root: where relative data paths are looked up
  int64_t limit = 0;        // --limit: the first N images only; 0 = all
};

// The model and images, ready to explain.
struct Inputs {
  ModelSpec spec;
  ModelState state;
  std::string weights_path;              // where `state` came from
  std::string preprocessing;             // PreprocessSpec::Canonical() applied to the images
  ImageSet images;                       // preprocessed; labels as the source gives them
  // Per image: its file for image folders and manifests (ImagePaths, image_paths.h), else
  // "<data path>#<split>[<index in split>]", or for a site's shard of a partitioned file
  // "<data path>#<split>/shard<k>of<n>[<index in the shard>]".
  std::vector<std::string> names;
  std::vector<std::string> class_names;  // index -> name ("0", "1", ... for MedMNIST)
};

// Resolves the options into a model and images:
// - run_dir: the coordinator config run_dir/pki/coordinator/coordinator.toml and the final global
//   model run_dir/coordinator/global_model.pt (unless `weights` is given);
// - config_path: a site.toml (it has a [site] table) or else a coordinator.toml;
//   `weights` is required;
// - model spec: a coordinator config's [model] (in_channels / num_classes left 0 come from the
//   images); for a site config, `model` or else "resnet18" when the weights have
//   "layer4.1.conv2.weight" and "cnn" otherwise ("torchscript" with the site's [model]
//   torchscript_path), channels from the images, classes from the weights' last bias, image size
//   from [data] image_size or the images;
// - images: `data` in `format` (by default: a directory is "image_folder", *.npz "medmnist",
//   *.csv "csv"; DICOM needs --format dicom), split `split`, with the config's preprocessing
//   (coordinator [preprocessing], site [data]), loaded with LoadSiteSplit
//   (common/data/hospital/site_images.h); without `data`, a coordinator's [evaluation] data and
//   a site's own [data] (its partition shard included), split `split`; the first `limit`.
// Throws ConfigError naming the option or file when: neither or both of run_dir and
// config_path are given; config_path without weights; the config cannot be loaded (as
// LoadCoordinatorConfig / LoadSiteConfig); no data is given and the config has none; the format
// is unknown; DataError / FormatError naming the file when the weights or images cannot be read
// or the weights do not have the model's layout (as LoadInitialWeights, common/model/model_io.h).
Inputs LoadInputs(const InputOptions& options);

}  // namespace fedmed::explain

#endif  // FEDMED_TOOLS_EXPLAIN_EXPLAIN_INPUTS_H_
