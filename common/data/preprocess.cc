#include "common/data/preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <tuple>

#include "common/util/error.h"

namespace fedmed {

namespace {

// Shortest decimal text that reads back as v (%.17g is always enough).
std::string ShortestDouble(double v) {
  char buffer[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof(buffer), "%.*g", precision, v);
    if (std::strtod(buffer, nullptr) == v) break;
  }
  return buffer;
}

std::string Triple(const std::array<double, 3>& v) {
  return ShortestDouble(v[0]) + "," + ShortestDouble(v[1]) + "," + ShortestDouble(v[2]);
}

[[noreturn]] void ThrowField(const std::string& what, const char* field, const std::string& expected,
                             const std::string& got) {
  throw ConfigError(what + " " + field + ": expected " + expected + ", got " + got);
}

DecodedImage ConvertChannels(const DecodedImage& in, int64_t channels) {
  if (channels == 0 || channels == in.channels) return in;
  DecodedImage out;
  out.height = in.height;
  out.width = in.width;
  out.channels = channels;
  const int64_t n = in.height * in.width;
  out.pixels.resize(n * channels);
  if (channels == 3) {  // gray -> RGB
    for (int64_t p = 0; p < n; ++p) {
      const uint8_t v = in.pixels[p];
      out.pixels[3 * p] = out.pixels[3 * p + 1] = out.pixels[3 * p + 2] = v;
    }
  } else {  // RGB -> gray, Pillow's L24
    for (int64_t p = 0; p < n; ++p) {
      const uint32_t r = in.pixels[3 * p], g = in.pixels[3 * p + 1], b = in.pixels[3 * p + 2];
      out.pixels[p] = static_cast<uint8_t>((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
    }
  }
  return out;
}

// Pillow's resampling (Resample.c, Pillow 9.4) with its bilinear filter, for one axis: for each
// output index, the first input index and the fixed-point weights (22 fractional bits) of the
// inputs it reads.
constexpr int kPrecisionBits = 32 - 8 - 2;

struct AxisWeights {
  int64_t taps = 0;                 // weights per output index (ksize)
  std::vector<int64_t> first, count;  // per output index
  std::vector<int32_t> weights;     // out_size * taps
};

AxisWeights PillowBilinearWeights(int64_t in_size, int64_t out_size) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;  // the bilinear filter's support is 1
  AxisWeights a;
  a.taps = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  a.first.resize(out_size);
  a.count.resize(out_size);
  a.weights.assign(out_size * a.taps, 0);
  std::vector<double> k(a.taps);
  for (int64_t xx = 0; xx < out_size; ++xx) {
    const double center = (static_cast<double>(xx) + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int64_t xmin = static_cast<int64_t>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int64_t xmax = static_cast<int64_t>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0;
    for (int64_t x = 0; x < xmax; ++x) {
      double t = std::fabs((static_cast<double>(x + xmin) - center + 0.5) * ss);
      const double w = t < 1.0 ? 1.0 - t : 0.0;
      k[x] = w;
      ww += w;
    }
    for (int64_t x = 0; x < xmax; ++x) {
      const double w = ww != 0.0 ? k[x] / ww : k[x];
      const double scaled = w * static_cast<double>(1 << kPrecisionBits);
      a.weights[xx * a.taps + x] = static_cast<int32_t>(w < 0 ? -0.5 + scaled : 0.5 + scaled);
    }
    a.first[xx] = xmin;
    a.count[xx] = xmax;
  }
  return a;
}

uint8_t Clip8(int64_t v) {
  if (v >= (int64_t{1} << kPrecisionBits << 8)) return 255;
  if (v <= 0) return 0;
  return static_cast<uint8_t>(v >> kPrecisionBits);
}

// Image.resize((size, size), Image.BILINEAR) of Pillow 9.4 for "L" and "RGB" images: a horizontal
// pass into uint8, then a vertical one, each with PillowBilinearWeights.
DecodedImage Resize(const DecodedImage& in, int64_t size) {
  if (size == 0 || (in.height == size && in.width == size)) return in;
  const int64_t c = in.channels;
  const DecodedImage* src = &in;
  DecodedImage horizontal;
  if (in.width != size) {
    const AxisWeights a = PillowBilinearWeights(in.width, size);
    horizontal.height = in.height;
    horizontal.width = size;
    horizontal.channels = c;
    horizontal.pixels.resize(in.height * size * c);
    for (int64_t y = 0; y < in.height; ++y) {
      const uint8_t* row = in.pixels.data() + y * in.width * c;
      for (int64_t xx = 0; xx < size; ++xx) {
        const int32_t* k = a.weights.data() + xx * a.taps;
        for (int64_t ch = 0; ch < c; ++ch) {
          int64_t ss = int64_t{1} << (kPrecisionBits - 1);
          for (int64_t x = 0; x < a.count[xx]; ++x) {
            ss += static_cast<int64_t>(row[(x + a.first[xx]) * c + ch]) * k[x];
          }
          horizontal.pixels[(y * size + xx) * c + ch] = Clip8(ss);
        }
      }
    }
    src = &horizontal;
  }
  if (src->height == size) return *src;
  const AxisWeights a = PillowBilinearWeights(src->height, size);
  DecodedImage out;
  out.height = size;
  out.width = src->width;
  out.channels = c;
  out.pixels.resize(size * src->width * c);
  const int64_t stride = src->width * c;
  for (int64_t yy = 0; yy < size; ++yy) {
    const int32_t* k = a.weights.data() + yy * a.taps;
    for (int64_t i = 0; i < stride; ++i) {
      int64_t ss = int64_t{1} << (kPrecisionBits - 1);
      for (int64_t y = 0; y < a.count[yy]; ++y) {
        ss += static_cast<int64_t>(src->pixels[(y + a.first[yy]) * stride + i]) * k[y];
      }
      out.pixels[yy * stride + i] = Clip8(ss);
    }
  }
  return out;
}

void Equalize(DecodedImage* image) {
  const int64_t n = image->height * image->width;
  const int64_t c = image->channels;
  for (int64_t ch = 0; ch < c; ++ch) {
    int64_t h[256] = {};
    for (int64_t p = 0; p < n; ++p) ++h[image->pixels[p * c + ch]];
    int64_t total = 0, last = 0, occupied = 0;
    for (int i = 0; i < 256; ++i) {
      if (h[i] != 0) {
        total += h[i];
        last = h[i];
        ++occupied;
      }
    }
    if (occupied <= 1) continue;
    const int64_t step = (total - last) / 255;
    if (step == 0) continue;
    uint8_t lut[256];
    int64_t acc = step / 2;
    for (int i = 0; i < 256; ++i) {
      lut[i] = static_cast<uint8_t>(std::min<int64_t>(255, acc / step));
      acc += h[i];
    }
    for (int64_t p = 0; p < n; ++p) {
      uint8_t& v = image->pixels[p * c + ch];
      v = lut[v];
    }
  }
}

bool ParseInt(const std::string& text, int64_t* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (*end != '\0') return false;
  *out = v;
  return true;
}

bool ParseTriple(const std::string& text, std::array<double, 3>* out) {
  std::istringstream in(text);
  std::string part;
  for (int i = 0; i < 3; ++i) {
    if (!std::getline(in, part, ',') || part.empty()) return false;
    char* end = nullptr;
    (*out)[i] = std::strtod(part.c_str(), &end);
    if (*end != '\0') return false;
  }
  return !std::getline(in, part, ',');
}

}  // namespace

std::string PreprocessSpec::Canonical() const {
  std::string out = "size=" + std::to_string(image_size) + ";channels=" + std::to_string(channels) +
                    ";norm=" + normalization;
  if (normalization == "mean_std") out += ";mean=" + Triple(mean) + ";std=" + Triple(std);
  out += ";equalize=";
  out += equalize ? "1" : "0";
  return out;
}

bool operator==(const PreprocessSpec& a, const PreprocessSpec& b) {
  return std::tie(a.image_size, a.channels, a.normalization, a.mean, a.std, a.equalize) ==
         std::tie(b.image_size, b.channels, b.normalization, b.mean, b.std, b.equalize);
}

void ValidatePreprocessSpec(const PreprocessSpec& s, const std::string& what) {
  if (s.image_size != 0 && (s.image_size < 8 || s.image_size > 1024)) {
    ThrowField(what, "image_size", "0 (keep the images' size) or a size in pixels in 8..1024",
               std::to_string(s.image_size));
  }
  if (s.channels != 0 && s.channels != 1 && s.channels != 3) {
    ThrowField(what, "channels", "0 (keep), 1 (gray) or 3 (RGB)", std::to_string(s.channels));
  }
  if (s.normalization != "medmnist" && s.normalization != "mean_std") {
    ThrowField(what, "normalization",
               "\"medmnist\" ((x/255 - 0.5)/0.5) or \"mean_std\" (per-channel mean and std)",
               "\"" + s.normalization + "\"");
  }
  if (s.normalization == "medmnist") {
    const std::array<double, 3> half{0.5, 0.5, 0.5};
    if (s.mean != half) {
      ThrowField(what, "mean", "no value (0.5): normalization is \"medmnist\"; set normalization "
                               "= \"mean_std\" to use your own",
                 Triple(s.mean));
    }
    if (s.std != half) {
      ThrowField(what, "std", "no value (0.5): normalization is \"medmnist\"; set normalization "
                              "= \"mean_std\" to use your own",
                 Triple(s.std));
    }
    return;
  }
  for (int c = 0; c < 3; ++c) {
    if (!std::isfinite(s.mean[c])) ThrowField(what, "mean", "finite numbers", Triple(s.mean));
    if (!std::isfinite(s.std[c]) || s.std[c] <= 0) {
      ThrowField(what, "std", "finite numbers > 0", Triple(s.std));
    }
  }
}

PreprocessSpec ParsePreprocessSpec(const std::string& canonical) {
  const auto fail = [&canonical](const std::string& why) {
    throw FormatError("preprocessing spec \"" + canonical + "\": " + why +
                      " (expected e.g. \"size=28;channels=1;norm=medmnist;equalize=0\")");
  };
  std::map<std::string, std::string> fields;
  std::istringstream in(canonical);
  std::string part;
  while (std::getline(in, part, ';')) {
    const size_t eq = part.find('=');
    if (eq == std::string::npos) fail("part \"" + part + "\" is not key=value");
    const std::string key = part.substr(0, eq);
    if (!fields.emplace(key, part.substr(eq + 1)).second) fail("key \"" + key + "\" repeats");
  }
  PreprocessSpec s;
  const auto take = [&](const char* key) {
    const auto it = fields.find(key);
    if (it == fields.end()) fail(std::string("no ") + key);
    std::string v = it->second;
    fields.erase(it);
    return v;
  };
  if (!ParseInt(take("size"), &s.image_size)) fail("size is not an integer");
  if (!ParseInt(take("channels"), &s.channels)) fail("channels is not an integer");
  s.normalization = take("norm");
  if (s.normalization == "mean_std") {
    if (!ParseTriple(take("mean"), &s.mean)) fail("mean is not three numbers");
    if (!ParseTriple(take("std"), &s.std)) fail("std is not three numbers");
  }
  const std::string equalize = take("equalize");
  if (equalize != "0" && equalize != "1") fail("equalize is not 0 or 1");
  s.equalize = equalize == "1";
  if (!fields.empty()) fail("unknown key \"" + fields.begin()->first + "\"");
  ValidatePreprocessSpec(s, "preprocessing spec \"" + canonical + "\":");
  return s;
}

std::string DescribePreprocessDifference(const PreprocessSpec& local, const PreprocessSpec& remote,
                                         const std::string& remote_name,
                                         const std::string& local_name) {
  std::string out;
  const std::string where =
      local_name.empty() ? std::string(" here, ") : " at " + local_name + ", ";
  const auto add = [&](const char* field, const std::string& here, const std::string& there) {
    if (here == there) return;
    if (!out.empty()) out += "; ";
    out += std::string(field) + ": " + here + where + there + " at " + remote_name;
  };
  add("image_size", std::to_string(local.image_size), std::to_string(remote.image_size));
  add("channels", std::to_string(local.channels), std::to_string(remote.channels));
  add("normalization", local.normalization, remote.normalization);
  add("mean", Triple(local.mean), Triple(remote.mean));
  add("std", Triple(local.std), Triple(remote.std));
  add("equalize", local.equalize ? "1" : "0", remote.equalize ? "1" : "0");
  return out;
}

DecodedImage ApplyPreprocess(const DecodedImage& image, const PreprocessSpec& spec) {
  if (image.height < 1 || image.width < 1) {
    throw DataError("preprocessing: empty image (" + std::to_string(image.width) + "x" +
                    std::to_string(image.height) + ")");
  }
  if (image.channels != 1 && image.channels != 3) {
    throw DataError("preprocessing: " + std::to_string(image.channels) +
                    " channels, expected 1 (gray) or 3 (RGB)");
  }
  if (static_cast<int64_t>(image.pixels.size()) != image.height * image.width * image.channels) {
    throw DataError("preprocessing: " + std::to_string(image.pixels.size()) + " pixel values for a " +
                    std::to_string(image.width) + "x" + std::to_string(image.height) + "x" +
                    std::to_string(image.channels) + " image");
  }
  DecodedImage out;
  if (spec.channels == 1 && image.channels == 3) {
    out = Resize(ConvertChannels(image, 1), spec.image_size);  // convert first: fewer values
  } else {
    // Gray -> RGB replicates, which commutes with the per-channel resize: resize first.
    out = ConvertChannels(Resize(image, spec.image_size), spec.channels);
  }
  if (spec.equalize) Equalize(&out);
  return out;
}

void SetNormalization(const PreprocessSpec& spec, ImageSet* set) {
  for (int c = 0; c < 3; ++c) {
    set->mean[c] = spec.normalization == "mean_std" ? static_cast<float>(spec.mean[c]) : 0.5f;
    set->std[c] = spec.normalization == "mean_std" ? static_cast<float>(spec.std[c]) : 0.5f;
  }
}

void PreprocessImageSet(const PreprocessSpec& spec, ImageSet* set) {
  SetNormalization(spec, set);
  const bool resize = spec.image_size != 0 &&
                      (spec.image_size != set->height || spec.image_size != set->width);
  const bool convert = spec.channels != 0 && spec.channels != set->channels;
  if (!resize && !convert && !spec.equalize) return;
  const int64_t out_h = spec.image_size != 0 ? spec.image_size : set->height;
  const int64_t out_w = spec.image_size != 0 ? spec.image_size : set->width;
  const int64_t out_c = spec.channels != 0 ? spec.channels : set->channels;
  std::vector<uint8_t> pixels(set->size() * out_h * out_w * out_c);
  const int64_t in_numel = set->image_numel();
  DecodedImage one;
  one.height = set->height;
  one.width = set->width;
  one.channels = set->channels;
  for (int64_t i = 0; i < set->size(); ++i) {
    one.pixels.assign(set->pixels.begin() + i * in_numel, set->pixels.begin() + (i + 1) * in_numel);
    const DecodedImage out = ApplyPreprocess(one, spec);
    std::copy(out.pixels.begin(), out.pixels.end(), pixels.begin() + i * out_h * out_w * out_c);
  }
  set->pixels = std::move(pixels);
  set->height = out_h;
  set->width = out_w;
  set->channels = out_c;
}

}  // namespace fedmed
