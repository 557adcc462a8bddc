// What fedmed-explain writes into --out DIR (docs/EXPLAIN.md): predictions.csv, one .npy map and
// one overlay PNG per image under gradcam/, and the gallery index.html. Torch-free; PNGs are
// encoded with stb_image_write (Debian's libstb).
#ifndef FEDMED_TOOLS_EXPLAIN_EXPLAIN_OUTPUT_H_
#define FEDMED_TOOLS_EXPLAIN_EXPLAIN_OUTPUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/data/image_set.h"
#include "tools/explain/grad_cam.h"

namespace fedmed::explain {

// The .npy bytes (format version 1.0, '<f4', C order) of a float32 array of shape
// (height, width) holding `values` (height * width of them). Throws std::invalid_argument when
// the count differs.
std::string NpyFloat32(int64_t height, int64_t width, const std::vector<float>& values);

// The PNG bytes of image `index` of `images` (its 8-bit preprocessed pixels) beside the same
// image with `map` (H * W values in [0, 1], the image's H x W) overlaid in the jet colour map
// (blue = 0, red = 1) at opacity 0.5, each panel scaled by the smallest integer factor that makes
// it at least 224 px wide (nearest neighbour, so pixels stay visible), and a vertical colour bar
// from 0 (bottom) to 1 (top) with its two ends labelled. RGB, 8 bits per channel.
// Throws DataError when index is outside the set or map has the wrong size; Error when stb
// cannot encode.
std::string OverlayPng(const ImageSet& images, int64_t index, const std::vector<float>& map);

// The gallery's order: errors first (label known and predicted != label), the most confident
// (highest probability of the predicted class) first; then the correct predictions, the least
// confident first. Returns indices into `results`; `labels` has one entry per result (-1 =
// unknown, sorted among the correct ones). Ties keep the input order.
std::vector<size_t> GalleryOrder(const std::vector<GradCam>& results,
                                 const std::vector<int64_t>& labels);

// One image's row of the outputs.
struct ExplainedImage {
  int64_t index = 0;       // NNNNN of gradcam/NNNNN.npy and .png
  std::string name;        // where the image came from (Inputs::names)
  int64_t label = -1;      // -1 = unknown
  GradCam result;
};

// predictions.csv: header "index,path,label,predicted,p_0,...,p_{K-1}" and one line per image
// in `rows` order; label is empty when unknown; probabilities with 9 significant digits; a path
// with a comma, quote or newline is quoted as RFC 4180 says. Never throws.
std::string PredictionsCsv(const std::vector<ExplainedImage>& rows, int64_t num_classes);

// The gallery index.html: a header (model, layer, weights, preprocessing, how to read the maps)
// and one card per image in GalleryOrder: gradcam/NNNNN.png, the true and predicted class
// (named by class_names), the predicted class's probability, the explained class. Text is
// HTML-escaped. Never throws.
std::string GalleryHtml(const std::vector<ExplainedImage>& rows,
                        const std::vector<std::string>& class_names, const std::string& title,
                        const std::string& details);

}  // namespace fedmed::explain

#endif  // FEDMED_TOOLS_EXPLAIN_EXPLAIN_OUTPUT_H_
