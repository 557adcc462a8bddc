// fedmed-site: a hospital's site agent. See site_agent/site_agent.h.
#include <CLI/CLI.hpp>

#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include "common/config/proxy_route.h"
#include "common/config/site_config.h"
#include "common/util/allocator.h"
#include "common/util/data_path.h"
#include "common/util/data_root_option.h"
#include "common/util/error.h"
#include "site_agent/connection.h"
#include "site_agent/site_agent.h"
#include "site_agent/site_check.h"

namespace {

// fedmed-site check --config site.toml [--data DIR]: site_check.h. Exit 0 only when ready.
int CheckMain(int argc, char** argv) {
  CLI::App app{"fedmed-site check: everything a hospital can verify before go-live"};
  std::string config_path;
  fedmed::SiteCheckOptions options;
  app.add_option("--config", config_path, "site.toml")->required();
  fedmed::AddDataRootOption(app, &options.data_root, "data root, as for fedmed-site");
  app.add_option("--timeout", options.network_timeout_seconds,
                 "seconds each network step may take (default 5)");
  CLI11_PARSE(app, argc, argv);
  options.hello = [](const fedmed::SiteConfig& site, double timeout_seconds) {
    // The way fedmed-site dials: directly or through [coordinator] proxy / https_proxy.
    const fedmed::ProxyRoute route = fedmed::ResolveProxyRoute(
        site.coordinator_proxy, site.coordinator_address, site.config_path);
    fedmed::CoordinatorConnection connection(site.coordinator_address, site.tls, route);
    return connection.Hello(timeout_seconds);
  };
  const std::vector<fedmed::SiteCheck> checks = fedmed::CheckSite(config_path, options);
  std::cout << fedmed::FormatSiteChecks(checks);
  return fedmed::SiteReady(checks) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  // A file-size limit (RLIMIT_FSIZE) then fails the write with EFBIG, which WriteFileAtomically
  // reports naming the file, instead of killing the process (common/util/file_io.h).
  std::signal(SIGXFSZ, SIG_IGN);
  fedmed::KeepFreedMemoryForReuse();  // see common/util/allocator.h
  if (argc > 1 && std::string(argv[1]) == "check") return CheckMain(argc - 1, argv + 1);
  CLI::App app{"fedmed site agent: trains the federation's model on this site's images"};
  std::string config_path;
  std::string data_root;
  app.add_option("--config", config_path, "site.toml (fedmed-pki init writes one per site)")
      ->required();
  fedmed::AddDataRootOption(app, &data_root);
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
