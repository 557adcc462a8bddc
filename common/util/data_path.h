// Where fedmed finds data files.
//
// Real data is never part of the project. A relative data path in a config or on a command line
// is looked up, in order, under:
//   1. the data root given explicitly (the --data flag of every binary),
//   2. the FEDMED_DATA environment variable,
//   3. ../shared/data relative to the current directory,
//   4. the build's default (FEDMED_DEFAULT_DATA_DIR, <source>/../shared/data).
// Absolute paths are used unchanged; a relative path is tried under each root in turn and
// finally as given, relative to the current directory.
#ifndef FEDMED_COMMON_UTIL_DATA_PATH_H_
#define FEDMED_COMMON_UTIL_DATA_PATH_H_

#include <string>
#include <vector>

namespace fedmed {

// The data roots searched, in order (explicit_root first when it is not empty).
std::vector<std::string> DataRoots(const std::string& explicit_root = "");

// Resolves `path` as described above. Returns the first candidate that exists.
// Throws DataError listing every place searched when none exists.
std::string ResolveDataPath(const std::string& path, const std::string& explicit_root = "");

}  // namespace fedmed

#endif  // FEDMED_COMMON_UTIL_DATA_PATH_H_
