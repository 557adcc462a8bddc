// The coordinator: runs the rounds of one federation.
//
// It owns the gRPC server (FederationService, service.h), the round state machine
// (round/round_state_machine.h), the FedAvg running sum (aggregation/fedavg.h), the global model,
// the held-out evaluation set and the per-round records (metrics_log.h). Boost.Asio carries what
// is not an RPC: the io_context of Run() handles SIGINT/SIGTERM (signal_set) and the round,
// evaluation and registration deadlines (steady_timer); a thread_pool runs aggregation and central
// evaluation. gRPC handler threads only validate, enqueue and wait for decisions.
//
// Files in output_dir: coordinator.log, metrics.csv, metrics.jsonl, status.json (current phase,
// for progress displays), checkpoints/round-NNNN.pt and global_model.pt (PyTorch state dicts,
// see docs/PROTOCOL.md for the parameter names), and resume.json (the last completed round: a
// coordinator restarted with the same output_dir goes on from there).
#ifndef FEDMED_COORDINATOR_COORDINATOR_H_
#define FEDMED_COORDINATOR_COORDINATOR_H_

#include <memory>
#include <optional>
#include <string>

#include "common/config/coordinator_config.h"
#include "common/model/model_state.h"

namespace fedmed {

class Coordinator {
 public:
  struct Options {
    // Start from this model instead of the zoo's initial weights (its layout must match the
    // configured model unless `custom_model` is set, in which case no zoo model is built and
    // central evaluation is skipped: used by transport tests with arbitrary tensors).
    std::optional<ModelState> initial_model;
    bool custom_model = false;
    // Install SIGINT/SIGTERM handlers in Run() (the binary does; in-process tests do not).
    bool handle_signals = true;
    // Data root for relative data paths (the --data flag).
    std::string data_root;
  };

  // Loads the held-out set and the initial model, opens output files. Throws ConfigError /
  // DataError / Error with a message naming what is wrong.
  Coordinator(CoordinatorConfig config, Options options);
  ~Coordinator();

  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Starts the gRPC server on the configured address and returns the bound port (useful with port
  // 0). Throws Error if the address cannot be bound.
  int Start();

  // Runs the federation until the last round is done and sites were told to finish, or until
  // Stop() / a signal. Returns 0 on success, 1 when stopped early, 2 on a fatal error (logged).
  int Run();

  // Asks Run() to return soon; thread-safe.
  void Stop();

  // The current global model's encoding (for tests).
  std::string GlobalModelBytes() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_COORDINATOR_H_
