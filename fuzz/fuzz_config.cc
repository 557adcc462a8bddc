// libFuzzer harness: the TOML configuration files, site.toml and coordinator.toml, read and
// validated by LoadSiteConfig / LoadCoordinatorConfig (the first input byte picks which), and
// rendered back when they are valid.
#include <cstddef>
#include <cstdint>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fedmed::fuzz::InputReader in(data, size);
  const bool site = (in.Byte() & 1) == 0;
  const std::string path = fedmed::fuzz::WriteScratchFile(site ? "site.toml" : "coordinator.toml",
                                                          in.Rest());
  fedmed::fuzz::ExpectOnlyFedmedErrors("fuzz_config", [&] {
    if (site) {
      fedmed::RenderSiteConfig(fedmed::LoadSiteConfig(path));
    } else {
      fedmed::RenderCoordinatorConfig(fedmed::LoadCoordinatorConfig(path));
    }
  });
  return 0;
}
