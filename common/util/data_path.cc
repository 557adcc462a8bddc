#include "common/util/data_path.h"

#include <cstdlib>
#include <filesystem>

#include "common/util/error.h"

namespace fedmed {

namespace fs = std::filesystem;

namespace {

// The explicit root in force ("" = none): the flag's, else FEDMED_DATA's.
std::string ExplicitRoot(const std::string& explicit_root) {
  if (!explicit_root.empty()) return explicit_root;
  if (const char* env = std::getenv("FEDMED_DATA"); env != nullptr && *env != '\0') return env;
  return "";
}

}  // namespace

std::string DataRootSource(const std::string& explicit_root) {
  if (!explicit_root.empty()) return "--data";
  if (const char* env = std::getenv("FEDMED_DATA"); env != nullptr && *env != '\0') {
    return "FEDMED_DATA";
  }
  return "";
}

std::vector<std::string> DataRoots(const std::string& explicit_root) {
  const std::string root = ExplicitRoot(explicit_root);
  if (!root.empty()) return {root};
  return {"../shared/data", FEDMED_DEFAULT_DATA_DIR};
}

std::string DescribeDataRoot(const std::string& explicit_root) {
  const std::string source = DataRootSource(explicit_root);
  if (!source.empty()) {
    return "data root: " + ExplicitRoot(explicit_root) + " (from " + source + ")";
  }
  return "data root: none given (no --data, FEDMED_DATA unset): relative data paths are looked "
         "up under ../shared/data, then " + std::string(FEDMED_DEFAULT_DATA_DIR) +
         ", then the current directory";
}

std::string ResolveDataPath(const std::string& path, const std::string& explicit_root) {
  const fs::path p(path);
  if (p.is_absolute()) {
    if (fs::exists(p)) return path;
    throw DataError("data file '" + path + "' does not exist");
  }
  const std::string root = ExplicitRoot(explicit_root);
  if (!root.empty()) {
    const fs::path candidate = fs::path(root) / p;
    if (fs::exists(candidate)) return fs::absolute(candidate).lexically_normal().string();
    const std::string from = "data root " + root + " from " + DataRootSource(explicit_root);
    std::error_code ec;
    if (!fs::is_directory(root, ec)) {
      throw DataError("data file '" + path + "' not found: the " + from +
                      " is not a directory (looked for " + candidate.string() + ")");
    }
    throw DataError("data file '" + path + "' not found: " + candidate.string() +
                    " does not exist (" + from + ")");
  }
  std::string searched;
  for (const std::string& r : DataRoots()) {
    const fs::path candidate = fs::path(r) / p;
    if (fs::exists(candidate)) return fs::absolute(candidate).lexically_normal().string();
    searched += "\n  " + candidate.string();
  }
  if (fs::exists(p)) return fs::absolute(p).lexically_normal().string();
  throw DataError("data file '" + path + "' not found; searched (no --data or FEDMED_DATA given; "
                  "set one):" + searched + "\n  " + path);
}

}  // namespace fedmed
