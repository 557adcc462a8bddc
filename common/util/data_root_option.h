// The --data option of fedmed-coordinator, fedmed-site (and fedmed-site check) and
// fedmed-simulate: the data root of common/util/data_path.h, given on the command line.
// Header-only, for the binaries' main files (it includes CLI11, which the libraries do not).
#ifndef FEDMED_COMMON_UTIL_DATA_ROOT_OPTION_H_
#define FEDMED_COMMON_UTIL_DATA_ROOT_OPTION_H_

#include <CLI/CLI.hpp>

#include <string>

namespace fedmed {

// Adds "--data DIR" to `app`, stored in `*data_root` ("" when not given). Pass the result to
// ResolveDataPath / DescribeDataRoot (data_path.h), which fall back to $FEDMED_DATA and then
// ../shared/data. `help`: the option's help text; the default describes that order.
inline CLI::Option* AddDataRootOption(
    CLI::App& app, std::string* data_root,
    const std::string& help = "data root for relative data paths (default: $FEDMED_DATA; "
                              "../shared/data only when neither is given)") {
  return app.add_option("--data", *data_root, help);
}

}  // namespace fedmed

#endif  // FEDMED_COMMON_UTIL_DATA_ROOT_OPTION_H_
