// The coordinator: runs the rounds of one federation.
//
// It owns the gRPC server (FederationService, service.h), the round state machine
// (round/round_state_machine.h), the aggregation strategy of [strategy] (strategy/strategy.h:
// ConfigureFit and BeginRound when a round or a retry starts, AddUpdate per accepted update,
// AggregateFit once the round has its quorum), the global model,
// the held-out evaluation set and the per-round records (metrics_log.h). Boost.Asio carries what
// is not an RPC: the io_context of Run() handles SIGINT/SIGTERM (signal_set) and the round,
// evaluation and registration deadlines (steady_timer); a thread_pool runs aggregation and central
// evaluation. gRPC handler threads only validate, enqueue and wait for decisions.
//
// Files in output_dir: coordinator.log, metrics.csv, metrics.jsonl, status.json (current phase,
// for progress displays), checkpoints/round-NNNN.pt and global_model.pt (PyTorch state dicts,
// see docs/PROTOCOL.md for the parameter names), global.torchscript.pt (written when the last
// round is done: the final global model as TorchScript, ExportTorchScript in
// common/model/model_io.h; docs/MODELS.md), checkpoints/round-NNNN.strategy (the strategy's
// server state after round NNNN, Strategy::SaveState: the FedOpt moments; empty for strategies
// that keep none), and resume.json (the last completed round, its checkpoint and strategy state
// with their SHA-256 digests: a coordinator restarted with the same output_dir and the same
// [strategy] name goes on from there, with the same later global models as without the restart).
#ifndef FEDMED_COORDINATOR_COORDINATOR_H_
#define FEDMED_COORDINATOR_COORDINATOR_H_

#include <memory>
#include <optional>
#include <string>

#include "common/config/coordinator_config.h"
#include "common/data/image_set.h"
#include "common/model/model_spec.h"
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
  //
  // At registration a site is refused (FAILED_PRECONDITION, logged here and given to the site)
  // when its preprocessing differs from [preprocessing] (naming each differing field), when the
  // federation trains a TorchScript model and the site announces no script or one of another
  // architecture (naming the differing parameters), when its images' channels or classes do not
  // fit the model, or when secure aggregation is on and the site does not support it. Train and
  // evaluate tasks carry the federation's preprocessing and [training] frozen_layers.
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

// The coordinator's held-out set: split `split` ("train" | "val" | "test") of [evaluation] data
// (a MedMNIST .npz file, resolved against `data_root` as ResolveDataPath does), preprocessed with
// [preprocessing]. The coordinator evaluates on [evaluation] split; the simulator's pooled
// baseline and model selection use the same function. Throws ConfigError naming the config file
// when [evaluation] data is empty, or the split name is unknown; DataError / FormatError as
// LoadMedMnistSplit.
ImageSet LoadHeldOutSet(const CoordinatorConfig& config, const std::string& data_root,
                        const std::string& split);

// The model the coordinator trains: [model] name, image_size and torchscript_path, and
// in_channels / num_classes from [model], or where it leaves them 0, from `heldout` (when not
// null). Not validated: see ValidateModelSpec (common/model/model_spec.h).
ModelSpec FederationModelSpec(const CoordinatorConfig& config, const ImageSet* heldout);

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_COORDINATOR_H_
