// The coordinator: runs the rounds of one federation. This class is its process lifecycle only;
// the parts, each with a header that documents it:
//
//   transport/service.h  gRPC: authenticates every call, maps protos to domain messages and
//                        Status to grpc::Status (transport/: the only coordinator files with gRPC)
//   site_handler.h       what a site can ask, as a domain interface
//   round_flow.h         the domain core implementing it: rounds start and end there
//   registration.h       where a site is admitted or refused
//   update_acceptance.h  where an update or evaluation report is judged
//   secure_round.h       the coordinator's side of secure aggregation
//   checkpoint_store.h   checkpoints and resume.json: where a restart resumes
//   round_report.h       metrics.csv / metrics.jsonl, the signed audit log, status.json
//   federation_model.h   the model and held-out set loaded at start
//   event_loop.h         the control thread, compute pool and timers (Boost.Asio)
//   status/status_server.h  [status]: the status page, JSON and Prometheus metrics (Boost.Beast),
//                        from a StatusBoard (status_board.h) that wraps the round flow
//   round/round_state_machine.h, strategy/strategy.h: the round's states, the aggregation
//
// Files in output_dir: coordinator.log, metrics.csv, metrics.jsonl, status.json, audit_log.jsonl
// (round_report.h), checkpoints/ and resume.json (checkpoint_store.h), global_model.pt and
// global.torchscript.pt (written when the last round is done: the final global model as
// TorchScript, ExportTorchScript in common/model/model_io.h; docs/MODELS.md).
#ifndef FEDMED_COORDINATOR_APP_COORDINATOR_H_
#define FEDMED_COORDINATOR_APP_COORDINATOR_H_

#include <memory>
#include <optional>
#include <string>

#include "common/config/coordinator_config.h"
#include "common/model/model_state.h"
#include "coordinator/federation_model.h"

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

  // Loads the held-out set (preprocessed with [preprocessing]) and the initial model (the zoo's,
  // the TorchScript file's, or [model] initial_weights), checks [training] frozen_layers against
  // the model's parameter names, opens output files, builds the strategy and, when output_dir
  // holds a resume.json, restores the global model and the strategy state.
  // Throws ConfigError / DataError / Error with a message naming what is wrong (ConfigError for
  // an invalid [strategy], or one whose name differs from the one that wrote resume.json; for a
  // model spec or TorchScript file that cannot be used, or frozen_layers matching no parameter
  // or every one, naming the key; DataError / FormatError naming initial_weights when it cannot
  // be read or does not have the model's layout; FormatError for a strategy state file that
  // does not load or fit the model).
  // (Who is admitted at registration: registration.h.)
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

  // With [status] listen, after Start(): the status page's URL, "http://127.0.0.1:PORT/" (without
  // the token; also written to output_dir/status_url.txt). "" otherwise.
  std::string StatusUrl() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_APP_COORDINATOR_H_
