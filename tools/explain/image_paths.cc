#include "tools/explain/image_paths.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "common/data/hospital/image_folder.h"

namespace fedmed::explain {

namespace fs = std::filesystem;

namespace {

bool IsImageName(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* ext : {".png", ".jpg", ".jpeg"}) {
    const std::string e = ext;
    if (lower.size() >= e.size() && lower.compare(lower.size() - e.size(), e.size(), e) == 0) {
      return true;
    }
  }
  return false;
}

// sorted(os.walk(dir, followlinks=True)): every directory under `dir` (itself included), sorted
// by its path text, each with its image files sorted by name.
void WalkSorted(const fs::path& dir, std::vector<std::string>* out) {
  std::vector<std::string> dirs = {dir.string()};
  for (const auto& entry : fs::recursive_directory_iterator(
           dir, fs::directory_options::follow_directory_symlink)) {
    if (entry.is_directory()) dirs.push_back(entry.path().string());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const std::string& d : dirs) {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(d)) {
      if (!entry.is_directory() && IsImageName(entry.path().filename().string())) {
        names.push_back(entry.path().filename().string());
      }
    }
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) out->push_back((fs::path(d) / n).string());
  }
}

std::vector<std::string> FolderPaths(const std::string& root, const std::string& split) {
  fs::path folder = root;
  const bool has_splits = fs::is_directory(folder / "train") || fs::is_directory(folder / "val") ||
                          fs::is_directory(folder / "test");
  if (has_splits) {
    folder /= split;
  } else if (split != "train") {
    return {};
  }
  std::vector<std::string> out;
  for (const std::string& c : ImageFolderClasses(folder.string())) WalkSorted(folder / c, &out);
  return out;
}

std::vector<std::string> ManifestPaths(const std::string& csv, const std::string& split) {
  const Manifest m = ReadManifest(csv, {"path", "sop_instance_uid"});
  const fs::path base = fs::path(csv).parent_path();
  std::vector<std::string> out;
  for (const Manifest::Row& row : m.rows) {
    if (row.split != split) continue;
    if (m.key_column == "sop_instance_uid") {
      out.push_back("sop_instance_uid=" + row.key);
    } else {
      const fs::path p = row.key;
      out.push_back(p.is_absolute() ? p.string() : (base / p).string());
    }
  }
  return out;
}

}  // namespace

std::optional<std::vector<std::string>> ImagePaths(const SiteDataConfig& data,
                                                   const std::string& split, int64_t expected,
                                                   size_t skipped_files) {
  if (data.partition != "none" || skipped_files > 0) return std::nullopt;
  try {
    std::vector<std::string> paths;
    if (data.format == "image_folder") {
      paths = FolderPaths(data.path, split);
    } else if (data.format == "csv" || data.format == "dicom") {
      paths = ManifestPaths(data.path, split);
    } else {
      return std::nullopt;
    }
    if (static_cast<int64_t>(paths.size()) != expected) return std::nullopt;
    return paths;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace fedmed::explain
