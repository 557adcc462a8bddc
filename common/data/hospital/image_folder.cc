#include "common/data/hospital/image_folder.h"

#include <stb_image.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string_view>

#include "common/util/error.h"

namespace fedmed {

namespace fs = std::filesystem;

namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool HasImageExtension(const fs::path& path) {
  const std::string ext = Lower(path.extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(std::string("cannot read: ") + std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw DataError(std::string("cannot read: ") + std::strerror(errno));
  return bytes;
}

bool IsDirectory(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);  // follows symbolic links
}

// Sorted names of the subdirectories (is_dir: links followed) of `dir`.
std::vector<std::string> SubdirectoryNames(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (IsDirectory(it->path())) names.push_back(it->path().filename().string());
  }
  if (ec) throw DataError("image folder " + dir.string() + ": cannot list: " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

// The image files under class_dir in torchvision's order: directories sorted by their full path
// text (sorted(os.walk(...))), file names sorted within each directory.
std::vector<std::string> WalkImages(const fs::path& class_dir) {
  std::vector<std::string> dirs = {class_dir.string()};
  std::error_code ec;
  const auto options = fs::directory_options::follow_directory_symlink;
  for (fs::recursive_directory_iterator it(class_dir, options, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (IsDirectory(it->path())) dirs.push_back(it->path().string());
  }
  if (ec) throw DataError("image folder " + class_dir.string() + ": cannot list: " + ec.message());
  std::sort(dirs.begin(), dirs.end());
  std::vector<std::string> files;
  for (const std::string& d : dirs) {
    std::vector<std::string> names;
    for (fs::directory_iterator it(d, ec), end; !ec && it != end; it.increment(ec)) {
      if (!IsDirectory(it->path()) && HasImageExtension(it->path())) {
        names.push_back(it->path().filename().string());
      }
    }
    if (ec) throw DataError("image folder " + d + ": cannot list: " + ec.message());
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) files.push_back((fs::path(d) / n).string());
  }
  return files;
}

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

// Splits CSV text into records of fields (RFC 4180). Returns (line number, fields) per non-blank
// record.
std::vector<std::pair<int, std::vector<std::string>>> ParseCsv(const std::string& text,
                                                               const std::string& path) {
  std::vector<std::pair<int, std::vector<std::string>>> records;
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false, in_quotes = false, any = false;
  int line = 1, record_line = 1;
  const auto end_field = [&] {
    fields.push_back(quoted ? field : Trim(field));
    field.clear();
    quoted = false;
  };
  const auto end_record = [&] {
    end_field();
    const bool blank = fields.size() == 1 && fields[0].empty() && !any;
    if (!blank) records.emplace_back(record_line, std::move(fields));
    fields.clear();
    any = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == '"' && Trim(field).empty()) {
      field.clear();
      in_quotes = quoted = any = true;
    } else if (c == ',') {
      end_field();
      any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_record();
      ++line;
      record_line = line;
    } else if (!quoted) {
      field += c;
    }
    // Text after a closing quote and before the next separator is ignored.
  }
  if (in_quotes) {
    throw DataError("manifest " + path + ":" + std::to_string(record_line) +
                    ": a quoted field is not closed");
  }
  if (!field.empty() || !fields.empty() || quoted) end_record();
  return records;
}

bool IsIndex(const std::string& s) {
  if (s.empty() || s.size() > 18) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The container an image file's first bytes show: "PNG", "JPEG", or "" for anything else.
std::string SniffImageFormat(std::string_view bytes) {
  static constexpr char kPng[] = "\x89PNG\r\n\x1a\n";
  if (bytes.substr(0, 8) == std::string_view(kPng, 8)) return "PNG";
  if (bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
      static_cast<unsigned char>(bytes[1]) == 0xD8 && static_cast<unsigned char>(bytes[2]) == 0xFF) {
    return "JPEG";
  }
  return "";
}

// What the file name claims: "PNG" for .png, "JPEG" for .jpg/.jpeg (case-insensitive), "" for
// another or no extension.
std::string ClaimedImageFormat(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".png") return "PNG";
  if (ext == ".jpg" || ext == ".jpeg") return "JPEG";
  return "";
}

// Walks a PNG's chunks (after the signature): each chunk's declared length, with its 12 bytes of
// length, type and CRC, must fit in the bytes that remain, up to IEND. stb_image trusts the
// declared length of IDAT chunks and allocates it before reading (fuzz/fuzz_image found a 33-byte
// PNG that made it allocate 1.4 GB).
void CheckPngChunks(std::string_view bytes) {
  size_t at = 8;
  while (at < bytes.size()) {
    const size_t left = bytes.size() - at;
    if (left < 12) {
      throw DataError("cannot decode: PNG truncated in a chunk header at byte " +
                      std::to_string(at));
    }
    const auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])); };
    const uint32_t length = byte(at) << 24 | byte(at + 1) << 16 | byte(at + 2) << 8 | byte(at + 3);
    std::string type(bytes.substr(at + 4, 4));
    const bool printable = std::all_of(type.begin(), type.end(), [](char c) {
      return std::isalpha(static_cast<unsigned char>(c)) != 0;
    });
    if (!printable) type = "?";
    if (length > left - 12) {
      throw DataError("cannot decode: PNG chunk " + type + " at byte " + std::to_string(at) +
                      " declares " + std::to_string(length) + " bytes but only " +
                      std::to_string(left - 12) + " follow (truncated or forged)");
    }
    at += 12 + length;
    if (type == "IEND") return;
  }
  throw DataError("cannot decode: PNG has no IEND chunk (truncated)");
}

}  // namespace

DecodedImage ReadImageFile(const std::string& path, int64_t max_pixels) {
  const std::string bytes = ReadBytes(path);
  const std::string format = SniffImageFormat(bytes);
  const std::string claimed = ClaimedImageFormat(path);
  if (format.empty()) {
    throw DataError("cannot decode: not a PNG or JPEG file (its first bytes are neither "
                    "signature)" + (claimed.empty() ? "" : ", though its name says " + claimed));
  }
  if (!claimed.empty() && claimed != format) {
    throw DataError("cannot decode: the file is a " + format + " but its name says " + claimed);
  }
  if (format == "PNG") CheckPngChunks(bytes);
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int size = static_cast<int>(std::min<size_t>(bytes.size(), INT32_MAX));
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(data, size, &w, &h, &comp)) {
    throw DataError(std::string("cannot decode: ") + stbi_failure_reason());
  }
  const int64_t pixels = static_cast<int64_t>(w) * h;
  if (pixels > max_pixels) {
    throw DataError("image of " + std::to_string(w) + "x" + std::to_string(h) + " = " +
                    std::to_string(pixels) + " pixels is larger than max_image_pixels " +
                    std::to_string(max_pixels));
  }
  // A PNG's pixels are deflated, at least 1 bit each: deflate's ratio (at most 1032:1) bounds the
  // pixels its bytes can hold, before stb allocates them.
  if (format == "PNG" && pixels / 8 > static_cast<int64_t>(bytes.size()) * 1032 + 4096) {
    throw DataError("PNG declares " + std::to_string(w) + "x" + std::to_string(h) +
                    " pixels, more than its " + std::to_string(bytes.size()) +
                    " bytes can hold (truncated or forged header)");
  }
  DecodedImage out;
  const bool sixteen = stbi_is_16_bit_from_memory(data, size) != 0;
  std::vector<uint8_t> values;  // w * h * comp 8-bit values
  if (sixteen) {
    std::unique_ptr<stbi_us, void (*)(void*)> pixels(
        stbi_load_16_from_memory(data, size, &w, &h, &comp, 0), stbi_image_free);
    if (!pixels) throw DataError(std::string("cannot decode: ") + stbi_failure_reason());
    const size_t n = static_cast<size_t>(w) * h * comp;
    values.resize(n);
    for (size_t k = 0; k < n; ++k) values[k] = SixteenToEightBit(pixels.get()[k]);
  } else {
    std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
        stbi_load_from_memory(data, size, &w, &h, &comp, 0), stbi_image_free);
    if (!pixels) throw DataError(std::string("cannot decode: ") + stbi_failure_reason());
    values.assign(pixels.get(), pixels.get() + static_cast<size_t>(w) * h * comp);
  }
  out.height = h;
  out.width = w;
  if (comp == 1 || comp == 3) {
    out.channels = comp;
    out.pixels = std::move(values);
    return out;
  }
  if (comp != 2 && comp != 4) {
    throw DataError("cannot decode: " + std::to_string(comp) + " channels per pixel");
  }
  out.channels = comp - 1;  // drop alpha
  const size_t n = static_cast<size_t>(w) * h;
  out.pixels.resize(n * out.channels);
  for (size_t p = 0; p < n; ++p) {
    for (int64_t c = 0; c < out.channels; ++c) out.pixels[p * out.channels + c] = values[p * comp + c];
  }
  return out;
}

std::vector<std::string> ImageFolderClasses(const std::string& root) {
  if (!IsDirectory(root)) throw DataError("image folder " + root + ": not a directory");
  return SubdirectoryNames(root);
}

ImageSet LoadImageFolder(const std::string& root, const PreprocessSpec& spec,
                         const LoadOptions& options, LoadReport* report) {
  ValidateLoadOptions(options);
  ValidatePreprocessSpec(spec);
  const std::vector<std::string> folders = ImageFolderClasses(root);
  const std::vector<std::string>& classes = options.class_names.empty() ? folders
                                                                        : options.class_names;
  if (classes.empty()) {
    throw DataError("image folder " + root +
                    ": no class folders (expected root/<class name>/<images>, as torchvision's "
                    "ImageFolder)");
  }
  std::map<std::string, int64_t> index;
  for (size_t i = 0; i < classes.size(); ++i) index.emplace(classes[i], static_cast<int64_t>(i));

  std::vector<LoadItem> items;
  // Images directly in root: no label.
  std::vector<std::string> loose;
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (!IsDirectory(it->path()) && HasImageExtension(it->path())) {
      loose.push_back(it->path().string());
    }
  }
  std::sort(loose.begin(), loose.end());
  // Folders in class-index order, then folders not in class_names (their files are bad).
  std::vector<std::string> order;
  for (const std::string& c : classes) {
    if (std::find(folders.begin(), folders.end(), c) != folders.end()) order.push_back(c);
  }
  for (const std::string& f : folders) {
    if (index.count(f) == 0) order.push_back(f);
  }
  for (const std::string& folder : order) {
    const auto it = index.find(folder);
    for (std::string& path : WalkImages(fs::path(root) / folder)) {
      LoadItem item;
      item.path = std::move(path);
      if (it == index.end()) {
        item.bad_reason = "unknown class: folder \"" + folder + "\" is not one of the classes";
      } else {
        item.label = it->second;
      }
      items.push_back(std::move(item));
    }
  }
  for (std::string& path : loose) {
    LoadItem item;
    item.path = std::move(path);
    item.bad_reason = "no label: the image lies directly in the root, not in a class folder";
    items.push_back(std::move(item));
  }
  if (items.empty()) {
    throw DataError("image folder " + root + ": no image files (.png, .jpg, .jpeg) in its " +
                    std::to_string(folders.size()) + " class folders");
  }
  const int64_t max_pixels = options.max_image_pixels;
  ImageSet set = LoadImageItems(
      items, static_cast<int64_t>(classes.size()), spec, options,
      [max_pixels](const std::string& path) { return ReadImageFile(path, max_pixels); },
      "image folder " + root, report);
  if (report != nullptr) report->class_names = classes;
  return set;
}

Manifest ReadManifest(const std::string& csv_path, const std::vector<std::string>& key_columns) {
  std::string text;
  try {
    text = ReadBytes(csv_path);
  } catch (const DataError& e) {
    throw DataError("manifest " + csv_path + ": " + e.what());
  }
  if (text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);  // BOM
  const auto records = ParseCsv(text, csv_path);
  if (records.empty()) {
    throw DataError("manifest " + csv_path + ": empty (expected a header line such as "
                    "\"path,label,split\")");
  }
  Manifest m;
  m.path = csv_path;
  const std::vector<std::string>& header = records[0].second;
  const auto column = [&header](const std::string& name) -> int {
    for (size_t i = 0; i < header.size(); ++i) {
      if (Lower(header[i]) == name) return static_cast<int>(i);
    }
    return -1;
  };
  int key = -1;
  for (const std::string& name : key_columns) {
    key = column(name);
    if (key >= 0) {
      m.key_column = name;
      break;
    }
  }
  std::string accepted;
  for (const std::string& name : key_columns) accepted += (accepted.empty() ? "" : " or ") + name;
  const int label = column("label");
  const int split = column("split");
  if (key < 0 || label < 0) {
    std::string got;
    for (const std::string& h : header) got += (got.empty() ? "" : ",") + h;
    throw DataError("manifest " + csv_path + ": the header \"" + got + "\" lacks a " +
                    (key < 0 ? accepted : std::string("label")) +
                    " column (expected e.g. \"path,label,split\")");
  }
  m.has_split = split >= 0;
  for (size_t r = 1; r < records.size(); ++r) {
    const auto& [line, fields] = records[r];
    const int needed = std::max({key, label, split}) + 1;
    if (static_cast<int>(fields.size()) < needed) {
      throw DataError("manifest " + csv_path + ":" + std::to_string(line) + ": " +
                      std::to_string(fields.size()) + " columns, expected " +
                      std::to_string(header.size()) + " as in the header");
    }
    Manifest::Row row;
    row.line = line;
    row.key = fields[key];
    row.label = fields[label];
    row.split = m.has_split ? Lower(fields[split]) : "train";
    if (row.split != "train" && row.split != "val" && row.split != "test") {
      throw DataError("manifest " + csv_path + ":" + std::to_string(line) + ": split \"" +
                      fields[split] + "\", expected train, val or test");
    }
    m.rows.push_back(std::move(row));
  }
  return m;
}

std::string UnknownLabelReason(const std::string& label) {
  const bool digits = !label.empty() && std::all_of(label.begin(), label.end(), [](char c) {
    return c >= '0' && c <= '9';
  });
  if (digits && (label.size() > 18 || std::stoll(label) >= kMaxClasses)) {
    return "label \"" + label + "\" is not a class index below " + std::to_string(kMaxClasses) +
           " (the most classes a data set may have)";
  }
  return "unknown label \"" + label + "\"";
}

std::vector<int64_t> ManifestLabels(const Manifest& manifest,
                                    const std::vector<std::string>& class_names,
                                    std::vector<std::string>* names_out) {
  std::vector<std::string> names = class_names;
  bool integers = false;
  if (names.empty()) {
    integers = true;
    std::set<std::string> distinct;
    int64_t largest = -1;
    for (const Manifest::Row& row : manifest.rows) {
      if (row.label.empty()) continue;
      distinct.insert(row.label);
      if (!IsIndex(row.label)) {
        integers = false;
      } else {
        const int64_t value = std::stoll(row.label);  // <= 18 digits: fits
        if (value < kMaxClasses) largest = std::max(largest, value);
      }
    }
    if (integers) {
      for (int64_t i = 0; i <= largest; ++i) names.push_back(std::to_string(i));
    } else {
      names.assign(distinct.begin(), distinct.end());  // std::set orders by bytes
    }
  }
  std::map<std::string, int64_t> index;
  for (size_t i = 0; i < names.size(); ++i) index.emplace(names[i], static_cast<int64_t>(i));
  std::vector<int64_t> labels;
  labels.reserve(manifest.rows.size());
  for (const Manifest::Row& row : manifest.rows) {
    const auto it = index.find(row.label);
    if (it != index.end()) {
      labels.push_back(it->second);
    } else if (integers && IsIndex(row.label)) {
      const int64_t value = std::stoll(row.label);  // "007" -> 7
      labels.push_back(value < kMaxClasses ? value : -1);
    } else {
      labels.push_back(-1);
    }
  }
  if (names_out != nullptr) *names_out = std::move(names);
  return labels;
}

ImageSet LoadImageManifest(const std::string& csv_path, const std::string& split,
                           const PreprocessSpec& spec, const LoadOptions& options,
                           LoadReport* report) {
  ValidateLoadOptions(options);
  ValidatePreprocessSpec(spec);
  if (!split.empty() && split != "train" && split != "val" && split != "test") {
    throw DataError("manifest " + csv_path + ": split \"" + split +
                    "\", expected train, val, test or \"\" (every line)");
  }
  const Manifest manifest = ReadManifest(csv_path, {"path"});
  std::vector<std::string> names;
  const std::vector<int64_t> labels = ManifestLabels(manifest, options.class_names, &names);
  const fs::path base = fs::path(csv_path).parent_path();
  std::vector<LoadItem> items;
  for (size_t r = 0; r < manifest.rows.size(); ++r) {
    const Manifest::Row& row = manifest.rows[r];
    if (!split.empty() && row.split != split) continue;
    LoadItem item;
    item.path = row.key.empty() ? "" : (base / row.key).lexically_normal().string();
    item.label = labels[r];
    const std::string where = "line " + std::to_string(row.line) + ": ";
    if (row.key.empty()) {
      item.path = csv_path + ":" + std::to_string(row.line);
      item.bad_reason = "no path";
    } else if (row.label.empty()) {
      item.bad_reason = where + "no label";
    } else if (item.label < 0) {
      item.bad_reason = where + UnknownLabelReason(row.label);
    }
    items.push_back(std::move(item));
  }
  const int64_t max_pixels = options.max_image_pixels;
  ImageSet set = LoadImageItems(
      items, static_cast<int64_t>(names.size()), spec, options,
      [max_pixels](const std::string& path) { return ReadImageFile(path, max_pixels); },
      "manifest " + csv_path, report);
  if (report != nullptr) report->class_names = names;
  return set;
}

}  // namespace fedmed
