// fedmed-simulate: runs a whole federation on this machine. See experiments/simulation.h.
#include <CLI/CLI.hpp>

#include <iostream>

#include "common/util/error.h"
#include "common/util/process.h"
#include "experiments/simulation.h"

int main(int argc, char** argv) {
  CLI::App app{"fedmed simulator: one coordinator and N site processes over mutual-TLS gRPC"};
  std::string config_path;
  std::string data_root;
  std::string output_dir;
  app.add_option("--config", config_path, "simulation config, e.g. experiments/demo.toml")
      ->required();
  app.add_option("--data", data_root,
                 "data root for relative data paths (default: $FEDMED_DATA, then ../shared/data)");
  app.add_option("--output", output_dir, "where run directories go (overrides [simulation] output_dir)");
  CLI11_PARSE(app, argc, argv);
  try {
    fedmed::SimulationConfig config = fedmed::LoadSimulationConfig(config_path);
    if (!output_dir.empty()) config.output_root = output_dir;
    const fedmed::SimulationResult result =
        fedmed::RunSimulation(config, data_root, fedmed::ExecutableDir(), std::cout);
    return result.exit_status;
  } catch (const std::exception& e) {
    std::cerr << "fedmed-simulate: " << e.what() << std::endl;
    return 2;
  }
}
