// Shared by the tests that run a Coordinator in their own process with a model of their own and
// talk to it as site-1 over mutual-TLS gRPC on loopback (coordinator_strategy_test,
// large_model_transfer_test).
#ifndef FEDMED_TESTS_COORDINATOR_IN_PROCESS_UTIL_H_
#define FEDMED_TESTS_COORDINATOR_IN_PROCESS_UTIL_H_

#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/model/model_state.h"
#include "coordinator/app/coordinator.h"
#include "site_agent/connection.h"
#include "tools/pki/provision.h"

namespace fedmed::testing {

// The provisioned coordinator configuration for `rounds` rounds of site-1 alone: listening on
// 127.0.0.1:0, its output in `output_dir`, no evaluation (the model is the test's own).
inline CoordinatorConfig InProcessCoordinatorConfig(const ProvisionResult& pki,
                                                    const std::filesystem::path& output_dir,
                                                    int rounds) {
  CoordinatorConfig config = LoadCoordinatorConfig(pki.coordinator_config);
  config.listen_address = "127.0.0.1:0";
  config.output_dir = output_dir.string();
  config.rounds = rounds;
  config.min_sites = 1;
  config.eval_data.clear();
  config.federated_evaluation = false;
  return config;
}

// A Coordinator on `config` starting from `initial`, running in a thread of this process (the
// process's signals left alone), and site-1's connection to it, registered with 10 samples.
class InProcessFederation {
 public:
  InProcessFederation(const CoordinatorConfig& config, const ModelState& initial,
                      const ProvisionResult& pki) {
    Coordinator::Options options;
    options.initial_model = initial;
    options.custom_model = true;
    options.handle_signals = false;
    coordinator_ = std::make_unique<Coordinator>(config, options);
    const int port = coordinator_->Start();
    runner_ = std::thread([this] { exit_code_ = coordinator_->Run(); });
    connection_ = std::make_unique<CoordinatorConnection>(
        "127.0.0.1:" + std::to_string(port), LoadSiteConfig(pki.site_configs.at("site-1")).tls);
    session_ = connection_->Register("site-1", 10, 0, 1, 2).session_id;
  }
  ~InProcessFederation() { Stop(); }
  InProcessFederation(const InProcessFederation&) = delete;
  InProcessFederation& operator=(const InProcessFederation&) = delete;

  // Stops the coordinator (if Run has not returned yet) and returns Run's exit status.
  int Stop() {
    if (runner_.joinable()) {
      coordinator_->Stop();
      runner_.join();
    }
    return exit_code_;
  }

  Coordinator& coordinator() { return *coordinator_; }
  CoordinatorConnection& connection() { return *connection_; }
  const std::string& session() const { return session_; }

 private:
  std::unique_ptr<Coordinator> coordinator_;
  std::thread runner_;
  int exit_code_ = -1;
  std::unique_ptr<CoordinatorConnection> connection_;
  std::string session_;
};

}  // namespace fedmed::testing

#endif  // FEDMED_TESTS_COORDINATOR_IN_PROCESS_UTIL_H_
