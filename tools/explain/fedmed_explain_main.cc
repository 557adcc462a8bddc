// fedmed-explain: runs a global model on images and explains each prediction with Grad-CAM
// (grad_cam.h), at a site on its own images (nothing leaves the machine) or at the coordinator on
// its held-out set. docs/EXPLAIN.md is the user's guide.
//
//   fedmed-explain --run results/demo-20260101-120000 --limit 32 --out explain/
//   fedmed-explain --config site.toml --weights global_model.pt --data images/ --out explain/
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>

#include "common/util/error.h"
#include "common/util/file_io.h"
#include "tools/explain/explain_inputs.h"
#include "tools/explain/explain_output.h"
#include "tools/explain/grad_cam.h"

namespace {

using namespace fedmed;
using namespace fedmed::explain;

std::string Stem(int64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%05lld", static_cast<long long>(index));
  return buf;
}

int Run(const InputOptions& options, const std::string& layer, int64_t target_class,
        const std::string& out_dir, int threads, const std::vector<std::string>& class_names) {
  const auto start = std::chrono::steady_clock::now();
  Inputs in = LoadInputs(options);
  if (!class_names.empty()) {
    if (static_cast<int64_t>(class_names.size()) != in.spec.num_classes) {
      throw fedmed::ConfigError("--class-names: " + std::to_string(class_names.size()) +
                                " names for a model of " + std::to_string(in.spec.num_classes) +
                                " classes");
    }
    in.class_names = class_names;
  }
  GradCamExplainer explainer(in.spec, in.state, layer, threads);
  const std::optional<int64_t> k =
      target_class >= 0 ? std::optional<int64_t>(target_class) : std::nullopt;
  const std::vector<GradCam> results = explainer.Explain(in.images, 0, in.images.size(), k);

  namespace fs = std::filesystem;
  fs::create_directories(fs::path(out_dir) / "gradcam");
  std::vector<ExplainedImage> rows;
  for (int64_t i = 0; i < in.images.size(); ++i) {
    ExplainedImage row;
    row.index = i;
    row.name = in.names[static_cast<size_t>(i)];
    row.label = in.images.labels[static_cast<size_t>(i)];
    row.result = results[static_cast<size_t>(i)];
    const std::string base = (fs::path(out_dir) / "gradcam" / Stem(i)).string();
    ReplaceFile(base + ".npy", NpyFloat32(row.result.height, row.result.width, row.result.map),
                "Grad-CAM map");
    ReplaceFile(base + ".png", OverlayPng(in.images, i, row.result.map), "Grad-CAM overlay");
    rows.push_back(std::move(row));
  }
  ReplaceFile((fs::path(out_dir) / "predictions.csv").string(),
              PredictionsCsv(rows, in.spec.num_classes), "predictions");
  const std::string details =
      "Model " + in.spec.name + " (" + std::to_string(in.spec.in_channels) + " channel(s), " +
      std::to_string(in.spec.num_classes) + " classes, " + std::to_string(in.spec.image_size) +
      " px), weights " + in.weights_path + ", Grad-CAM at layer " + explainer.layer() +
      ", map of " + (k ? "class " + std::to_string(*k) : std::string("the predicted class")) +
      ", preprocessing " + in.preprocessing + ".";
  ReplaceFile((fs::path(out_dir) / "index.html").string(),
              GalleryHtml(rows, in.class_names, "fedmed-explain: Grad-CAM gallery", details),
              "gallery");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "fedmed-explain: " << rows.size() << " images, layer " << explainer.layer()
            << ", " << seconds << " s; wrote " << out_dir << "/index.html\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "fedmed-explain: predictions and Grad-CAM heatmaps (Selvaraju et al., ICCV 2017) of a "
      "global model on images; writes predictions.csv, gradcam/NNNNN.npy and .png, index.html"};
  InputOptions options;
  std::string layer;
  int64_t target_class = -1;
  std::string out_dir;
  int threads = 0;
  std::vector<std::string> class_names;
  auto* run = app.add_option("--run", options.run_dir,
                             "a fedmed-simulate run directory (its coordinator config, final "
                             "global model and held-out set)");
  auto* config = app.add_option("--config", options.config_path,
                                "coordinator.toml or site.toml (model, preprocessing, data)");
  run->excludes(config);
  app.add_option("--weights", options.weights,
                 "state dict written by the coordinator (global_model.pt, "
                 "checkpoints/round-NNNN.pt); default with --run: its global_model.pt");
  app.add_option("--model", options.model,
                 "zoo model of the weights with a site config (default: from their names)");
  app.add_option("--data", options.data,
                 "images: a MedMNIST .npz, an image folder, a CSV manifest or a DICOM manifest "
                 "(default: the config's held-out set or site data)");
  app.add_option("--format", options.format, "medmnist | image_folder | csv | dicom")
      ->check(CLI::IsMember({"medmnist", "image_folder", "csv", "dicom"}));
  app.add_option("--split", options.split, "train | val | test (default test)")
      ->check(CLI::IsMember({"train", "val", "test"}));
  app.add_option("--data-root", options.data_root, "where relative data paths are looked up");
  app.add_option("--limit", options.limit, "explain the first N images only (default all)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--class", target_class, "class K whose logit is explained (default: predicted)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--layer", layer,
                 "module whose output is explained, e.g. conv2, layer4 (default: last Conv2d)");
  app.add_option("--out", out_dir, "output directory")->required();
  app.add_option("--threads", threads, "LibTorch compute threads (default: LibTorch's)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--class-names", class_names,
                 "names of classes 0, 1, ... for the gallery, e.g. normal,pneumonia")
      ->delimiter(',');
  CLI11_PARSE(app, argc, argv);
  try {
    return Run(options, layer, target_class, out_dir, threads, class_names);
  } catch (const std::exception& e) {
    const std::string what = e.what();
    const std::string self = "fedmed-explain: ";
    std::cerr << "fedmed-explain: error: "
              << (what.rfind(self, 0) == 0 ? what.substr(self.size()) : what) << "\n";
    return 1;
  }
}
