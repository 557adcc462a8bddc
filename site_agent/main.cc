// fedmed-site: a hospital's site agent. See site_agent/site_agent.h.
#include <CLI/CLI.hpp>

#include <csignal>
#include <iostream>

#include "common/config/site_config.h"
#include "common/util/data_path.h"
#include "common/util/error.h"
#include "site_agent/site_agent.h"

int main(int argc, char** argv) {
  // A file-size limit (RLIMIT_FSIZE) then fails the write with EFBIG, which WriteFileAtomically
  // reports naming the file, instead of killing the process (common/util/file_io.h).
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"fedmed site agent: trains the federation's model on this site's images"};
  std::string config_path;
  std::string data_root;
  app.add_option("--config", config_path, "site.toml (fedmed-pki init writes one per site)")
      ->required();
  app.add_option("--data", data_root,
                 "data root for relative data paths (default: $FEDMED_DATA; ../shared/data only when "
                 "neither is given)");
  CLI11_PARSE(app, argc, argv);
  try {
    std::cerr << "fedmed-site: " << fedmed::DescribeDataRoot(data_root) << std::endl;
    fedmed::SiteAgent agent(fedmed::LoadSiteConfig(config_path), data_root);
    return agent.Run();
  } catch (const std::exception& e) {
    std::cerr << "fedmed-site: " << e.what() << std::endl;
    return 2;
  }
}
