#include "tools/explain/explain_output.h"

#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "common/util/error.h"

namespace fedmed::explain {

namespace {

// The jet colour map at t in [0, 1] (blue, cyan, yellow, red), as RGB in [0, 1].
void Jet(float t, float rgb[3]) {
  t = std::clamp(t, 0.0f, 1.0f);
  const float centres[3] = {0.75f, 0.5f, 0.25f};  // r, g, b
  for (int c = 0; c < 3; ++c) {
    rgb[c] = std::clamp(1.5f - std::fabs(4.0f * t - 4.0f * centres[c]), 0.0f, 1.0f);
  }
}

// 3x5 glyphs of the colour bar's labels.
constexpr const char* kGlyph0[5] = {"###", "#.#", "#.#", "#.#", "###"};
constexpr const char* kGlyph1[5] = {".#.", "##.", ".#.", ".#.", "###"};

class Canvas {
 public:
  Canvas(int64_t w, int64_t h) : w_(w), h_(h), rgb_(static_cast<size_t>(w * h * 3), 255) {}
  void Set(int64_t x, int64_t y, const uint8_t c[3]) {
    if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
    std::copy(c, c + 3, &rgb_[static_cast<size_t>((y * w_ + x) * 3)]);
  }
  void Glyph(const char* const rows[5], int64_t x0, int64_t y0, int64_t scale) {
    const uint8_t black[3] = {0, 0, 0};
    for (int64_t r = 0; r < 5; ++r) {
      for (int64_t c = 0; c < 3; ++c) {
        if (rows[r][c] != '#') continue;
        for (int64_t dy = 0; dy < scale; ++dy) {
          for (int64_t dx = 0; dx < scale; ++dx) Set(x0 + c * scale + dx, y0 + r * scale + dy, black);
        }
      }
    }
  }
  std::string Png() const {
    std::string out;
    auto append = [](void* context, void* data, int size) {
      static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                                 static_cast<size_t>(size));
    };
    if (stbi_write_png_to_func(append, &out, static_cast<int>(w_), static_cast<int>(h_), 3,
                               rgb_.data(), static_cast<int>(w_ * 3)) == 0) {
      throw Error("fedmed-explain: stb_image_write could not encode a PNG");
    }
    return out;
  }

 private:
  int64_t w_, h_;
  std::vector<uint8_t> rgb_;
};

std::string HtmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string Number(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*g", digits, v);
  return buf;
}

std::string Fixed4(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.4f", v);
  return buf;
}

std::string FileStem(int64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%05lld", static_cast<long long>(index));
  return buf;
}

std::string ClassName(const std::vector<std::string>& names, int64_t k) {
  if (k < 0) return "unknown";
  return k < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(k)]
                                                 : std::to_string(k);
}

}  // namespace

std::string NpyFloat32(int64_t height, int64_t width, const std::vector<float>& values) {
  if (static_cast<int64_t>(values.size()) != height * width) {
    throw std::invalid_argument("NpyFloat32: " + std::to_string(values.size()) +
                                " values for shape (" + std::to_string(height) + ", " +
                                std::to_string(width) + ")");
  }
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       std::to_string(height) + ", " + std::to_string(width) + "), }";
  // magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  for (float v : values) {  // little-endian, as the descriptor says
    uint32_t bits = 0;
    std::memcpy(&bits, &v, 4);
    for (int b = 0; b < 4; ++b) out += static_cast<char>((bits >> (8 * b)) & 0xff);
  }
  return out;
}

std::string OverlayPng(const ImageSet& images, int64_t index, const std::vector<float>& map) {
  if (index < 0 || index >= images.size()) {
    throw DataError("fedmed-explain: image " + std::to_string(index) + " is outside the set");
  }
  const int64_t h = images.height, w = images.width, ch = images.channels;
  if (static_cast<int64_t>(map.size()) != h * w) {
    throw DataError("fedmed-explain: the map of image " + std::to_string(index) + " has " +
                    std::to_string(map.size()) + " values, expected " + std::to_string(h * w));
  }
  const int64_t s = std::max<int64_t>(1, (224 + w - 1) / w);
  const int64_t pw = w * s, ph = h * s, m = 8, bar = 16, glyph = 3;
  Canvas canvas(m + pw + m + pw + m + bar + 4 + 3 * glyph + m, std::max(m + ph + m, 5 * glyph * 2 + 3 * m));
  const uint8_t* px = images.pixels.data() + index * h * w * ch;
  for (int64_t y = 0; y < ph; ++y) {
    for (int64_t x = 0; x < pw; ++x) {
      const int64_t sy = y / s, sx = x / s;
      const uint8_t* p = px + (sy * w + sx) * ch;
      const float gray[3] = {static_cast<float>(p[0]), static_cast<float>(p[ch == 3 ? 1 : 0]),
                             static_cast<float>(p[ch == 3 ? 2 : 0])};
      float jet[3];
      Jet(map[static_cast<size_t>(sy * w + sx)], jet);
      uint8_t plain[3], blended[3];
      for (int c = 0; c < 3; ++c) {
        plain[c] = static_cast<uint8_t>(gray[c]);
        blended[c] = static_cast<uint8_t>(std::lround(0.5f * gray[c] + 0.5f * 255.0f * jet[c]));
      }
      canvas.Set(m + x, m + y, plain);
      canvas.Set(m + pw + m + x, m + y, blended);
    }
  }
  const int64_t bx = m + pw + m + pw + m;
  for (int64_t y = 0; y < ph; ++y) {
    float jet[3];
    Jet(1.0f - static_cast<float>(y) / static_cast<float>(std::max<int64_t>(ph - 1, 1)), jet);
    const uint8_t c[3] = {static_cast<uint8_t>(std::lround(255 * jet[0])),
                          static_cast<uint8_t>(std::lround(255 * jet[1])),
                          static_cast<uint8_t>(std::lround(255 * jet[2]))};
    for (int64_t x = 0; x < bar; ++x) canvas.Set(bx + x, m + y, c);
  }
  canvas.Glyph(kGlyph1, bx + bar + 4, m, glyph);
  canvas.Glyph(kGlyph0, bx + bar + 4, m + ph - 5 * glyph, glyph);
  return canvas.Png();
}

std::vector<size_t> GalleryOrder(const std::vector<GradCam>& results,
                                 const std::vector<int64_t>& labels) {
  std::vector<size_t> order(results.size());
  std::iota(order.begin(), order.end(), 0);
  auto wrong = [&](size_t i) { return labels[i] >= 0 && labels[i] != results[i].predicted; };
  auto confidence = [&](size_t i) {
    return results[i].probabilities[static_cast<size_t>(results[i].predicted)];
  };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (wrong(a) != wrong(b)) return wrong(a);
    return wrong(a) ? confidence(a) > confidence(b) : confidence(a) < confidence(b);
  });
  return order;
}

std::string PredictionsCsv(const std::vector<ExplainedImage>& rows, int64_t num_classes) {
  std::ostringstream out;
  out << "index,path,label,predicted";
  for (int64_t k = 0; k < num_classes; ++k) out << ",p_" << k;
  out << "\n";
  for (const ExplainedImage& r : rows) {
    out << r.index << "," << CsvField(r.name) << ","
        << (r.label >= 0 ? std::to_string(r.label) : std::string()) << "," << r.result.predicted;
    for (float p : r.result.probabilities) out << "," << Number(p, 9);
    out << "\n";
  }
  return out.str();
}

std::string GalleryHtml(const std::vector<ExplainedImage>& rows,
                        const std::vector<std::string>& class_names, const std::string& title,
                        const std::string& details) {
  std::vector<GradCam> results;
  std::vector<int64_t> labels;
  for (const ExplainedImage& r : rows) {
    results.push_back(r.result);
    labels.push_back(r.label);
  }
  int64_t errors = 0;
  for (size_t i = 0; i < rows.size(); ++i) errors += labels[i] >= 0 && labels[i] != results[i].predicted;
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" << HtmlEscape(title)
       << "</title>\n<style>body{font-family:sans-serif;margin:1em}"
          ".card{display:inline-block;vertical-align:top;margin:6px;padding:6px;"
          "border:2px solid #ccc;font-size:13px}.err{border-color:#c00}"
          ".card img{display:block;width:520px;max-width:100%}</style></head><body>\n"
       << "<h1>" << HtmlEscape(title) << "</h1>\n<p>" << HtmlEscape(details) << "</p>\n"
       << "<p>" << rows.size() << " images, " << errors
       << " misclassified. Most confident errors first (red border), then correct predictions, "
          "least confident first. Each picture: the preprocessed image the model saw, and the "
          "same image with its Grad-CAM map (Selvaraju et al., ICCV 2017; jet colours, "
          "0 = blue to 1 = red, scaled per image). A map shows which regions raised the score "
          "of the explained class in this model; it is not a segmentation of disease and not "
          "evidence that the prediction is right.</p>\n";
  for (size_t i : GalleryOrder(results, labels)) {
    const ExplainedImage& r = rows[i];
    const bool wrong = r.label >= 0 && r.label != r.result.predicted;
    const std::string stem = FileStem(r.index);
    const double p = r.result.probabilities[static_cast<size_t>(r.result.predicted)];
    html << "<div class=\"card" << (wrong ? " err" : "") << "\"><img src=\"gradcam/" << stem
         << ".png\" alt=\"image " << r.index << "\"><b>#" << r.index << "</b> "
         << HtmlEscape(r.name) << "<br>true: " << HtmlEscape(ClassName(class_names, r.label))
         << " &middot; predicted: " << HtmlEscape(ClassName(class_names, r.result.predicted))
         << " (p = " << Fixed4(p) << ")"
         << " &middot; map of class " << HtmlEscape(ClassName(class_names, r.result.explained_class))
         << " &middot; <a href=\"gradcam/" << stem << ".npy\">.npy</a></div>\n";
  }
  html << "</body></html>\n";
  return html.str();
}

}  // namespace fedmed::explain
