// Where fedmed finds data files.
//
// Real data is never part of the project. A relative data path in a config or on a command line
// is looked up under the data root:
//   1. the data root given explicitly (the --data flag of every binary), else
//   2. the FEDMED_DATA environment variable (when set and not empty).
// An explicit root (1 or 2) is obeyed: a file missing under it is an error naming the path
// looked for and where the root came from; nothing else is searched. Only when neither is
// given are the fallbacks searched, in order:
//   3. ../shared/data relative to the current directory,
//   4. the build's default (FEDMED_DEFAULT_DATA_DIR, <source>/../shared/data),
//   5. the path as given, relative to the current directory.
// Absolute paths are used unchanged. The binaries log DescribeDataRoot at start.
#ifndef FEDMED_COMMON_UTIL_DATA_PATH_H_
#define FEDMED_COMMON_UTIL_DATA_PATH_H_

#include <string>
#include <vector>

namespace fedmed {

// The data roots searched, in order: {explicit_root} when it is not empty, else {$FEDMED_DATA}
// when set, else the fallbacks 3 and 4. Never throws.
std::vector<std::string> DataRoots(const std::string& explicit_root = "");

// Where the root in force comes from: "--data", "FEDMED_DATA", or "" when neither is given (the
// fallbacks apply). Never throws.
std::string DataRootSource(const std::string& explicit_root = "");

// One line for logs, e.g. "data root: /data (from --data)" or "data root: none given (no --data,
// FEDMED_DATA unset): relative data paths are looked up under ../shared/data, then <default>,
// then the current directory". Never throws.
std::string DescribeDataRoot(const std::string& explicit_root = "");

// Resolves `path` as described above and returns an existing path (absolute, normalised, for a
// relative one). Throws DataError: for an absolute path that does not exist; with an explicit
// root, "data file '<path>' not found: <root>/<path> does not exist (data root <root> from
// --data)" (and when the root itself is not a directory, says so); otherwise listing every
// place searched.
std::string ResolveDataPath(const std::string& path, const std::string& explicit_root = "");

}  // namespace fedmed

#endif  // FEDMED_COMMON_UTIL_DATA_PATH_H_
