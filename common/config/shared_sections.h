// Key tables that coordinator.toml and site.toml share: the [tls] files and the preprocessing
// keys (the coordinator's [preprocessing], the site's [data]). See config_schema.h.
#ifndef FEDMED_COMMON_CONFIG_SHARED_SECTIONS_H_
#define FEDMED_COMMON_CONFIG_SHARED_SECTIONS_H_

#include <string>
#include <vector>

#include "common/config/config_schema.h"
#include "common/config/tls_files.h"
#include "common/data/preprocess.h"

namespace fedmed {

// Whose [tls] section: the wording of its comments and errors.
struct TlsParty {
  std::string self;  // "coordinator" | "site": "This coordinator's certificate ..."
  std::string peer;  // whose certificate must chain to the CA: "every site's" | "the coordinator's"
};

// The [tls] section's ca_cert, cert and key: required, paths resolved against the config file,
// each refused when empty ("expected the CA certificate file, got \"\""). Never throws.
ConfigSection<TlsFiles> TlsSection(const TlsParty& party);

// The preprocessing keys image_size, channels, normalization, mean (1 or 3 numbers), std and
// equalize, with one comment above them. They have no per-key checks: ValidatePreprocessSpec
// (common/data/preprocess.h) checks the whole spec, as a check of the section that holds them.
// Never throws.
const std::vector<ConfigKey<PreprocessSpec>>& PreprocessKeys();

}  // namespace fedmed

#endif  // FEDMED_COMMON_CONFIG_SHARED_SECTIONS_H_
