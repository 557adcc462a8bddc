// fedmed-coordinator: runs one federation's rounds. See coordinator/app/coordinator.h.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>

#include "common/config/coordinator_config.h"
#include "common/util/allocator.h"
#include "common/util/data_root_option.h"
#include "common/util/error.h"
#include "coordinator/app/coordinator.h"

int main(int argc, char** argv) {
  // A file-size limit (RLIMIT_FSIZE) then fails the write with EFBIG, which WriteFileAtomically
  // reports naming the file, instead of killing the process (common/util/file_io.h).
  std::signal(SIGXFSZ, SIG_IGN);
  fedmed::KeepFreedMemoryForReuse();  // see common/util/allocator.h
  CLI::App app{"fedmed coordinator: runs the rounds of a federation (FedAvg over mutual-TLS gRPC)"};
  std::string config_path;
  std::string data_root;
  app.add_option("--config", config_path, "coordinator.toml (fedmed-pki init writes one)")
      ->required();
  fedmed::AddDataRootOption(app, &data_root);
  CLI11_PARSE(app, argc, argv);
  try {
    fedmed::CoordinatorConfig config = fedmed::LoadCoordinatorConfig(config_path);
    fedmed::Coordinator::Options options;
    options.data_root = data_root;
    fedmed::Coordinator coordinator(std::move(config), std::move(options));
    coordinator.Start();
    return coordinator.Run();
  } catch (const std::exception& e) {
    std::cerr << "fedmed-coordinator: " << e.what() << std::endl;
    spdlog::error("{}", e.what());
    return 2;
  }
}
