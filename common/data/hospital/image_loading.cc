#include "common/data/hospital/image_loading.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <new>
#include <optional>

#include "common/util/error.h"

namespace fedmed {

namespace {

constexpr size_t kListedBadFiles = 5;

struct Decoded {
  DecodedImage image;
  std::string error;  // empty = good
};

std::string Geometry(int64_t w, int64_t h) {
  return std::to_string(w) + "x" + std::to_string(h);
}

std::string Fraction(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%g", v);
  return buffer;
}

}  // namespace

void ValidateLoadOptions(const LoadOptions& o) {
  if (o.decode_threads < 0) {
    throw ConfigError("decode_threads: expected 0 (one per core) or a number of threads >= 1, "
                      "got " + std::to_string(o.decode_threads));
  }
  if (o.queue_capacity < 1) {
    throw ConfigError("queue_capacity: expected an integer >= 1, got " +
                      std::to_string(o.queue_capacity));
  }
  if (!(o.max_bad_fraction >= 0 && o.max_bad_fraction <= 1)) {
    throw ConfigError("max_bad_fraction: expected a fraction in [0, 1], got " +
                      Fraction(o.max_bad_fraction));
  }
  if (o.max_image_pixels < 1) {
    throw ConfigError("max_image_pixels: expected a number of pixels >= 1, got " +
                      std::to_string(o.max_image_pixels));
  }
}

ImageSet LoadImageItems(const std::vector<LoadItem>& items, int64_t num_classes,
                        const PreprocessSpec& spec, const LoadOptions& options,
                        const std::function<DecodedImage(const std::string& path)>& decode,
                        const std::string& what, LoadReport* report) {
  ValidateLoadOptions(options);
  ValidatePreprocessSpec(spec);
  const int64_t n = static_cast<int64_t>(items.size());
  const bool fixed = spec.image_size > 0 && spec.channels > 0;
  const int64_t fixed_numel = fixed ? spec.image_size * spec.image_size * spec.channels : 0;

  // Per item: the reason it is bad ("" = good). Good images go straight into `direct` (fixed
  // geometry) or into `held` (geometry taken from the first good image).
  std::vector<std::string> reasons(n);
  std::vector<uint8_t> direct;
  std::vector<DecodedImage> held;
  if (fixed) {
    direct.resize(n * fixed_numel);
  } else {
    held.resize(n);
  }
  std::vector<int64_t> to_decode;
  for (int64_t i = 0; i < n; ++i) {
    if (!items[i].bad_reason.empty()) {
      reasons[i] = items[i].bad_reason;
    } else {
      to_decode.push_back(i);
    }
  }

  const std::function<Decoded(int64_t)> produce = [&](int64_t k) {
    Decoded out;
    try {
      out.image = ApplyPreprocess(decode(items[to_decode[k]].path), spec);
    } catch (const DataError& e) {
      out.error = e.what();
      if (out.error.empty()) out.error = "cannot decode";
    } catch (const std::bad_alloc&) {
      out.image = DecodedImage();
      out.error = "out of memory decoding it (is the image larger than it should be?)";
    }
    return out;
  };
  const std::function<void(int64_t, Decoded&&)> consume = [&](int64_t k, Decoded&& d) {
    const int64_t i = to_decode[k];
    if (!d.error.empty()) {
      reasons[i] = std::move(d.error);
    } else if (fixed) {
      std::copy(d.image.pixels.begin(), d.image.pixels.end(), direct.begin() + i * fixed_numel);
    } else {
      held[i] = std::move(d.image);
    }
  };
  ParallelProduce<Decoded>(static_cast<int64_t>(to_decode.size()), options.decode_threads,
                           options.queue_capacity, produce, consume);

  // Geometry of the set: fixed by the spec, or that of the first good image.
  int64_t height = spec.image_size, width = spec.image_size, channels = spec.channels;
  if (!fixed) {
    std::optional<int64_t> first;
    for (int64_t i = 0; i < n; ++i) {
      if (!reasons[i].empty()) continue;
      const DecodedImage& im = held[i];
      if (!first) {
        first = i;
        height = im.height;
        width = im.width;
        channels = im.channels;
        continue;
      }
      if (im.height != height || im.width != width) {
        reasons[i] = "size " + Geometry(im.width, im.height) + ", expected " +
                     Geometry(width, height) + " like " + items[*first].path +
                     " (set image_size to resize every image)";
      } else if (im.channels != channels) {
        reasons[i] = std::to_string(im.channels) + " channels, expected " +
                     std::to_string(channels) + " like " + items[*first].path +
                     " (set channels to convert every image)";
      }
    }
  }

  std::vector<BadFile> bad;
  for (int64_t i = 0; i < n; ++i) {
    if (reasons[i].empty()) continue;
    bad.push_back({items[i].path, reasons[i]});
    spdlog::warn("{}: skipping {}: {}", what, items[i].path, reasons[i]);
  }
  const int64_t good = n - static_cast<int64_t>(bad.size());
  if (n > 0 && (good == 0 || static_cast<double>(bad.size()) >
                                 options.max_bad_fraction * static_cast<double>(n))) {
    std::string message = what + ": " + std::to_string(bad.size()) + " of " + std::to_string(n) +
                          " files are bad (" +
                          (good == 0 ? std::string("no good file at all")
                                     : "more than max_bad_fraction " +
                                           Fraction(options.max_bad_fraction) + " allows") +
                          "): ";
    for (size_t k = 0; k < std::min(bad.size(), kListedBadFiles); ++k) {
      message += (k ? "; " : "") + bad[k].path + ": " + bad[k].reason;
    }
    if (bad.size() > kListedBadFiles) {
      message += "; and " + std::to_string(bad.size() - kListedBadFiles) + " more";
    }
    throw DataError(message);
  }

  ImageSet set;
  set.height = height;
  set.width = width;
  set.channels = channels;
  set.num_classes = num_classes;
  SetNormalization(spec, &set);
  set.labels.reserve(good);
  if (fixed) {
    // Compact in place: good images move forward over the bad ones' slots.
    int64_t out = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (!reasons[i].empty()) continue;
      if (out != i) {
        std::copy_n(direct.begin() + i * fixed_numel, fixed_numel,
                    direct.begin() + out * fixed_numel);
      }
      set.labels.push_back(items[i].label);
      ++out;
    }
    direct.resize(out * fixed_numel);
    direct.shrink_to_fit();
    set.pixels = std::move(direct);
  } else {
    set.pixels.reserve(good * height * width * channels);
    for (int64_t i = 0; i < n; ++i) {
      if (!reasons[i].empty()) continue;
      set.pixels.insert(set.pixels.end(), held[i].pixels.begin(), held[i].pixels.end());
      std::vector<uint8_t>().swap(held[i].pixels);
      set.labels.push_back(items[i].label);
    }
  }
  if (report != nullptr) {
    report->loaded = good;
    report->skipped = std::move(bad);
  }
  return set;
}

}  // namespace fedmed
