// Shared by the integration tests that run a whole federation with fedmed-simulate: the config
// they start from and the run itself (read its metrics.jsonl with ReadJsonLines from
// simulator/run_output.h, which simulator/simulation.h includes).
#ifndef FEDMED_TESTS_INTEGRATION_SIMULATE_UTIL_H_
#define FEDMED_TESTS_INTEGRATION_SIMULATE_UTIL_H_

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "common/util/data_path.h"
#include "common/util/process.h"
#include "simulator/simulation.h"
#include "tests/test_util.h"

namespace fedmed {
namespace testing {

// A process-mode federation of `sites` sites on PneumoniaMNIST (IID, seed 0) training the cnn
// for `rounds` rounds of one local epoch (Adam, lr 1e-3, batch 32), evaluated on the test split;
// `federated` turns the sites' federated evaluation on. `extra` (more TOML sections, or keys of
// [federation] first) is appended.
inline std::string FederationToml(int sites, int rounds, bool federated,
                                  const std::string& federation_extra = "",
                                  const std::string& extra = "") {
  return "[simulation]\nname = \"it\"\nsites = " + std::to_string(sites) +
         "\n\n[data]\npath = \"" + ResolveDataPath("medmnist/pneumoniamnist.npz") +
         "\"\npartition = \"iid\"\nseed = 0\n\n[federation]\nrounds = " + std::to_string(rounds) +
         "\nseed = 0\nround_deadline_seconds = 300\n" + federation_extra +
         "\n[model]\nname = \"cnn\"\n\n[training]\nlocal_epochs = 1\nbatch_size = 32\n"
         "optimizer = \"adam\"\nlearning_rate = 0.001\n\n[evaluation]\nsplit = \"test\"\n"
         "federated = " + (federated ? "true" : "false") + "\n\n" + extra;
}

// Writes `config` to dir/federation.toml, runs fedmed-simulate on it (output in
// dir/simulate.out) and returns its run directory; fails the test (and returns nothing) when it
// does not finish within `timeout_seconds` or exits with a non-zero status.
// `extra_args` are appended to fedmed-simulate's command line (e.g. {"--kill-site", "2@2"}).
inline std::optional<std::filesystem::path> RunFederation(
    const TempDir& dir, const std::string& config, double timeout_seconds = 600,
    const std::vector<std::string>& extra_args = {}) {
  const std::string path = dir / "federation.toml";
  std::ofstream(path) << config;
  std::vector<std::string> argv = {BinDir() + "/fedmed-simulate", "--config", path, "--output",
                                   dir / "runs"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  ChildProcess simulate(argv, dir / "simulate.out");
  const std::optional<int> status = simulate.Wait(timeout_seconds);
  if (!status.has_value()) {
    ADD_FAILURE() << "fedmed-simulate did not finish in " << timeout_seconds << " s";
    return std::nullopt;
  }
  if (*status != 0) {
    ADD_FAILURE() << "fedmed-simulate exited with " << *status << ":\n"
                  << ReadFile(dir / "simulate.out");
    return std::nullopt;
  }
  std::filesystem::path run;
  for (const auto& entry : std::filesystem::directory_iterator(dir / "runs")) run = entry.path();
  return run;
}

}  // namespace testing
}  // namespace fedmed

#endif  // FEDMED_TESTS_INTEGRATION_SIMULATE_UTIL_H_
