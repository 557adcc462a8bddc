#include "common/util/data_path.h"

#include <cstdlib>
#include <filesystem>

#include "common/util/error.h"

namespace fedmed {

namespace fs = std::filesystem;

std::vector<std::string> DataRoots(const std::string& explicit_root) {
  std::vector<std::string> roots;
  if (!explicit_root.empty()) roots.push_back(explicit_root);
  if (const char* env = std::getenv("FEDMED_DATA"); env != nullptr && *env != '\0') {
    roots.emplace_back(env);
  }
  roots.emplace_back("../shared/data");
  roots.emplace_back(FEDMED_DEFAULT_DATA_DIR);
  return roots;
}

std::string ResolveDataPath(const std::string& path, const std::string& explicit_root) {
  const fs::path p(path);
  if (p.is_absolute()) {
    if (fs::exists(p)) return path;
    throw DataError("data file '" + path + "' does not exist");
  }
  std::string searched;
  for (const std::string& root : DataRoots(explicit_root)) {
    const fs::path candidate = fs::path(root) / p;
    if (fs::exists(candidate)) return fs::absolute(candidate).lexically_normal().string();
    searched += "\n  " + candidate.string();
  }
  if (fs::exists(p)) return fs::absolute(p).lexically_normal().string();
  throw DataError("data file '" + path + "' not found; searched (set --data or FEDMED_DATA):" +
                  searched + "\n  " + path);
}

}  // namespace fedmed
